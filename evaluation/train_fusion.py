"""`glassbox train fusion`: the hybrid first stage's dense weight, tuned for nDCG@10 on train and dev queries.

One scalar is all this fits, so it is tuned on every judged query outside the test split (train and dev
together): on SciFact the seeded dev split alone is 121 queries, whose nDCG@10-by-weight curve is too noisy to
place the weight well (its curve is reported beside the pooled one). Each query's union of both arms' top-K is
scored once by both arms; every weight of the grid then only re-fuses those scores.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from evaluation.errors import DatasetFormatError
from evaluation.metrics import score_ranking
from indexes import Collection
from indexes.atomic import write_json_atomic
from indexes.fusion import convex_fusion, rrf_fusion
from service.encoder import Encoder
from service.first_stage import HybridArms, hybrid_arms
from service.settings import Settings

GRID = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 21))
ARTIFACT_FORMAT = 1


def _ranking(arms: HybridArms, fused: np.ndarray, k: int) -> list[str]:
    return [arms.ids[i] for i in np.argsort(-fused, kind="stable")[:k]]


def train_fusion(
    dataset_path: Path, out: Path, settings: Settings, encoder: Encoder, *, progress: bool = True
) -> dict[str, Any]:
    """Choose the convex fusion weight with the best train+dev nDCG@10 (ties: nearest 0.5), save it to `out`.

    Returns the report saved as `out/config.json`: the weight, the nDCG@10 of every grid weight (train+dev and
    dev alone), of RRF and of each arm alone.
    """
    started = time.perf_counter()
    dataset = BeirDataset(dataset_path)
    texts = dataset.queries()
    train, dev = dataset.split("train"), dataset.split("dev")
    judged = {**train.qrels, **dev.qrels}
    tune_ids = sorted(q for q in judged if q in texts)
    dev_ids = sorted(q for q in dev.qrels if q in texts)
    if not tune_ids:
        raise DatasetFormatError(f"{dataset.path} has no train or dev queries with text to tune the fusion weight on")
    k = settings.search.candidates
    per_query: dict[str, HybridArms] = {}
    with CorpusIndex(dataset, settings, encoder, k, progress=progress) as corpus:
        collection: Collection = corpus.require_collection()
        embeddings = corpus.cache.encode([texts[q] for q in tune_ids])
        for query_id, embedding in tqdm(
            list(zip(tune_ids, embeddings, strict=True)), desc="fusion: first stages", disable=not progress
        ):
            per_query[query_id] = hybrid_arms(collection, texts[query_id], embedding, k, {}, 1)

    def ndcg(fuse: Any, query_ids: list[str]) -> float:
        ranking = {q: _ranking(per_query[q], fuse(per_query[q]), 10) for q in query_ids}
        return round(score_ranking({q: judged[q] for q in query_ids}, ranking).means["ndcg@10"], 6)

    def convex(weight: float) -> Any:
        return lambda arms: convex_fusion(arms.dense, arms.lexical, weight)

    grid = {str(w): ndcg(convex(w), tune_ids) for w in GRID}
    best = max(GRID, key=lambda w: (grid[str(w)], -abs(w - 0.5)))
    report: dict[str, Any] = {
        "kind": "fusion",
        "format": ARTIFACT_FORMAT,
        "method": "convex",
        "dense_weight": best,
        "tuned_on": "train+dev",
        "ndcg@10": grid[str(best)],
        "ndcg@10_by_weight": grid,
        "ndcg@10_rrf": ndcg(lambda arms: rrf_fusion(arms.dense, arms.lexical, settings.first_stage.rrf_k), tune_ids),
        "ndcg@10_dense": grid["1.0"],
        "ndcg@10_bm25": grid["0.0"],
        "dev_ndcg@10_by_weight": {str(w): ndcg(convex(w), dev_ids) for w in GRID} if dev_ids else {},
        "dataset": dataset.name,
        "train_source": train.source,
        "dev_source": dev.source,
        "queries": len(tune_ids),
        "candidates": k,
        "analyzer": {"stemmer": settings.lexical.stemmer, "stopwords": settings.lexical.stopwords},
        "bm25": {"k1": settings.lexical.k1, "b": settings.lexical.b},
        "encoder": {"name": encoder.identity.name, "revision": encoder.identity.revision},
        "seconds": round(time.perf_counter() - started, 1),
        "created_at": datetime.now(UTC).isoformat(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "config.json", report)
    return report
