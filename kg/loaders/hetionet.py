"""Hetionet: the node table and SIF edge files, with metaedge abbreviations made readable (CtD → treats)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from kg.builder import GraphBuilder
from kg.loaders._rows import format_error, read_tsv


def read_metaedges(path: Path) -> dict[str, str]:
    """Metaedge abbreviation → readable relation, from Hetionet's `metaedges.tsv`.

    The relation is the middle part of the metaedge: ``Compound - treats - Disease`` → ``treats``,
    ``Gene > regulates > Gene`` → ``regulates``.

    Raises:
        KgFormatError: a metaedge that is not ``Kind - relation - Kind`` (or with ``>``).
    """
    relations = {}
    for number, fields in read_tsv(path, columns=2, header="metaedge", exact=False):
        metaedge, abbreviation = fields[0], fields[1]
        separator = " > " if " > " in metaedge else " - "
        parts = metaedge.split(separator)
        if len(parts) != 3 or not abbreviation:
            raise format_error(path, number, f"metaedge {metaedge!r} is not 'Kind - relation - Kind'")
        relations[abbreviation] = parts[1]
    return relations


def load_hetionet(builder: GraphBuilder, nodes: Path, edges: Sequence[Path], metaedges: Path) -> None:
    """Add Hetionet's nodes (`id name kind`) and the edges of each SIF file (`source metaedge target`).

    Raises:
        KgFormatError: a malformed row, or a metaedge that `metaedges` does not explain.
    """
    relations = read_metaedges(metaedges)
    for _number, (node_id, name, kind) in read_tsv(nodes, columns=3, header="id"):
        builder.add_node(node_id, name, kind)
    for path in edges:
        for number, (source, metaedge, target) in read_tsv(path, columns=3, header="source"):
            relation = relations.get(metaedge)
            if relation is None:
                raise format_error(path, number, f"unknown metaedge {metaedge!r}")
            builder.add_edge(source, relation, target)
