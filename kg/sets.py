"""Named graph parts and sets (biomedical, general) over a folder of KG files, and building a graph from them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from kg.builder import GraphBuilder
from kg.crosslinks import merge_cross_references
from kg.errors import KgFormatError, UnknownGraphError
from kg.graph import CompactGraph
from kg.loaders import (
    load_conceptnet,
    load_genes_to_phenotype,
    load_hetionet,
    load_obo,
    load_phenotype_annotations,
    load_triples,
    load_wordnet,
)


@dataclass(frozen=True)
class GraphPart:
    """One graph's files (relative to the KG folder) and how to load them."""

    name: str
    files: tuple[str, ...]
    load: Callable[[GraphBuilder, tuple[Path, ...]], None]


@dataclass(frozen=True)
class TriplesFile:
    """A user's `head<TAB>relation<TAB>tail` file and optional `id<TAB>name` file."""

    path: Path
    names: Path | None = None


def _hetionet(builder: GraphBuilder, files: tuple[Path, ...]) -> None:
    nodes, metaedges, *edges = files
    load_hetionet(builder, nodes, edges, metaedges)


def _hpo(builder: GraphBuilder, files: tuple[Path, ...]) -> None:
    ontology, annotations, genes = files
    load_obo(builder, ontology, "Phenotype")
    load_phenotype_annotations(builder, annotations)
    load_genes_to_phenotype(builder, genes)


PARTS = MappingProxyType(
    {
        "hetionet": GraphPart(
            "hetionet",
            (
                "hetionet/hetionet-v1.0-nodes.tsv.gz",
                "hetionet/metaedges.tsv",
                "hetionet/hetionet-v1.0-edges-subset.sif.gz",
                "hetionet/hetionet-v1.0-edges-PCiC-GpPW-rebuilt.sif.gz",
            ),
            _hetionet,
        ),
        "disease_ontology": GraphPart(
            "disease_ontology",
            ("disease_ontology/doid-2016-09-01.obo.gz",),
            lambda builder, files: load_obo(builder, files[0], "Disease"),
        ),
        "hpo": GraphPart("hpo", ("hpo/hp.obo.gz", "hpo/phenotype.hpoa.gz", "hpo/genes_to_phenotype.txt.gz"), _hpo),
        "wordnet": GraphPart(
            "wordnet",
            ("wordnet/wn30-synsets.tsv.gz", "wordnet/wn30-relations.tsv.gz"),
            lambda builder, files: load_wordnet(builder, files[0], files[1]),
        ),
        "conceptnet": GraphPart(
            "conceptnet",
            ("conceptnet100k/conceptnet100k-triples.tsv.gz",),
            lambda builder, files: load_conceptnet(builder, files[0]),
        ),
    }
)
SETS = MappingProxyType({"biomedical": ("hetionet", "disease_ontology", "hpo"), "general": ("wordnet", "conceptnet")})


def resolve_parts(names: Sequence[str]) -> tuple[GraphPart, ...]:
    """The parts that set and part names stand for, each once, in order.

    >>> [part.name for part in resolve_parts(["general", "wordnet"])]
    ['wordnet', 'conceptnet']

    Raises:
        UnknownGraphError: a name that is neither a set nor a part.
    """
    parts: dict[str, GraphPart] = {}
    for name in names:
        members = SETS.get(name, (name,))
        for member in members:
            if member not in PARTS:
                known = sorted([*SETS, *PARTS])
                raise UnknownGraphError(f"unknown graph {name!r}; known: {', '.join(known)}")
            parts.setdefault(member, PARTS[member])
    return tuple(parts.values())


def source_files(kg_dir: Path, names: Sequence[str], triples: Sequence[TriplesFile] = ()) -> list[Path]:
    """Every file a build of these graphs reads, in reading order."""
    files = [kg_dir / file for part in resolve_parts(names) for file in part.files]
    for extra in triples:
        files += [extra.path] if extra.names is None else [extra.path, extra.names]
    return files


def build_graph(kg_dir: Path, names: Sequence[str], triples: Sequence[TriplesFile] = ()) -> CompactGraph:
    """Load the named graphs (and users' triples files), merge cross-references, and build one graph.

    Args:
        kg_dir: the folder holding the graphs' subfolders (e.g. ``$GLASSBOX_DATA/kg``).
        names: set names (``biomedical``, ``general``) and/or part names (``hetionet``, ``wordnet`` ...).
        triples: users' own graph files, loaded after the named graphs.

    Raises:
        UnknownGraphError: an unknown name.
        KgFormatError: a missing or malformed file.
    """
    builder = GraphBuilder()
    for part in resolve_parts(names):
        files = tuple(kg_dir / file for file in part.files)
        missing = [str(file) for file in files if not file.is_file()]
        if missing:
            raise KgFormatError(f"graph {part.name!r} lacks files: {', '.join(missing)}")
        part.load(builder, files)
    for extra in triples:
        load_triples(builder, extra.path, extra.names)
    merge_cross_references(builder)
    return builder.build()
