"""Exceptions raised by the indexes package.

IndexesError
├── IndexConfigError        a factory string, device or parameter that cannot be used
│   └── GpuUnavailableError GPU demanded but faiss reports none
├── DimensionMismatchError  vectors whose width differs from the index's
├── ArtifactError           an index/collection directory that is missing, corrupt or from another encoder
├── CollectionLockedError   another process holds the collection open for writing
├── ReadOnlyError           a write against a collection opened read-only
├── InvalidInputError       mismatched lengths, duplicate ids, non-finite values
└── UnknownDocumentError    an id the index or store does not hold (also a KeyError)
"""

from __future__ import annotations


class IndexesError(Exception):
    """Base class of every error raised by `indexes`."""


class IndexConfigError(IndexesError):
    """An index configuration (factory string, device, parameter) that cannot be used."""


class GpuUnavailableError(IndexConfigError):
    """`device="gpu"` was demanded but faiss reports no usable GPU."""


class DimensionMismatchError(IndexesError):
    """Vectors whose dimension differs from the index's."""


class ArtifactError(IndexesError):
    """An on-disk artifact that is missing, corrupt or incompatible."""


class CollectionLockedError(IndexesError):
    """The collection directory is held open for writing by another process."""


class ReadOnlyError(IndexesError):
    """A write was attempted on a collection opened read-only."""


class InvalidInputError(IndexesError):
    """Arguments that no index could accept: mismatched lengths, duplicate ids, non-finite values."""


class UnknownDocumentError(IndexesError, KeyError):
    """A document id that the index or store does not hold."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown document"
