"""Statistics for online experiments: intervals and two-sided tests, shared by live reports and the simulator."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats

Z_95 = 1.959963984540054


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> Interval:
    """Wilson score interval of a proportion (sound at small counts and near 0 or 1).

    >>> wilson_interval(0, 0)
    Interval(low=0.0, high=1.0)
    >>> round(wilson_interval(50, 100).low, 3), round(wilson_interval(50, 100).high, 3)
    (0.404, 0.596)
    """
    if trials == 0:
        return Interval(0.0, 1.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(values: Sequence[float], z: float = Z_95) -> Interval:
    """Normal-approximation interval of a mean (the per-impression reciprocal ranks are bounded, n is large).

    >>> mean_interval([1.0, 1.0])
    Interval(low=1.0, high=1.0)
    """
    n = len(values)
    if n == 0:
        return Interval(0.0, 0.0)
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, mean)
    variance = sum((v - mean) ** 2 for v in values) / (n - 1)
    half = z * math.sqrt(variance / n)
    return Interval(mean - half, mean + half)


def welch_p_value(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided Welch's t-test p-value for a difference in means; 1.0 when either side is too small or constant.

    >>> welch_p_value([0.0, 1.0], [0.0, 1.0])
    1.0
    """
    if len(a) < 2 or len(b) < 2:
        return 1.0
    mean_a, mean_b = sum(a) / len(a), sum(b) / len(b)
    var_a = sum((x - mean_a) ** 2 for x in a) / (len(a) - 1) / len(a)
    var_b = sum((x - mean_b) ** 2 for x in b) / (len(b) - 1) / len(b)
    spread = var_a + var_b
    if spread == 0:
        return 1.0 if mean_a == mean_b else 0.0
    t = (mean_a - mean_b) / math.sqrt(spread)
    # Welch-Satterthwaite degrees of freedom
    dof = spread**2 / ((var_a**2 / (len(a) - 1) if var_a else 0.0) + (var_b**2 / (len(b) - 1) if var_b else 0.0))
    return float(2 * stats.t.sf(abs(t), dof))


def two_proportion_p_value(successes_a: int, trials_a: int, successes_b: int, trials_b: int) -> float:
    """Two-sided pooled z-test for a difference of two proportions; 1.0 when undefined.

    >>> two_proportion_p_value(10, 100, 10, 100)
    1.0
    """
    if trials_a == 0 or trials_b == 0:
        return 1.0
    pooled = (successes_a + successes_b) / (trials_a + trials_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / trials_a + 1 / trials_b))
    if spread == 0:
        return 1.0
    z = (successes_a / trials_a - successes_b / trials_b) / spread
    return float(2 * stats.norm.sf(abs(z)))


def sign_test_p_value(wins: int, losses: int) -> float:
    """Two-sided exact binomial (sign) test of wins against losses, ties left out: interleaving's test.

    >>> sign_test_p_value(0, 0)
    1.0
    >>> round(sign_test_p_value(15, 5), 4)
    0.0414
    """
    if wins + losses == 0:
        return 1.0
    return float(stats.binomtest(wins, wins + losses, 0.5).pvalue)
