"""An experiment's report from its events: per variant impressions, click-through rate and mean reciprocal rank of
clicks with 95 % intervals and tests against the control; for interleaving, team-draft wins and a sign test."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from service.experiments.events import ExperimentEvent
from service.experiments.interleaving import TEAM_A, TEAM_B, Interleaved, credit
from service.experiments.stats import (
    mean_interval,
    sign_test_p_value,
    two_proportion_p_value,
    welch_p_value,
    wilson_interval,
)
from service.settings import ExperimentDefinition


def _first_click_reciprocal_rank(doc_ids: Sequence[str], clicked: set[str]) -> float:
    for position, doc_id in enumerate(doc_ids):
        if doc_id in clicked:
            return 1.0 / (position + 1)
    return 0.0


def click_summary(reciprocal_ranks: Sequence[float], clicked: int) -> dict[str, Any]:
    """One A/B arm: impressions, CTR with a Wilson interval and the mean first-click reciprocal rank (MRR of clicks)
    with a normal 95 % interval, from per-impression reciprocal ranks (0 without a click) and the clicked count."""
    n = len(reciprocal_ranks)
    ctr, mrr = wilson_interval(clicked, n), mean_interval(reciprocal_ranks)
    return {
        "impressions": n,
        "clicked_impressions": clicked,
        "ctr": clicked / n if n else 0.0,
        "ctr_ci95": [ctr.low, ctr.high],
        "mrr": sum(reciprocal_ranks) / n if n else 0.0,
        "mrr_ci95": [mrr.low, mrr.high],
    }


def interleaving_summary(a: str, b: str, wins: int, losses: int, ties: int, alpha: float = 0.05) -> dict[str, Any]:
    """Team-draft credit of `a` against `b`: wins each, ties, `a`'s win share with a Wilson interval, a two-sided sign
    test, and the winner when p < alpha."""
    p_value = sign_test_p_value(wins, losses)
    share = wilson_interval(wins, wins + losses)
    return {
        "variants": {a: {"wins": wins}, b: {"wins": losses}},
        "ties": ties,
        "a_win_share": wins / (wins + losses) if wins + losses else None,
        "a_win_share_ci95": [share.low, share.high],
        "p_value": p_value,
        "winner": (a if wins > losses else b) if p_value < alpha else None,
        "test": "two-sided sign test on per-impression team-draft credit (ties left out)",
    }


def experiment_report(definition: ExperimentDefinition, events: Sequence[ExperimentEvent]) -> dict[str, Any]:
    """The report of `definition` over its `events` (feedback for unknown impressions is counted, not used)."""
    impressions: dict[str, ExperimentEvent] = {}
    clicks: dict[str, set[str]] = defaultdict(set)
    ratings: dict[str, list[float]] = defaultdict(list)
    orphans = 0
    for event in events:
        if event.kind == "impression":
            impressions[event.impression_id] = event
    for event in events:
        if event.kind != "feedback":
            continue
        if event.impression_id not in impressions:
            orphans += 1
        elif event.payload.get("type") == "click":
            clicks[event.impression_id].add(str(event.payload["doc_id"]))
        elif event.payload.get("value") is not None:
            ratings[event.impression_id].append(float(event.payload["value"]))
    report: dict[str, Any] = {
        "id": definition.id,
        "mode": definition.mode,
        "definition": definition.model_dump(),
        "impressions": len(impressions),
        "feedback_without_impression": orphans,
    }
    if definition.mode == "interleave":
        return report | _interleaving(definition, impressions, clicks)
    return report | _ab(definition, impressions, clicks, ratings)


def _ab(
    definition: ExperimentDefinition,
    impressions: dict[str, ExperimentEvent],
    clicks: dict[str, set[str]],
    ratings: dict[str, list[float]],
) -> dict[str, Any]:
    reciprocal: dict[str, list[float]] = {v.name: [] for v in definition.variants}
    clicked: dict[str, int] = dict.fromkeys(reciprocal, 0)
    rated: dict[str, list[float]] = {name: [] for name in reciprocal}
    for impression_id, event in impressions.items():
        variant = str(event.payload.get("variant"))
        if variant not in reciprocal:
            continue
        mine = clicks.get(impression_id, set())
        reciprocal[variant].append(_first_click_reciprocal_rank(event.payload.get("doc_ids", []), mine))
        clicked[variant] += bool(mine)
        rated[variant] += ratings.get(impression_id, [])
    control = definition.variants[0].name
    variants: dict[str, Any] = {}
    for name, values in reciprocal.items():
        n = len(values)
        row = click_summary(values, clicked[name]) | {
            "ratings": len(rated[name]),
            "mean_rating": sum(rated[name]) / len(rated[name]) if rated[name] else None,
        }
        if name != control:
            row["vs_control"] = {
                "control": control,
                "p_value_mrr": welch_p_value(values, reciprocal[control]),
                "p_value_ctr": two_proportion_p_value(clicked[name], n, clicked[control], len(reciprocal[control])),
                "tests": "Welch's t-test on per-impression first-click reciprocal rank; two-proportion z-test on CTR",
            }
        variants[name] = row
    return {"variants": variants}


def _interleaving(
    definition: ExperimentDefinition, impressions: dict[str, ExperimentEvent], clicks: dict[str, set[str]]
) -> dict[str, Any]:
    a, b = (variant.name for variant in definition.variants)
    wins = losses = ties = 0
    for impression_id, event in impressions.items():
        # impressions name each result's variant; credit counts team A (the first variant) against team B
        teams = tuple(TEAM_A if team == a else TEAM_B for team in event.payload.get("teams", []))
        mixed = Interleaved(tuple(event.payload.get("doc_ids", [])), teams)
        outcome = credit(mixed, sorted(clicks.get(impression_id, set())))
        wins += outcome > 0
        losses += outcome < 0
        ties += outcome == 0
    return interleaving_summary(a, b, wins, losses, ties)
