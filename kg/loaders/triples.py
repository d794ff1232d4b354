"""Users' own graphs: `head<TAB>relation<TAB>tail` rows, and an optional `id<TAB>name[<TAB>synonym...]` file."""

from __future__ import annotations

from pathlib import Path

from kg.builder import GraphBuilder
from kg.loaders._rows import format_error, read_tsv


def load_triples(builder: GraphBuilder, path: Path, names: Path | None = None, kind: str = "Entity") -> None:
    """Add the edges of a triples file; nodes are named by the names file when given, else by their id.

    Lines starting with ``#`` and blank lines are skipped; there is no header row.

    Raises:
        KgFormatError: a triple without exactly 3 non-empty fields, or a names row without an id and a name.
    """
    if names is not None:
        for number, fields in read_tsv(names, columns=2, exact=False):
            if not fields[0] or not fields[1]:
                raise format_error(names, number, "empty id or name")
            builder.add_node(fields[0], fields[1], kind, fields[2:])
    for number, (head, relation, tail) in read_tsv(path, columns=3):
        if not head or not relation or not tail:
            raise format_error(path, number, "empty head, relation or tail")
        builder.add_edge(head, relation, tail)
