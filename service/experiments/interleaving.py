"""Team-draft interleaving (Radlinski, Kurup & Joachims, CIKM 2008): one mixed list per request, credit by clicks."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

TEAM_A, TEAM_B = "A", "B"


@dataclass(frozen=True)
class Interleaved:
    """The mixed list and, per position, the team (`"A"` or `"B"`) that contributed it."""

    ids: tuple[str, ...]
    teams: tuple[str, ...]


def team_draft(ranking_a: Sequence[str], ranking_b: Sequence[str], length: int, rng: random.Random) -> Interleaved:
    """Interleave two rankings: in each round a coin decides which team picks first; each team adds its best document
    not yet in the list. Stops at `length` or when both rankings are exhausted.

    >>> mixed = team_draft(["a", "b", "c"], ["b", "d"], 4, random.Random(0))
    >>> sorted(mixed.ids), len(mixed.teams)
    (['a', 'b', 'c', 'd'], 4)
    """
    ids: list[str] = []
    teams: list[str] = []
    seen: set[str] = set()
    picks = {TEAM_A: 0, TEAM_B: 0}
    sources = {TEAM_A: list(ranking_a), TEAM_B: list(ranking_b)}
    cursor = {TEAM_A: 0, TEAM_B: 0}

    def next_unseen(team: str) -> str | None:
        ranking = sources[team]
        while cursor[team] < len(ranking) and ranking[cursor[team]] in seen:
            cursor[team] += 1
        return ranking[cursor[team]] if cursor[team] < len(ranking) else None

    while len(ids) < length:
        # the team with fewer picks goes next; a coin breaks ties (the "draft")
        if picks[TEAM_A] != picks[TEAM_B]:
            order = [TEAM_A, TEAM_B] if picks[TEAM_A] < picks[TEAM_B] else [TEAM_B, TEAM_A]
        else:
            order = [TEAM_A, TEAM_B] if rng.random() < 0.5 else [TEAM_B, TEAM_A]
        added = False
        for team in order:
            candidate = next_unseen(team)
            if candidate is None:
                continue
            ids.append(candidate)
            teams.append(team)
            seen.add(candidate)
            picks[team] += 1
            added = True
            break
        if not added:
            break
    return Interleaved(tuple(ids), tuple(teams))


def credit(interleaved: Interleaved, clicked_ids: Sequence[str]) -> int:
    """+1 when team A's documents got more clicks, -1 when B's did, 0 for a tie (or no clicks).

    >>> mixed = Interleaved(("x", "y"), ("A", "B"))
    >>> credit(mixed, ["x"]), credit(mixed, ["y"]), credit(mixed, []), credit(mixed, ["x", "y"])
    (1, -1, 0, 0)
    """
    team_of = dict(zip(interleaved.ids, interleaved.teams, strict=True))
    a = sum(1 for doc in set(clicked_ids) if team_of.get(doc) == TEAM_A)
    b = sum(1 for doc in set(clicked_ids) if team_of.get(doc) == TEAM_B)
    return (a > b) - (a < b)
