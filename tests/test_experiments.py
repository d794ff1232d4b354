"""Experiment building blocks: deterministic assignment, team-draft interleaving, statistics, the click simulator."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from evaluation.click_model import PositionBiasedClickModel
from evaluation.simulate_ab import SimulationConfig, simulate
from service.experiments.assignment import assign_variant
from service.experiments.interleaving import TEAM_A, TEAM_B, credit, team_draft
from service.experiments.stats import (
    sign_test_p_value,
    two_proportion_p_value,
    welch_p_value,
    wilson_interval,
)


def test_assignment_is_stable_and_independent_of_call_order() -> None:
    weights = {"dense": 1.0, "full": 1.0}
    first = [assign_variant("exp-1", f"user-{i}", weights) for i in range(500)]
    again = [assign_variant("exp-1", f"user-{i}", weights) for i in reversed(range(500))][::-1]
    assert first == again
    # another experiment's assignment of the same users is not the same split
    other = [assign_variant("exp-2", f"user-{i}", weights) for i in range(500)]
    assert first != other


@pytest.mark.parametrize("weights", [{"a": 1.0, "b": 1.0}, {"a": 0.9, "b": 0.1}, {"a": 2.0, "b": 1.0, "c": 1.0}])
def test_assignment_matches_weights_within_sampling_error(weights: dict[str, float]) -> None:
    units = 20_000
    counts = Counter(assign_variant("weights", f"session-{i}", weights) for i in range(units))
    total = sum(weights.values())
    expected = [units * w / total for w in weights.values()]
    observed = [counts[name] for name in weights]
    # chi-square goodness of fit: a correct hash passes at 0.001 except once in a thousand seeds
    assert stats.chisquare(observed, expected).pvalue > 0.001, (observed, expected)


def test_assignment_rejects_bad_weights() -> None:
    with pytest.raises(ValueError, match="at least one"):
        assign_variant("e", "u", {})
    with pytest.raises(ValueError, match="non-negative"):
        assign_variant("e", "u", {"a": -1.0, "b": 2.0})


rankings = st.lists(st.sampled_from([f"d{i}" for i in range(12)]), max_size=12, unique=True)


@settings(max_examples=200, deadline=None)
@given(rankings, rankings, st.integers(1, 12), st.integers(0, 1000))
def test_team_draft_properties(a: list[str], b: list[str], length: int, seed: int) -> None:
    mixed = team_draft(a, b, length, random.Random(seed))
    assert len(set(mixed.ids)) == len(mixed.ids) <= length
    assert len(mixed.ids) == min(length, len(set(a) | set(b)))
    for doc, team in zip(mixed.ids, mixed.teams, strict=True):
        assert doc in (a if team == TEAM_A else b)
    # each team's picks appear in that team's own order
    for team, ranking in ((TEAM_A, a), (TEAM_B, b)):
        picked = [d for d, t in zip(mixed.ids, mixed.teams, strict=True) if t == team]
        assert picked == sorted(picked, key=ranking.index)
    # while both rankings still have unused documents, the teams' pick counts never differ by more than one
    for prefix in range(1, len(mixed.ids) + 1):
        used = set(mixed.ids[:prefix])
        if set(a) - used and set(b) - used:
            picks = Counter(mixed.teams[:prefix])
            assert abs(picks[TEAM_A] - picks[TEAM_B]) <= 1


def test_team_draft_of_identical_rankings_keeps_their_order_and_splits_credit_evenly() -> None:
    ranking = [f"d{i}" for i in range(10)]
    rng = random.Random(7)
    wins = Counter(credit(team_draft(ranking, ranking, 10, rng), [ranking[0]]) for _ in range(2000))
    assert team_draft(ranking, ranking, 10, rng).ids == tuple(ranking)
    assert sign_test_p_value(wins[1], wins[-1]) > 0.001


def test_statistics_agree_with_scipy_and_known_values() -> None:
    rng = random.Random(3)
    a = [rng.random() for _ in range(40)]
    b = [rng.random() + 0.2 for _ in range(60)]
    assert welch_p_value(a, b) == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue, rel=1e-9)
    assert welch_p_value([1.0, 1.0], [1.0, 1.0]) == 1.0
    assert welch_p_value([1.0, 1.0], [0.0, 0.0]) == 0.0
    assert sign_test_p_value(15, 5) == pytest.approx(stats.binomtest(15, 20).pvalue)
    # two-proportion z-test equals the chi-square test of the 2x2 table without continuity correction
    table = [[30, 70], [45, 55]]
    chi2 = stats.chi2_contingency(table, correction=False).pvalue
    assert two_proportion_p_value(30, 100, 45, 100) == pytest.approx(chi2, rel=1e-9)
    interval = wilson_interval(30, 100)
    assert interval.low < 0.3 < interval.high


def test_click_model_probabilities_fall_with_rank() -> None:
    model = PositionBiasedClickModel(eta=1.0, click_relevant=0.8, click_irrelevant=0.0)
    probabilities = model.probabilities(["r1", "r2", "n"], {"r1": 1, "r2": 2}, 4)
    np.testing.assert_allclose(probabilities, [0.8, 0.4, 0.0, 0.0])


def _synthetic(relevant_at: int, queries: int = 200) -> tuple[dict[str, list[str]], dict[str, dict[str, int]]]:
    qrels = {f"q{i}": {f"rel{i}": 1} for i in range(queries)}
    ranked = {}
    for i in range(queries):
        filler = [f"other{i}-{j}" for j in range(9)]
        ranked[f"q{i}"] = [*filler[:relevant_at], f"rel{i}", *filler[relevant_at:]]
    return ranked, qrels


@pytest.mark.parametrize("mode", ["ab", "interleave"])
def test_simulator_detects_the_truly_better_variant(mode: str) -> None:
    better, qrels = _synthetic(relevant_at=0)
    worse, _ = _synthetic(relevant_at=2)
    config = SimulationConfig(("worse", "better"), mode=mode, impressions=2000, repetitions=50)  # type: ignore[arg-type]
    report = simulate({"worse": worse, "better": better}, qrels, config)
    assert report["winner"] == report["true_winner"] == "better"
    assert report["p_value"] < 0.05
    needed = report["traffic_needed"]
    assert needed["ab"]["impressions"] is not None and needed["interleave"]["impressions"] is not None
    assert needed["interleave"]["impressions"] <= needed["ab"]["impressions"]


def test_simulator_rarely_declares_a_winner_between_identical_variants() -> None:
    same, qrels = _synthetic(relevant_at=1, queries=50)
    declared = 0
    for seed in range(40):
        config = SimulationConfig(("a", "b"), mode="ab", impressions=400, seed=seed, repetitions=1, max_impressions=50)
        declared += simulate({"a": same, "b": same}, qrels, config)["winner"] is not None
    assert declared <= 6  # about 5 % false positives expected (2 of 40); 6 would be p < 0.05 under alpha = 0.05
