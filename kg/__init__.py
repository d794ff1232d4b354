"""Knowledge-graph path rationales: interfaces now; loaders, linking and path search come in their own issue."""

from kg.base import ConceptLinker, Edge, Mention, PathFinder, PathRationale
from kg.errors import KgError, KgFormatError

__all__ = ["ConceptLinker", "Edge", "KgError", "KgFormatError", "Mention", "PathFinder", "PathRationale"]
