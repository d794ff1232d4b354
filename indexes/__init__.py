"""Vector indexes and document storage: FAISS behind a small protocol, SQLite beside it, kept consistent."""

from indexes.collection import Collection, CollectionConfig, Match, lexical_text, matches_filter
from indexes.document_store import ChangeSet, Document, DocumentStore
from indexes.errors import (
    ArtifactError,
    CollectionLockedError,
    DimensionMismatchError,
    GpuUnavailableError,
    IndexConfigError,
    IndexesError,
    InvalidInputError,
    ReadOnlyError,
    UnknownDocumentError,
)
from indexes.faiss_index import FaissIndex, SearchTuning, build_faiss_index, gpu_count
from indexes.lexical import Analyzer, Bm25Index, Bm25Parameters, Bm25Scores
from indexes.protocol import FloatArray, Hits, VectorIndex

__all__ = [
    "Analyzer",
    "ArtifactError",
    "Bm25Index",
    "Bm25Parameters",
    "Bm25Scores",
    "ChangeSet",
    "Collection",
    "CollectionConfig",
    "CollectionLockedError",
    "DimensionMismatchError",
    "Document",
    "DocumentStore",
    "FaissIndex",
    "FloatArray",
    "GpuUnavailableError",
    "Hits",
    "IndexConfigError",
    "IndexesError",
    "InvalidInputError",
    "Match",
    "ReadOnlyError",
    "SearchTuning",
    "UnknownDocumentError",
    "VectorIndex",
    "build_faiss_index",
    "gpu_count",
    "lexical_text",
    "matches_filter",
]
