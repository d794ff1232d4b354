"""Cosine Adapter (after Rossi et al., CIKM 2024): a query-dependent monotone map from raw cosine to relevance.

An MLP reads the query embedding and the shape of its candidate score list (top-1, mean, std, top-1 minus
top-10) and outputs the parameters of a monotone map `f`; `p = sigmoid(f(s))` is the relevance probability of a
candidate with raw cosine `s`, and one global threshold τ (chosen on dev, stored in the artifact) keeps or drops it.

Families (slopes positive by construction, so the order inside a query never changes):
- linear: ``f(s) = a·s + b`` with ``a = softplus(·) > 0``
- power:  ``f(s) = a·u^c + b`` with ``u = (s + 1) / 2`` in [0, 1] and ``a, c = softplus(·) > 0``
"""

from __future__ import annotations

import math
from typing import ClassVar, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

from adapters.base import Adapter
from adapters.errors import AdapterError

FAMILIES = ("linear", "power")
SCORE_FEATURES = 4
ARM_FEATURES = 2 * SCORE_FEATURES  # hybrid first stage: the shape of each arm's score list
_MIN_POSITIVE = 1e-4


def score_list_features(scores: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(top-1, mean, std, top-1 minus top-10) of one query's candidate scores, sorted or not.

    >>> [round(float(x), 3) for x in score_list_features(np.array([0.9, 0.5, 0.1], dtype=np.float32))]
    [0.9, 0.5, 0.327, 0.8]
    """
    if scores.size == 0:
        return np.zeros(SCORE_FEATURES, dtype=np.float32)
    ordered = np.sort(scores)[::-1]
    tenth = ordered[min(9, ordered.size - 1)]
    return np.array([ordered[0], ordered.mean(), ordered.std(), ordered[0] - tenth], dtype=np.float32)


def arm_features(dense: npt.NDArray[np.float32], lexical: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """(8,) features of a fused candidate list: the score-list shape of its cosines and of its log(1 + BM25).

    With them the map over fused scores knows, per query, how strong each arm's evidence was.

    >>> arm_features(np.array([0.9, 0.5], "f4"), np.array([0.0, 0.0], "f4")).shape
    (8,)
    """
    return np.concatenate(
        [
            score_list_features(np.asarray(dense, np.float32)),
            score_list_features(np.log1p(np.asarray(lexical, np.float32))),
        ]
    ).astype(np.float32)


class CosineAdapter(Adapter):
    """Maps (query embedding, score-list features, raw cosines) to calibrated relevance probabilities.

    Args:
        dimension: query embedding width d.
        hidden: hidden units of the parameter MLP.
        family: "linear" or "power".
        threshold: the global τ on p (set after training, stored with the weights).
        arm_features: 0 for a dense first stage; `ARM_FEATURES` when it maps fused hybrid scores and also reads
            each arm's score-list shape (`arm_features()`).
        first_stage: the first stage whose scores it was trained to map ("dense" or "hybrid"); serving it on
            another first stage's scores would be meaningless, so the service refuses that.
    """

    kind: ClassVar[str] = "cosine"
    config_keys: ClassVar[tuple[str, ...]] = (
        "dimension",
        "hidden",
        "family",
        "threshold",
        "arm_features",
        "first_stage",
    )

    def __init__(
        self,
        dimension: int,
        hidden: int = 64,
        family: str = "linear",
        threshold: float = 0.5,
        arm_features: int = 0,
        first_stage: str = "dense",
    ) -> None:
        super().__init__()
        if family not in FAMILIES:
            raise AdapterError(f"family must be one of {FAMILIES}, got {family!r}")
        if not 0.0 < threshold < 1.0:
            raise AdapterError(f"threshold must be in (0, 1), got {threshold}")
        if arm_features not in (0, ARM_FEATURES):
            raise AdapterError(f"arm_features must be 0 or {ARM_FEATURES}, got {arm_features}")
        self.dimension, self.hidden, self.family, self.threshold = dimension, hidden, family, float(threshold)
        self.arm_features, self.first_stage = arm_features, first_stage
        self.parameter_names = ("a", "b") if family == "linear" else ("a", "b", "c")
        last = nn.Linear(hidden, len(self.parameter_names))
        self.net = nn.Sequential(nn.Linear(dimension + SCORE_FEATURES + arm_features, hidden), nn.ReLU(), last)
        with torch.no_grad():  # start near p = sigmoid(10·s - 6): increasing, roughly centred on typical cosines
            last.weight.mul_(0.01)
            start = [_inverse_softplus(10.0), -6.0]
            if family == "power":
                start = [_inverse_softplus(12.0), -6.0, _inverse_softplus(1.0)]
            last.bias.copy_(torch.tensor(start))

    def map_parameters(self, queries: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """(q, 2 or 3) map parameters per query: a > 0, b, and c > 0 for the power family."""
        raw = self.net(torch.cat([queries, features], dim=1))
        a = functional.softplus(raw[:, 0]) + _MIN_POSITIVE
        columns = [a, raw[:, 1]]
        if self.family == "power":
            columns.append(functional.softplus(raw[:, 2]) + _MIN_POSITIVE)
        return torch.stack(columns, dim=1)

    def logits(self, parameters: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """f(s) for (q, n) raw cosines, given (q, k) map parameters."""
        a, b = parameters[:, :1], parameters[:, 1:2]
        if self.family == "linear":
            return a * scores + b
        c = parameters[:, 2:3]
        unit = ((scores + 1.0) / 2.0).clamp(min=1e-6, max=1.0)
        return a * unit.pow(c) + b

    def forward(self, queries: torch.Tensor, features: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Logits f(s), shape (q, n), for queries (q, d), features (q, 4 + arm_features) and raw scores (q, n)."""
        return self.logits(self.map_parameters(queries, features), scores)

    def relevance(
        self,
        query: npt.NDArray[np.float32],
        scores: npt.NDArray[np.float32],
        extra_features: npt.NDArray[np.float32] | None = None,
    ) -> tuple[npt.NDArray[np.float32], dict[str, float]]:
        """One query: (n,) probabilities for its raw scores, and the map parameters by name.

        `extra_features` are the (arm_features,) `arm_features()` of a hybrid candidate list.
        Computed in numpy from the current weights (the same arithmetic as `forward`): serving one query
        through torch's per-operation dispatch costs several times more than the arithmetic itself.
        """
        extra = np.zeros(0, np.float32) if extra_features is None else np.asarray(extra_features, np.float32)
        if extra.shape != (self.arm_features,):
            raise AdapterError(f"this adapter reads {self.arm_features} arm features, got shape {extra.shape}")
        first, last = cast(nn.Linear, self.net[0]), cast(nn.Linear, self.net[2])
        inputs = np.concatenate([np.asarray(query, dtype=np.float32), score_list_features(scores), extra])
        hidden = np.maximum(first.weight.detach().numpy() @ inputs + first.bias.detach().numpy(), 0.0)
        raw = last.weight.detach().numpy() @ hidden + last.bias.detach().numpy()
        a = _softplus(raw[0]) + _MIN_POSITIVE
        b = float(raw[1])
        values = np.asarray(scores, dtype=np.float64)
        if self.family == "linear":
            logits = a * values + b
            named = {"a": a, "b": b}
        else:
            c = _softplus(raw[2]) + _MIN_POSITIVE
            logits = a * np.clip((values + 1.0) / 2.0, 1e-6, 1.0) ** c + b
            named = {"a": a, "b": b, "c": c}
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        return probabilities.astype(np.float32), named


def _softplus(value: float) -> float:
    return float(np.logaddexp(0.0, value))


def _inverse_softplus(value: float) -> float:
    return math.log(math.expm1(value))
