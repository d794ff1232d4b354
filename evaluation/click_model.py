"""A position-biased click model over qrels: what a simulated user clicks in a ranked list."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PositionBiasedClickModel:
    """P(click at rank r) = examination(r) x attractiveness(grade), with examination(r) = (1 / r) ** eta.

    Attributes:
        eta: how fast attention falls with rank (1: rank 2 is looked at half as often as rank 1).
        click_relevant: probability of clicking an examined document judged relevant (grade > 0).
        click_irrelevant: probability of clicking an examined unjudged or irrelevant document (noise).
        user_spread: users differ in how readily they click: each impression's probabilities are scaled by a factor
            drawn uniformly from [1 - user_spread, 1 + user_spread] (clipped to 1). 0: every user alike.
    """

    eta: float = 1.0
    click_relevant: float = 0.9
    click_irrelevant: float = 0.1
    user_spread: float = 0.0

    def user_factors(self, impressions: int, rng: np.random.Generator) -> np.ndarray:
        """(impressions, 1) per-impression click-propensity factors (all 1 when `user_spread` is 0)."""
        if self.user_spread == 0:
            return np.ones((impressions, 1))
        return rng.uniform(1 - self.user_spread, 1 + self.user_spread, size=(impressions, 1))

    def probabilities(self, ranked_ids: Sequence[str], judged: Mapping[str, int], length: int) -> np.ndarray:
        """(length,) click probability per position; positions past the list's end are 0.

        >>> PositionBiasedClickModel().probabilities(["a", "b"], {"a": 1}, 3).round(2).tolist()
        [0.9, 0.05, 0.0]
        """
        probabilities = np.zeros(length, dtype=np.float64)
        for position, doc_id in enumerate(ranked_ids[:length]):
            examined = (1.0 / (position + 1)) ** self.eta
            attractive = self.click_relevant if judged.get(doc_id, 0) > 0 else self.click_irrelevant
            probabilities[position] = examined * attractive
        return probabilities

    def to_dict(self) -> dict[str, float]:
        return {
            "eta": self.eta,
            "click_relevant": self.click_relevant,
            "click_irrelevant": self.click_irrelevant,
            "user_spread": self.user_spread,
        }


def first_click_reciprocal_rank(clicks: np.ndarray) -> np.ndarray:
    """Per row of an (n, L) click matrix, 1 / rank of the first click, 0 without clicks.

    >>> first_click_reciprocal_rank(np.array([[False, True], [False, False]])).tolist()
    [0.5, 0.0]
    """
    clicked = clicks.any(axis=1)
    first = clicks.argmax(axis=1)
    return np.where(clicked, 1.0 / (first + 1), 0.0)
