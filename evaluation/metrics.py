"""Ranking metrics with ranx: per-query and mean values, and paired comparisons against a baseline.

What is measured is fixed here (`METRICS`); how is ranx's. Runs are built from ranked id lists with strictly
decreasing scores, so ranx scores exactly the order the pipeline returned, ties included. Every judged query is in
every run: a query with no results scores 0 instead of leaving the mean.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from ranx import Qrels, Run, compare, evaluate

METRICS = ("ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100")
PRIMARY_METRIC = "ndcg@10"
Ranking = Mapping[str, Sequence[str]]  # query id -> ranked document ids, best first


@dataclass(frozen=True)
class VariantScores:
    """Mean and per-query values of each metric for one variant."""

    means: dict[str, float]
    per_query: dict[str, dict[str, float]]  # metric -> query id -> value


@dataclass(frozen=True)
class Comparison:
    """A variant against the baseline on one metric.

    Attributes:
        delta: mean(variant) - mean(baseline).
        p_value: two-sided paired randomisation (sign-flip) test, seeded.
        p_value_t: two-sided paired Student's t-test (ranx).
        wins, ties, losses: queries where the variant scores above, equal to, below the baseline (ranx).
    """

    delta: float
    p_value: float
    p_value_t: float
    wins: int
    ties: int
    losses: int


def paired_randomization_test(control: list[float], treatment: list[float], seed: int, permutations: int) -> float:
    """Two-sided p-value of a paired sign-flip randomisation test, reproducible for a given seed.

    ranx's own Fisher test seeds only the calling thread of a numba-parallel loop, so its p-values vary from run
    to run whatever `random_seed` is; this test draws all permutations from one seeded generator instead.

    >>> paired_randomization_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], seed=1, permutations=100)
    1.0
    """
    diffs = np.asarray(treatment, dtype=np.float64) - np.asarray(control, dtype=np.float64)
    observed = abs(diffs.mean())
    signs = np.random.default_rng(seed).choice((-1.0, 1.0), size=(permutations, len(diffs)))
    extreme = np.abs((signs * diffs).mean(axis=1)) >= observed - 1e-12
    return float((extreme.sum() + 1) / (permutations + 1))


def to_run(ranking: Ranking, qrels: Mapping[str, Mapping[str, int]], name: str) -> Run:
    """A ranx Run holding every judged query, in the given order (scores n, n-1, ..., 1)."""
    run = {
        query_id: {doc_id: float(len(docs) - rank) for rank, doc_id in enumerate(docs)}
        for query_id in qrels
        for docs in [list(dict.fromkeys(ranking.get(query_id, ())))]
    }
    return Run(run, name=name)


def score_ranking(qrels: Mapping[str, Mapping[str, int]], ranking: Ranking, name: str = "run") -> VariantScores:
    """Every metric in `METRICS` for one ranking over judged queries (grade > 0 is relevant).

    >>> scores = score_ranking({"q": {"a": 1}}, {"q": ["b", "a"]})
    >>> scores.means["mrr@10"], scores.per_query["recall@10"]["q"]
    (0.5, 1.0)
    """
    run = to_run(ranking, qrels, name)
    means = evaluate(Qrels(dict(qrels)), run, list(METRICS), make_comparable=False)
    per_query = {metric: {q: float(v) for q, v in run.scores[metric].items()} for metric in METRICS}
    return VariantScores({metric: float(means[metric]) for metric in METRICS}, per_query)


def compare_to_baseline(
    qrels: Mapping[str, Mapping[str, int]],
    rankings: Mapping[str, Ranking],
    baseline: str,
    seed: int = 42,
    permutations: int = 10_000,
) -> dict[str, dict[str, Comparison]]:
    """Each non-baseline ranking against `baseline`, per metric: paired tests and wins/ties/losses."""
    others = [name for name in rankings if name != baseline]
    if not others:
        return {}
    runs = [to_run(rankings[name], qrels, name) for name in [baseline, *others]]
    report = compare(
        Qrels(dict(qrels)), runs, list(METRICS), stat_test="student", rounding_digits=12, make_comparable=False
    ).to_dict()
    per_query = {run.name: run.scores for run in runs}
    queries = sorted(qrels)
    results: dict[str, dict[str, Comparison]] = {}
    for name in others:
        results[name] = {}
        for metric in METRICS:
            control = [float(per_query[baseline][metric][q]) for q in queries]
            treatment = [float(per_query[name][metric][q]) for q in queries]
            outcome = report[name]["win_tie_loss"][baseline][metric]
            results[name][metric] = Comparison(
                delta=float(np.mean(treatment) - np.mean(control)),
                p_value=paired_randomization_test(control, treatment, seed, permutations),
                p_value_t=float(report[name]["comparisons"][baseline][metric]),
                wins=int(outcome["W"]),
                ties=int(outcome["T"]),
                losses=int(outcome["L"]),
            )
    return results
