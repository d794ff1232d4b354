"""OBO 1.2 ontologies (Disease Ontology, HPO): term names, exact synonyms, is_a, xrefs; obsolete terms skipped."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from kg.builder import GraphBuilder
from kg.loaders._rows import format_error, read_lines

IS_A = "is a"
_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s+([A-Z]+)\b')


@dataclass(frozen=True)
class OboTerm:
    """One active `[Term]` stanza."""

    id: str
    name: str
    synonyms: tuple[str, ...]
    parents: tuple[str, ...]
    xrefs: tuple[str, ...]


def read_obo(path: Path, synonym_scopes: tuple[str, ...] = ("EXACT",)) -> Iterator[OboTerm]:
    """Yield the non-obsolete terms of an OBO file.

    Args:
        path: the `.obo` or `.obo.gz` file.
        synonym_scopes: which synonym scopes to keep (EXACT, RELATED, NARROW, BROAD).

    Raises:
        KgFormatError: a tag line without ``:``, a synonym without quoted text, or a term without id or name.
    """
    stanza: str | None = None
    start = 0
    tags: dict[str, list[str]] = {}
    for number, line in [*read_lines(path), (-1, "[End]")]:
        if line.startswith("["):
            if stanza == "Term":
                term = _term(path, start, tags, synonym_scopes)
                if term is not None:
                    yield term
            stanza, start, tags = line.strip().strip("[]"), number, {}
            continue
        if not line.strip() or line.startswith("!") or stanza is None:
            continue
        tag, colon, value = line.partition(":")
        if not colon:
            raise format_error(path, number, f"expected 'tag: value', got {line[:60]!r}")
        value = value.split(" ! ")[0].strip()
        if tag == "synonym" and stanza == "Term":
            match = _SYNONYM.match(value)
            if match is None:
                raise format_error(path, number, f"synonym without quoted text: {value[:60]!r}")
            if match.group(2) not in synonym_scopes:
                continue
            value = match.group(1).replace('\\"', '"')
        tags.setdefault(tag, []).append(value)


def _term(path: Path, start: int, tags: dict[str, list[str]], scopes: tuple[str, ...]) -> OboTerm | None:
    if tags.get("is_obsolete") == ["true"]:
        return None
    if "id" not in tags or "name" not in tags:
        raise format_error(path, start, "[Term] without id or name")
    return OboTerm(
        id=tags["id"][0],
        name=tags["name"][0],
        synonyms=tuple(tags.get("synonym", ())),
        parents=tuple(value.split()[0] for value in tags.get("is_a", ()) if value),
        xrefs=tuple(value.split()[0] for value in tags.get("xref", ()) if value),
    )


def load_obo(builder: GraphBuilder, path: Path, kind: str) -> None:
    """Add an ontology's active terms (name, exact synonyms, xrefs) and `is a` edges between active terms.

    Raises:
        KgFormatError: see `read_obo`.
    """
    terms = list(read_obo(path))
    active = {term.id for term in terms}
    for term in terms:
        builder.add_node(term.id, term.name, kind, term.synonyms)
        if term.xrefs:
            builder.add_xrefs(term.id, term.xrefs)
    for term in terms:
        for parent in term.parents:
            if parent in active:
                builder.add_edge(term.id, IS_A, parent)
