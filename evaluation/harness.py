"""Offline evaluation: every variant ranks the same first-stage candidates of the same queries, then ranx scores
exactly what the API would have returned."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from evaluation.errors import DatasetFormatError
from evaluation.filter_report import filter_report
from evaluation.kg_report import KgCollector
from evaluation.metrics import METRICS, compare_to_baseline, score_ranking
from evaluation.variants import BASELINE, build_variants
from service.encoder import Encoder
from service.kg_stage import KgPathStage
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
    variants = build_variants(config.variants, config.adapters, encoder.identity, settings, encoder)
    rankings: dict[str, dict[str, list[str]]] = {v.name: {} for v in variants}
    latencies: dict[str, list[float]] = {v.name: [] for v in variants}
    filter_blocks: dict[str, dict[str, Any]] = {}
    kg_collectors = {
        v.name: KgCollector(stage) for v in variants for stage in v.stages if isinstance(stage, KgPathStage)
    }
    with CorpusIndex(dataset, settings, encoder, config.top_k, progress=progress) as corpus:
        pipelines = {v.name: corpus.pipeline(v.stages, v.retriever) for v in variants}
        retrievers = {v.retriever.mode: v.retriever for v in variants}
        for query_id in tqdm(query_ids, desc=f"evaluate {dataset.name}/{config.split}", disable=not progress):
            # variants that share a first stage rank the very same candidates
            first_stages = {
                mode: corpus.first_stage(texts[query_id], config.top_k, retriever)
                for mode, retriever in retrievers.items()
            }
            for name, pipeline in pipelines.items():
                first_stage, encode_ms = first_stages[pipeline.first_stage_mode]
                outcome = pipeline.rank(corpus.require_collection(), first_stage, encode_ms)
                ranked = [item.doc_id for item in outcome.results]
                if config.drop_self_hits:
                    ranked = [doc_id for doc_id in ranked if doc_id != query_id]
                rankings[name][query_id] = ranked
                latencies[name].append(outcome.timings_ms["total"])
                if name in kg_collectors:
                    kg_collectors[name].add(outcome)
        if any(v.relevance_filter is not None for v in variants):
            dev = dataset.split("dev")
            dev_ids = sorted(q for q in dev.qrels if q in texts)
            for variant in variants:
                if variant.relevance_filter is not None:
                    test_lists = corpus.candidate_lists(query_ids, texts, qrels, variant.retriever)
                    dev_lists = corpus.candidate_lists(dev_ids, texts, dev.qrels, variant.retriever)
                    filter_blocks[variant.name] = filter_report(variant.relevance_filter, test_lists, dev_lists)
        cache = corpus.cache
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
                "first_stage": pipelines[name].first_stage_mode,
                "latency_ms": {
                    "p50": round(float(np.percentile(latencies[name], 50)), 3),
                    "p95": round(float(np.percentile(latencies[name], 95)), 3),
                },
                **({"filter": filter_blocks[name]} if name in filter_blocks else {}),
                **({"kg": kg_collectors[name].report()} if name in kg_collectors else {}),
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
    }
    per_query = {name: result.per_query for name, result in scores.items()}
    return EvaluationResult(report, per_query, rankings)
