"""Deterministic variant assignment: a unit (user or session id) always gets the same variant of an experiment."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping


def unit_position(experiment: str, unit: str) -> float:
    """Where `unit` falls in [0, 1) for `experiment`: the first 8 bytes of sha256(experiment, unit).

    Salting with the experiment id keeps assignments of different experiments independent.

    >>> unit_position("exp", "user-1") == unit_position("exp", "user-1")
    True
    >>> 0.0 <= unit_position("exp", "user-1") < 1.0
    True
    """
    digest = hashlib.sha256(f"{experiment}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_variant(experiment: str, unit: str, weights: Mapping[str, float]) -> str:
    """The variant of `weights` (name -> positive traffic weight, in a fixed order) that `unit` gets.

    Weights are normalised; the unit interval is cut in the mapping's order, so adding a variant at the end only moves
    units out of the last slices.

    >>> assign_variant("e", "u", {"only": 1.0})
    'only'
    """
    if not weights:
        raise ValueError("an experiment needs at least one variant")
    total = float(sum(weights.values()))
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"traffic weights must be non-negative with a positive sum, got {dict(weights)}")
    position = unit_position(experiment, unit) * total
    cumulative = 0.0
    for name, weight in weights.items():
        cumulative += weight
        if position < cumulative:
            return name
    return next(reversed(list(weights)))
