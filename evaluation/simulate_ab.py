"""Replay test queries as simulated live traffic: A/B or team-draft interleaving, clicks from a position-biased click
model over qrels, then the same statistics as the live experiment report, and the traffic each mode needs."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from evaluation.beir import BeirDataset
from evaluation.click_model import PositionBiasedClickModel, first_click_reciprocal_rank
from evaluation.harness import EvaluationConfig, run_evaluation
from service.encoder import Encoder
from service.experiments.assignment import assign_variant
from service.experiments.interleaving import TEAM_A, team_draft
from service.experiments.report import click_summary, interleaving_summary
from service.experiments.stats import (
    two_proportion_p_value,
    welch_p_value,
)
from service.settings import Settings

Mode = Literal["ab", "interleave"]
Rankings = Mapping[str, Mapping[str, Sequence[str]]]  # variant -> query id -> ranked document ids
INTERLEAVINGS_PER_QUERY = 16  # team-draft coin sequences drawn once per query; impressions pick one at random


@dataclass(frozen=True)
class SimulationConfig:
    """One simulated experiment between two variants.

    Attributes:
        variants: (A, B); A/B traffic is split evenly between them.
        impressions: simulated search requests in the reported run (the CLI's --queries).
        repetitions: simulated experiments per traffic level when estimating the traffic each mode needs.
        max_impressions: the largest traffic level tried (levels double from 50).
    """

    variants: tuple[str, str]
    mode: Mode = "ab"
    impressions: int = 2000
    list_length: int = 10
    seed: int = 42
    alpha: float = 0.05
    power: float = 0.8
    repetitions: int = 200
    max_impressions: int = 102_400
    click_model: PositionBiasedClickModel = field(default_factory=PositionBiasedClickModel)


class _Traffic:
    """Click probabilities per (variant, query, position) and, for interleaving, per (query, draw, position)."""

    def __init__(self, rankings: Rankings, qrels: Mapping[str, Mapping[str, int]], config: SimulationConfig) -> None:
        a, b = config.variants
        self.query_ids = sorted(q for q in qrels if q in rankings[a] and q in rankings[b])
        if not self.query_ids:
            raise ValueError(f"no judged query has rankings from both {a!r} and {b!r}")
        model, length = config.click_model, config.list_length
        self.click_model = model
        self.ab = np.stack(
            [np.stack([model.probabilities(rankings[v][q], qrels[q], length) for q in self.query_ids]) for v in (a, b)]
        )  # (2, Q, L)
        rng = random.Random(config.seed)
        shape = (len(self.query_ids), INTERLEAVINGS_PER_QUERY, length)
        self.mixed = np.zeros(shape)
        self.team_a = np.zeros(shape, dtype=bool)
        self.team_b = np.zeros(shape, dtype=bool)
        for row, q in enumerate(self.query_ids):
            for draw in range(INTERLEAVINGS_PER_QUERY):
                mixed = team_draft(rankings[a][q], rankings[b][q], length, rng)
                self.mixed[row, draw] = model.probabilities(mixed.ids, qrels[q], length)
                for position, team in enumerate(mixed.teams):
                    self.team_a[row, draw, position] = team == TEAM_A
                    self.team_b[row, draw, position] = team != TEAM_A

    def expected_reciprocal_rank(self) -> np.ndarray:
        """(2,) exact expected first-click reciprocal rank of A and B under the click model (the ground truth)."""
        survive = np.cumprod(1.0 - self.ab, axis=2)
        reach = np.concatenate([np.ones((*self.ab.shape[:2], 1)), survive[:, :, :-1]], axis=2)
        ranks = 1.0 / np.arange(1, self.ab.shape[2] + 1)
        return np.asarray((self.ab * reach * ranks).sum(axis=2).mean(axis=1))

    def ab_clicks(self, arms: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        queries = rng.integers(0, len(self.query_ids), size=len(arms))
        probabilities = np.minimum(self.ab[arms, queries] * self.click_model.user_factors(len(arms), rng), 1.0)
        return np.asarray(rng.random((len(arms), self.ab.shape[2])) < probabilities)

    def interleave_credit(self, impressions: int, rng: np.random.Generator) -> np.ndarray:
        """(n,) +1 / -1 / 0 per impression: the team whose documents got more clicks."""
        queries = rng.integers(0, len(self.query_ids), size=impressions)
        draws = rng.integers(0, INTERLEAVINGS_PER_QUERY, size=impressions)
        probabilities = np.minimum(self.mixed[queries, draws] * self.click_model.user_factors(impressions, rng), 1.0)
        clicks = rng.random((impressions, self.mixed.shape[2])) < probabilities
        a = (clicks & self.team_a[queries, draws]).sum(axis=1)
        b = (clicks & self.team_b[queries, draws]).sum(axis=1)
        return np.asarray(np.sign(a - b), dtype=np.int64)


def _ab_outcome(arms: np.ndarray, clicks: np.ndarray, names: tuple[str, str], alpha: float) -> dict[str, Any]:
    """The live report's statistics over simulated impressions (arm index per impression, its click matrix)."""
    reciprocal = first_click_reciprocal_rank(clicks)
    clicked = np.asarray(clicks.any(axis=1), dtype=bool)
    variants = {
        name: click_summary(reciprocal[arms == arm].tolist(), int(clicked[arms == arm].sum()))
        for arm, name in enumerate(names)
    }
    a, b = names
    p_value = welch_p_value(reciprocal[arms == 0].tolist(), reciprocal[arms == 1].tolist())
    p_ctr = two_proportion_p_value(
        variants[a]["clicked_impressions"], variants[a]["impressions"],
        variants[b]["clicked_impressions"], variants[b]["impressions"],
    )  # fmt: skip
    better = a if variants[a]["mrr"] >= variants[b]["mrr"] else b
    return {
        "winner": better if p_value < alpha else None,
        "p_value": p_value,
        "p_value_ctr": p_ctr,
        "test": "Welch's t-test on the reciprocal rank of the first click per impression",
        "variants": variants,
    }


def _interleave_outcome(credit: np.ndarray, names: tuple[str, str], alpha: float) -> dict[str, Any]:
    wins, losses = int((credit > 0).sum()), int((credit < 0).sum())
    summary = interleaving_summary(*names, wins, losses, len(credit) - wins - losses, alpha)
    return summary | {"impressions": len(credit)}


def _detection_rate(traffic: _Traffic, mode: Mode, impressions: int, truth: int, config: SimulationConfig) -> float:
    """Share of `repetitions` simulated experiments of this size that name the true winner at p < alpha."""
    rng = np.random.default_rng([config.seed, impressions, 0 if mode == "ab" else 1])
    names = config.variants
    detected = 0
    for _ in range(config.repetitions):
        if mode == "ab":
            arms = (rng.random(impressions) < 0.5).astype(np.int64)
            outcome = _ab_outcome(arms, traffic.ab_clicks(arms, rng), names, config.alpha)
        else:
            outcome = _interleave_outcome(traffic.interleave_credit(impressions, rng), names, config.alpha)
        detected += outcome["winner"] == names[truth]
    return detected / config.repetitions


def traffic_needed(traffic: _Traffic, mode: Mode, truth: int, config: SimulationConfig) -> dict[str, Any]:
    """The smallest traffic level (doubling from 50) at which the true winner is detected with the configured power."""
    levels: dict[str, float] = {}
    impressions = 50
    while impressions <= config.max_impressions:
        rate = _detection_rate(traffic, mode, impressions, truth, config)
        levels[str(impressions)] = rate
        if rate >= config.power:
            return {"impressions": impressions, "power": config.power, "detection_rate_by_impressions": levels}
        impressions *= 2
    return {"impressions": None, "power": config.power, "detection_rate_by_impressions": levels}


def simulate(rankings: Rankings, qrels: Mapping[str, Mapping[str, int]], config: SimulationConfig) -> dict[str, Any]:
    """One simulated experiment of `config.impressions` requests, plus the traffic both modes need.

    Units are assigned to A/B by the same hash the live service uses (`unit-<i>` of experiment `simulate-<seed>`).

    Returns:
        ``{"mode", "winner", "p_value", "variants": {...}, "true_winner", "traffic_needed": {"ab", "interleave"}, ...}``
    """
    traffic = _Traffic(rankings, qrels, config)
    expected = traffic.expected_reciprocal_rank()
    truth = int(np.argmax(expected))
    rng = np.random.default_rng(config.seed)
    names = config.variants
    if config.mode == "ab":
        experiment = f"simulate-{config.seed}"
        weights = {names[0]: 1.0, names[1]: 1.0}
        assigned = [assign_variant(experiment, f"unit-{i}", weights) for i in range(config.impressions)]
        arms = np.asarray([0 if name == names[0] else 1 for name in assigned])
        outcome = _ab_outcome(arms, traffic.ab_clicks(arms, rng), names, config.alpha)
    else:
        outcome = _interleave_outcome(traffic.interleave_credit(config.impressions, rng), names, config.alpha)
    return {
        "mode": config.mode,
        "impressions": config.impressions,
        "queries": len(traffic.query_ids),
        **outcome,
        "true_winner": names[truth],
        "expected_first_click_rr": {name: float(value) for name, value in zip(names, expected, strict=True)},
        "traffic_needed": {mode: traffic_needed(traffic, mode, truth, config) for mode in ("ab", "interleave")},
        "click_model": config.click_model.to_dict(),
        "alpha": config.alpha,
        "seed": config.seed,
    }


def simulate_on_dataset(
    dataset: Path,
    config: SimulationConfig,
    settings: Settings,
    encoder: Encoder,
    *,
    adapters: Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Rank the dataset's test queries with both variants through the pipeline (as `glassbox evaluate` does), then
    simulate the experiment on those rankings; the report adds each variant's offline nDCG@10."""
    evaluation = run_evaluation(
        EvaluationConfig(dataset=dataset, variants=list(config.variants), adapters=adapters),
        settings,
        encoder,
        progress=progress,
    )
    qrels = BeirDataset(dataset).split("test").qrels
    report = simulate(evaluation.rankings, qrels, config)
    report["dataset"] = evaluation.report["dataset"]
    report["offline_ndcg@10"] = {name: evaluation.report["variants"][name]["ndcg@10"] for name in config.variants}
    return report
