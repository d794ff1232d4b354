"""Score fusion for a hybrid first stage: both arms' scores over one candidate set -> one fused score each.

Both functions take complete score vectors (every candidate scored by both arms, not just the ones an arm
retrieved), so a document that only one arm found is still judged on the other arm's real score.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from indexes.errors import InvalidInputError

Scores = npt.NDArray[np.float32]


def min_max(scores: Scores) -> Scores:
    """Scores rescaled to [0, 1] over this set; all equal gives 1 where positive, else 0.

    >>> min_max(np.array([2.0, 4.0, 3.0], dtype=np.float32)).tolist()
    [0.0, 1.0, 0.5]
    """
    values = np.asarray(scores, dtype=np.float32)
    if values.size == 0:
        return values
    low, high = float(values.min()), float(values.max())
    if high > low:
        return ((values - low) / (high - low)).astype(np.float32)
    return (values > 0).astype(np.float32)


def convex_fusion(dense: Scores, lexical: Scores, dense_weight: float) -> Scores:
    """``w · minmax(dense) + (1 - w) · minmax(lexical)`` over one query's candidates.

    >>> convex_fusion(np.array([0.9, 0.5], "f4"), np.array([1.0, 7.0], "f4"), 0.5).tolist()
    [0.5, 0.5]
    """
    _check_pair(dense, lexical)
    if not 0.0 <= dense_weight <= 1.0:
        raise InvalidInputError(f"dense_weight must be in [0, 1], got {dense_weight}")
    return (dense_weight * min_max(dense) + (1.0 - dense_weight) * min_max(lexical)).astype(np.float32)


def ranks(scores: Scores) -> npt.NDArray[np.int64]:
    """1-based rank of each score, best first; ties keep input order.

    >>> ranks(np.array([0.2, 0.9, 0.2], "f4")).tolist()
    [2, 1, 3]
    """
    order = np.argsort(-np.asarray(scores), kind="stable")
    result = np.empty(order.size, dtype=np.int64)
    result[order] = np.arange(1, order.size + 1)
    return result


def rrf_fusion(dense: Scores, lexical: Scores, k: int = 60) -> Scores:
    """Reciprocal rank fusion ``1/(k + rank_dense) + 1/(k + rank_lexical)``; no lexical credit for a zero score.

    >>> [round(x, 4) for x in rrf_fusion(np.array([0.9, 0.5], "f4"), np.array([0.0, 2.0], "f4"), 60).tolist()]
    [0.0164, 0.0325]
    """
    _check_pair(dense, lexical)
    if k < 1:
        raise InvalidInputError(f"rrf k must be >= 1, got {k}")
    lexical_values = np.asarray(lexical)
    lexical_part = np.where(lexical_values > 0, 1.0 / (k + ranks(lexical)), 0.0)
    return (1.0 / (k + ranks(dense)) + lexical_part).astype(np.float32)


def _check_pair(dense: Scores, lexical: Scores) -> None:
    if np.shape(dense) != np.shape(lexical) or np.ndim(dense) != 1:
        raise InvalidInputError(
            f"dense and lexical scores must be (n,) alike, got {np.shape(dense)} and {np.shape(lexical)}"
        )
