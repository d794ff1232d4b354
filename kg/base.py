"""The knowledge-graph layer's interfaces: mentions found in text, graph edges, and path rationales."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from kg.text import normalise as normalise_text


@dataclass(frozen=True)
class Mention:
    """A concept found in a text at characters [start, end).

    `label` is the graph's name or synonym that matched (`method` "exact"), or, for the query-side second path
    (`method` "stem": the words match after stemming), the text found at the span itself.
    """

    concept_id: str
    label: str
    start: int
    end: int
    method: str = "exact"

    def is_faithful_to(self, text: str, normalise: bool = True) -> bool:
        """True when the text at the span is the label (up to `kg.text.normalise` when `normalise`).

        `normalise` forgives only case, Unicode compatibility forms, and hyphens/whitespace runs versus one space;
        the span must start and end on the label's first and last characters.

        >>> Mention("DOID:10763", "hypertension", 4, 16).is_faithful_to("Has hypertension.")
        True
        >>> Mention("DOID:9352", "type 2 diabetes", 0, 15).is_faithful_to("Type-2 diabetes")
        True
        >>> Mention("DOID:9352", "type 2 diabetes", 0, 16).is_faithful_to("Type-2 diabetes.")
        False
        """
        found = text[self.start : self.end]
        if not normalise:
            return found == self.label
        return found == found.strip() and normalise_text(found) == normalise_text(self.label)


@dataclass(frozen=True)
class Edge:
    """A typed edge of the graph, with readable names for both ends.

    `head —relation→ tail` is the edge's true direction in the graph; `reversed` says that a path walks it from
    tail to head (paths may use edges both ways), which `PathRationale.render` shows as ``tail ←relation— head``.
    """

    head: str
    relation: str
    tail: str
    head_name: str
    tail_name: str
    reversed: bool = False

    @property
    def start(self) -> str:
        """The node a path enters this edge from."""
        return self.tail if self.reversed else self.head

    @property
    def end(self) -> str:
        """The node a path leaves this edge at."""
        return self.head if self.reversed else self.tail


@dataclass(frozen=True)
class PathRationale:
    """A chain of edges linking a query concept to a document concept, with its score (higher is better).

    A **shared concept** is a path with no edges: `concept` (with its readable `concept_name`) is mentioned in both
    the query and the document, so it is its own source and target. Other paths leave `concept` empty.
    """

    edges: tuple[Edge, ...]
    score: float
    concept: str = ""
    concept_name: str = ""

    @property
    def shared(self) -> bool:
        """True for a shared concept (no edges, one concept in query and document)."""
        return not self.edges and bool(self.concept)

    @property
    def source(self) -> str:
        """The concept the path starts at (a query concept); the shared concept; empty for an empty path."""
        return self.edges[0].start if self.edges else self.concept

    @property
    def target(self) -> str:
        """The concept the path ends at (a document concept); the shared concept; empty for an empty path."""
        return self.edges[-1].end if self.edges else self.concept

    def render(self) -> str:
        """Readable form, e.g. ``atorvastatin —treats→ hypertension``; edges walked backwards read ``←relation—``.

        >>> e = Edge("C1", "treats", "D1", "atorvastatin", "hypertension")
        >>> PathRationale((e,), 1.0).render()
        'atorvastatin —treats→ hypertension'
        >>> back = Edge("C1", "treats", "D1", "atorvastatin", "hypertension", reversed=True)
        >>> PathRationale((back,), 1.0).render()
        'hypertension ←treats— atorvastatin'
        >>> PathRationale((), 1.0, "D1", "hypertension").render()
        'hypertension (in query and document)'
        """
        if not self.edges:
            return f"{self.concept_name} (in query and document)" if self.concept else ""
        first = self.edges[0]
        parts = [first.tail_name if first.reversed else first.head_name]
        for edge in self.edges:
            if edge.reversed:
                parts.append(f"←{edge.relation}— {edge.head_name}")
            else:
                parts.append(f"—{edge.relation}→ {edge.tail_name}")
        return " ".join(parts)


class ConceptLinker(Protocol):
    """Finds graph concepts mentioned in text."""

    def link(self, text: str) -> list[Mention]: ...


class PathFinder(Protocol):
    """Finds bounded-length paths between concept sets."""

    def paths(self, sources: Sequence[str], targets: Sequence[str], max_length: int) -> list[PathRationale]: ...
