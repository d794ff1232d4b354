"""The knowledge-graph layer's interfaces: mentions found in text, graph edges, and path rationales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Mention:
    """A concept found in a text at characters [start, end)."""

    concept_id: str
    label: str
    start: int
    end: int

    def is_faithful_to(self, text: str, normalise: bool = True) -> bool:
        """True when the text at the span is the label (case-insensitively when `normalise`).

        >>> Mention("DOID:10763", "hypertension", 4, 16).is_faithful_to("Has hypertension.")
        True
        """
        found = text[self.start : self.end]
        return found.casefold() == self.label.casefold() if normalise else found == self.label


@dataclass(frozen=True)
class Edge:
    """A typed edge of the graph, with readable names for both ends."""

    head: str
    relation: str
    tail: str
    head_name: str
    tail_name: str


@dataclass(frozen=True)
class PathRationale:
    """A chain of edges linking a query concept to a document concept, with its score (higher is better)."""

    edges: tuple[Edge, ...]
    score: float

    def render(self) -> str:
        """Readable form, e.g. ``atorvastatin —treats→ hypertension``.

        >>> e = Edge("C1", "treats", "D1", "atorvastatin", "hypertension")
        >>> PathRationale((e,), 1.0).render()
        'atorvastatin —treats→ hypertension'
        """
        if not self.edges:
            return ""
        parts = [self.edges[0].head_name]
        for edge in self.edges:
            parts.append(f"—{edge.relation}→ {edge.tail_name}")
        return " ".join(parts)


class ConceptLinker(Protocol):
    """Finds graph concepts mentioned in text."""

    def link(self, text: str) -> list[Mention]: ...


class PathFinder(Protocol):
    """Finds bounded-length paths between concept sets."""

    def paths(self, sources: Sequence[str], targets: Sequence[str], max_length: int) -> list[PathRationale]: ...
