"""The `filter` block of a relevance-filtering variant: its returned sets and calibration against two baselines
tuned on dev for the same goal and applied to the same test candidates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from adapters import (
    CandidateLists,
    CosineAdapter,
    average_precision,
    best_prefix_cut,
    choose_threshold,
    choose_top_k,
    expected_calibration_error,
    keep_mask,
    precision_at_recall,
    predict,
    set_scores,
    top_k_mask,
)


@dataclass(frozen=True)
class RelevanceFilter:
    """What the harness needs to score a filter: the adapter (with τ), `min_results`, and the τ goal."""

    adapter: CosineAdapter
    min_results: int = 1
    target_recall: float | None = None


def filter_report(relevance_filter: RelevanceFilter, test: CandidateLists, dev: CandidateLists) -> dict[str, Any]:
    """Returned-set P/R/F1 and mean size, pooled PR-AUC (p and raw cosine), precision at 95 % recall, ECE."""
    adapter, min_results = relevance_filter.adapter, relevance_filter.min_results
    probabilities = predict(adapter, test)
    kept = keep_mask(probabilities, test.mask, adapter.threshold, min_results)
    ours = set_scores(kept, test.labels, test.mask)
    target_recall = relevance_filter.target_recall
    best_k, _ = choose_top_k(dev.labels, dev.mask)
    top_k_scores = set_scores(top_k_mask(test.mask, best_k), test.labels, test.mask)
    oracle = best_prefix_cut(test.labels, test.mask, min_results)
    report = {
        **{key: round(value, 6) for key, value in ours.as_dict().items()},
        "threshold": round(adapter.threshold, 6),
        "pr_auc": round(average_precision(probabilities, test.labels, test.mask), 6),
        "pr_auc_raw_cosine": round(average_precision(test.scores, test.labels, test.mask), 6),
        "p_at_r95": round(precision_at_recall(probabilities, test.labels, test.mask, 0.95), 6),
        "ece": round(expected_calibration_error(probabilities, test.labels, test.mask), 6),
        "relevant_in_candidates": int((test.labels & test.mask).sum()),
        "baseline_global_cutoff": _global_cutoff(test.scores, dev.scores, test, dev, min_results, target_recall),
        "baseline_best_top_k": {
            "precision": round(top_k_scores.precision, 6),
            "recall": round(top_k_scores.recall, 6),
            "f1": round(top_k_scores.f1, 6),
            "k": best_k,
        },
        # what no order-preserving filter can beat: the best per-query cut chosen with the test labels in hand
        "oracle_per_query_cut": {
            "precision": round(oracle.precision, 6),
            "recall": round(oracle.recall, 6),
            "f1": round(oracle.f1, 6),
            "mean_kept": round(oracle.mean_kept, 6),
        },
    }
    if test.cosines is not None and dev.cosines is not None:  # scores are fused: also a cut-off on raw cosines
        cosine_cutoff = _global_cutoff(test.cosines, dev.cosines, test, dev, min_results, target_recall)
        report["baseline_cosine_cutoff"] = cosine_cutoff
    return report


def _global_cutoff(
    test_values: npt.NDArray[np.float32],
    dev_values: npt.NDArray[np.float32],
    test: CandidateLists,
    dev: CandidateLists,
    min_results: int,
    target_recall: float | None,
) -> dict[str, float]:
    """One global threshold on a per-candidate value (the first-stage score, or the raw cosine: what a vector
    database offers), tuned on dev for the same goal, with the same `min_results` (the highest values are forced
    in), applied to the same test candidates."""
    cutoff, _ = choose_threshold(dev_values, dev.labels, dev.mask, min_results, target_recall)
    scores = set_scores(keep_mask(test_values, test.mask, cutoff, min_results), test.labels, test.mask)
    return {
        "precision": round(scores.precision, 6),
        "recall": round(scores.recall, 6),
        "f1": round(scores.f1, 6),
        "threshold": round(cutoff, 6),
    }
