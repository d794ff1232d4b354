"""Knowledge-graph path rationales: graph loaders and cache, entity linking, bounded path search, one facade."""

from kg.base import ConceptLinker, Edge, Mention, PathFinder, PathRationale
from kg.builder import GraphBuilder
from kg.cache import cache_key, cached_graph, load_graph, save_graph
from kg.engine import KnowledgeGraph
from kg.errors import KgError, KgFormatError, UnknownGraphError
from kg.graph import CompactGraph
from kg.linking import EntityLinker, LabelTable, LinkingOptions, StemmedLinker, inflection_key, snowball_key
from kg.paths import PathOptions, PathSearch, QueryNeighbourhood
from kg.sets import PARTS, SETS, GraphPart, TriplesFile, build_graph, resolve_parts, source_files

__all__ = [
    "PARTS",
    "SETS",
    "CompactGraph",
    "ConceptLinker",
    "Edge",
    "EntityLinker",
    "GraphBuilder",
    "GraphPart",
    "KgError",
    "KgFormatError",
    "KnowledgeGraph",
    "LabelTable",
    "LinkingOptions",
    "Mention",
    "PathFinder",
    "PathOptions",
    "PathRationale",
    "PathSearch",
    "QueryNeighbourhood",
    "StemmedLinker",
    "TriplesFile",
    "UnknownGraphError",
    "build_graph",
    "cache_key",
    "cached_graph",
    "inflection_key",
    "load_graph",
    "resolve_parts",
    "save_graph",
    "snowball_key",
    "source_files",
]
