"""Offline evaluation: every variant ranks the same first-stage candidates of the same queries, then ranx scores
exactly what the API would have returned."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluation.beir import BeirDataset
from evaluation.errors import DatasetFormatError
from evaluation.metrics import METRICS, compare_to_baseline, score_ranking
from evaluation.variants import BASELINE, build_variants
from service.embedding_cache import CachingEncoder
from service.encoder import Encoder
from service.ingest import ingest_documents
from service.pipeline import Pipeline, SearchQuery
from service.registry import CollectionRegistry
from service.settings import Settings


@dataclass(frozen=True)
class EvaluationConfig:
    """One evaluation run: which dataset, split and variants, and how deep the ranking is scored."""

    dataset: Path
    variants: Sequence[str] = (BASELINE,)
    split: str = "test"
    top_k: int = 100
    drop_self_hits: bool = False
    adapters: Path | None = None
    seed: int = 42
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EvaluationResult:
    """The report (the design's JSON contract) plus per-query values that plots and tests use."""

    report: dict[str, Any]
    per_query: dict[str, dict[str, dict[str, float]]]  # variant -> metric -> query id -> value
    rankings: dict[str, dict[str, list[str]]]  # variant -> query id -> ranked ids


def run_evaluation(
    config: EvaluationConfig, settings: Settings, encoder: Encoder, *, progress: bool = True
) -> EvaluationResult:
    """Run `config` and return the report. The corpus is embedded through the on-disk embedding cache."""
    started = time.perf_counter()
    dataset = BeirDataset(config.dataset)
    split = dataset.split(config.split)
    texts = dataset.queries()
    query_ids = sorted(q for q in split.qrels if q in texts)
    if not query_ids:
        raise DatasetFormatError(f"no query of split {config.split!r} has text in {dataset.path}/queries.jsonl")
    qrels = {q: split.qrels[q] for q in query_ids}
    variants = build_variants(config.variants, config.adapters)
    search = settings.search.model_copy(update={"candidates": max(settings.search.candidates, config.top_k)})
    cache = CachingEncoder(encoder, settings.home / "cache" / "embeddings.sqlite")
    rankings: dict[str, dict[str, list[str]]] = {v.name: {} for v in variants}
    latencies: dict[str, list[float]] = {v.name: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="glassbox-eval-") as scratch:
        registry = CollectionRegistry(Path(scratch), encoder.identity, settings.index)
        try:
            collection = registry.create("evaluation")
            ingest_documents(collection, cache, dataset.documents(), skip_unchanged=False, progress=progress)
            pipelines = {v.name: Pipeline(encoder, registry, search, v.stages) for v in variants}
            first_stage_pipeline = pipelines[BASELINE]
            for query_id in tqdm(query_ids, desc=f"evaluate {dataset.name}/{config.split}", disable=not progress):
                query = SearchQuery(texts[query_id], top_k=config.top_k, explain=False)
                start = time.perf_counter()
                embedding = encoder.encode([query.text])[0]
                encode_ms = (time.perf_counter() - start) * 1000.0
                first_stage = first_stage_pipeline.retrieve(collection, query, embedding)
                for name, pipeline in pipelines.items():
                    outcome = pipeline.rank(collection, first_stage, encode_ms)
                    ranked = [item.doc_id for item in outcome.results]
                    if config.drop_self_hits:
                        ranked = [doc_id for doc_id in ranked if doc_id != query_id]
                    rankings[name][query_id] = ranked
                    latencies[name].append(outcome.timings_ms["total"])
        finally:
            registry.close_all()
            cache.close()
    scores = {name: score_ranking(qrels, ranking, name) for name, ranking in rankings.items()}
    comparisons = compare_to_baseline(qrels, rankings, BASELINE, seed=config.seed)
    report: dict[str, Any] = {
        "dataset": dataset.name,
        "dataset_path": str(dataset.path),
        "split": config.split,
        "split_source": split.source,
        "queries": len(query_ids),
        "top_k": config.top_k,
        "drop_self_hits": config.drop_self_hits,
        "encoder": {"name": encoder.identity.name, "revision": encoder.identity.revision},
        "index": settings.index.factory,
        "seed": config.seed,
        "variants": {
            name: {
                **{metric: round(result.means[metric], 6) for metric in METRICS},
                "latency_ms": {
                    "p50": round(float(np.percentile(latencies[name], 50)), 3),
                    "p95": round(float(np.percentile(latencies[name], 95)), 3),
                },
            }
            for name, result in scores.items()
        },
        "comparisons": {
            name: {
                "baseline": BASELINE,
                **{
                    metric: {
                        "delta": round(c.delta, 6),
                        "p_value": c.p_value,
                        "p_value_t": c.p_value_t,
                        "wins": c.wins,
                        "ties": c.ties,
                        "losses": c.losses,
                    }
                    for metric, c in by_metric.items()
                },
            }
            for name, by_metric in comparisons.items()
        },
        "embedding_cache": {"hits": cache.hits, "misses": cache.misses},
        "seconds": round(time.perf_counter() - started, 1),
        "created_at": datetime.now(UTC).isoformat(),
        **config.extra,
    }
    per_query = {name: result.per_query for name, result in scores.items()}
    return EvaluationResult(report, per_query, rankings)
