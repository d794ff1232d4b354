"""ConceptNet-100K triples (`head relation tail split`); negated relations (NotDesires, NotIsA ...) are skipped."""

from __future__ import annotations

import re
from pathlib import Path

from kg.builder import GraphBuilder
from kg.loaders._rows import format_error, read_tsv

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def readable_relation(relation: str) -> str:
    """ConceptNet's CamelCase relation in words.

    >>> readable_relation("AtLocation"), readable_relation("IsA")
    ('at location', 'is a')
    """
    return _CAMEL.sub(" ", relation).lower()


def is_negated(relation: str) -> bool:
    """True for negated relations, which would read as false statements in a path (NotCapableOf ...).

    >>> is_negated("NotDesires"), is_negated("Desires")
    (True, False)
    """
    return relation.startswith("Not") and relation[3:4].isupper()


def load_conceptnet(builder: GraphBuilder, path: Path) -> None:
    """Add ConceptNet phrases as nodes `cn:<phrase>` (named by the phrase) and their non-negated relations.

    Raises:
        KgFormatError: a row without 4 fields, an empty phrase, or a relation that is not CamelCase.
    """
    for number, (head, relation, tail, _split) in read_tsv(path, columns=4, header="head"):
        if not head.strip() or not tail.strip():
            raise format_error(path, number, "empty head or tail phrase")
        if not relation[:1].isupper() or not relation.isalpha():
            raise format_error(path, number, f"relation {relation!r} is not a CamelCase name")
        if is_negated(relation):
            continue
        for phrase in (head, tail):
            builder.add_node(f"cn:{phrase}", phrase, "Concept")
        builder.add_edge(f"cn:{head}", readable_relation(relation), f"cn:{tail}")
