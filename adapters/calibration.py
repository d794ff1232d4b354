"""Scoring relevance filters over padded candidate lists: returned-set P/R/F1, thresholds, PR-AUC, ECE.

Arrays are (m, K): m queries, up to K candidates each, `mask` marking real entries. Set metrics are pooled over
all (query, candidate) pairs (micro-averaged); recall is relative to the relevant documents present among the
candidates, since a filter cannot return what the first stage did not find.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float32] | npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
_GRID = 512


@dataclass(frozen=True)
class SetScores:
    """Pooled precision, recall and F1 of the returned sets, and their mean size."""

    precision: float
    recall: float
    f1: float
    mean_kept: float

    def as_dict(self) -> dict[str, float]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "mean_kept": self.mean_kept}


def keep_mask(values: Floats, mask: Bools, threshold: float, min_results: int) -> Bools:
    """Entries with value >= threshold, plus each query's `min_results` highest values (real entries only).

    >>> keep_mask(np.array([[0.9, 0.2], [0.1, 0.05]]), np.ones((2, 2), bool), 0.5, 1).tolist()
    [[True, False], [True, False]]
    """
    kept = (values >= threshold) & mask
    if min_results > 0:
        ranked = np.where(mask, values, -np.inf)
        order = np.argsort(-ranked, axis=1, kind="stable")[:, :min_results]
        forced = np.zeros_like(mask)
        np.put_along_axis(forced, order, True, axis=1)
        kept |= forced & mask
    return kept


def top_k_mask(mask: Bools, k: int) -> Bools:
    """The first k real entries of each row (rows are in first-stage order)."""
    positions = np.cumsum(mask, axis=1)
    return mask & (positions <= k)


def set_scores(kept: Bools, labels: Bools, mask: Bools) -> SetScores:
    """Pooled P/R/F1 of `kept` against `labels` (recall over the relevant entries present)."""
    true_positive = float((kept & labels & mask).sum())
    kept_total = float((kept & mask).sum())
    relevant_total = float((labels & mask).sum())
    precision = true_positive / kept_total if kept_total else 0.0
    recall = true_positive / relevant_total if relevant_total else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    rows = max(int(mask.any(axis=1).sum()), 1)
    return SetScores(precision, recall, f1, kept_total / rows)


def threshold_grid(values: Floats, mask: Bools) -> npt.NDArray[np.float64]:
    """Candidate thresholds: the real values themselves (at most 512 of them, evenly spaced in rank)."""
    real = np.asarray(values, dtype=np.float64)[mask]
    return np.unique(np.quantile(real, np.linspace(0.0, 1.0, _GRID), method="inverted_cdf"))


def choose_threshold(
    values: Floats,
    labels: Bools,
    mask: Bools,
    min_results: int,
    target_recall: float | None = None,
) -> tuple[float, SetScores]:
    """The threshold that maximises F1, or (with `target_recall`) the highest one whose recall reaches it."""
    best: tuple[float, SetScores] | None = None
    for threshold in threshold_grid(values, mask):
        scores = set_scores(keep_mask(values, mask, float(threshold), min_results), labels, mask)
        if target_recall is not None:
            if scores.recall >= target_recall:
                best = (float(threshold), scores)
        elif best is None or scores.f1 > best[1].f1:
            best = (float(threshold), scores)
    if best is None:  # no threshold reaches the target recall: keep everything
        threshold = float(np.min(np.asarray(values)[mask]))
        best = (threshold, set_scores(keep_mask(values, mask, threshold, min_results), labels, mask))
    return best


def choose_top_k(labels: Bools, mask: Bools) -> tuple[int, SetScores]:
    """The fixed k (1..K) whose first-k sets maximise pooled F1."""
    best_k, best = 1, set_scores(top_k_mask(mask, 1), labels, mask)
    for k in range(2, mask.shape[1] + 1):
        scores = set_scores(top_k_mask(mask, k), labels, mask)
        if scores.f1 > best.f1:
            best_k, best = k, scores
    return best_k, best


def best_prefix_cut(labels: Bools, mask: Bools, min_results: int, iterations: int = 50) -> SetScores:
    """The best pooled F1 any per-query prefix cut can reach: an upper bound for every order-preserving filter.

    Each row (in ranked order) keeps its first n entries, n >= min_results, with n chosen per row with hindsight
    of the labels. Pooled F1 = 2·TP / (kept + relevant) is a ratio, maximised exactly by Dinkelbach's iteration:
    per row maximise 2·tp(n) - λ·n, then set λ to the F1 reached, until it stops rising.

    >>> labels, mask = np.array([[True, False, True], [False, False, False]]), np.ones((2, 3), bool)
    >>> round(best_prefix_cut(labels, mask, 0).f1, 4), round(best_prefix_cut(labels, mask, 1).f1, 4)
    (0.8, 0.6667)
    """
    real_labels = labels & mask
    lengths = mask.sum(axis=1)
    hits = np.concatenate([np.zeros((labels.shape[0], 1)), np.cumsum(real_labels, axis=1)], axis=1)
    sizes = np.arange(labels.shape[1] + 1)[None, :]
    allowed = (sizes >= np.minimum(min_results, lengths)[:, None]) & (sizes <= lengths[:, None])
    ratio = 0.0
    kept = np.zeros_like(mask)
    for _ in range(iterations):
        gain = np.where(allowed, 2.0 * hits - ratio * sizes, -np.inf)
        cut = np.argmax(gain, axis=1)
        kept = mask & (np.arange(labels.shape[1])[None, :] < cut[:, None])
        reached = set_scores(kept, labels, mask).f1
        if reached <= ratio + 1e-12:
            break
        ratio = reached
    return set_scores(kept, labels, mask)


def average_precision(values: Floats, labels: Bools, mask: Bools) -> float:
    """Area under the pooled precision-recall curve (average precision, ties broken pessimistically).

    >>> round(average_precision(np.array([[0.9, 0.8, 0.1]]), np.array([[True, False, True]]), np.ones((1, 3), bool)), 4)
    0.8333
    """
    real_values = np.asarray(values, dtype=np.float64)[mask]
    real_labels = labels[mask]
    positives = int(real_labels.sum())
    if positives == 0:
        return 0.0
    order = np.lexsort((real_labels, -real_values))  # equal values: negatives first
    hits = np.cumsum(real_labels[order])
    precision = hits / np.arange(1, len(order) + 1)
    return float((precision * real_labels[order]).sum() / positives)


def precision_at_recall(values: Floats, labels: Bools, mask: Bools, recall: float = 0.95) -> float:
    """Best pooled precision among thresholds whose recall is at least `recall`."""
    real_values = np.asarray(values, dtype=np.float64)[mask]
    real_labels = labels[mask]
    positives = int(real_labels.sum())
    if positives == 0:
        return 0.0
    order = np.lexsort((real_labels, -real_values))
    hits = np.cumsum(real_labels[order])
    precisions = hits / np.arange(1, len(order) + 1)
    reached = hits / positives >= recall
    return float(precisions[reached].max()) if reached.any() else 0.0


def expected_calibration_error(probabilities: Floats, labels: Bools, mask: Bools, bins: int = 10) -> float:
    """ECE over equal-width probability bins: sum over bins of |bin share| x |mean p - observed rate|.

    >>> expected_calibration_error(np.array([[0.0, 1.0]]), np.array([[False, True]]), np.ones((1, 2), bool))
    0.0
    """
    p = np.asarray(probabilities, dtype=np.float64)[mask]
    y = labels[mask].astype(np.float64)
    if p.size == 0:
        return 0.0
    index = np.minimum((p * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        members = index == b
        if members.any():
            error += members.mean() * abs(p[members].mean() - y[members].mean())
    return float(error)


def reliability_table(probabilities: Floats, labels: Bools, mask: Bools, bins: int = 10) -> list[dict[str, float]]:
    """Per bin: lower edge, count, mean predicted p, observed relevant rate (for reliability diagrams)."""
    p = np.asarray(probabilities, dtype=np.float64)[mask]
    y = labels[mask].astype(np.float64)
    index = np.minimum((p * bins).astype(int), bins - 1)
    table = []
    for b in range(bins):
        members = index == b
        count = int(members.sum())
        table.append(
            {
                "lower": b / bins,
                "count": count,
                "mean_p": float(p[members].mean()) if count else 0.0,
                "observed": float(y[members].mean()) if count else 0.0,
            }
        )
    return table
