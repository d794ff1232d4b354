"""The small interface every vector index implements, and the hit type it returns."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Hits:
    """One query's results, best first.

    Attributes:
        scores: (m,) float32 exact inner products of the query with each hit's stored vector, descending.
        doc_ids: the m hits' document ids, aligned with `scores`; m <= k.
    """

    scores: FloatArray
    doc_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.doc_ids)


def repeated_ids(doc_ids: Sequence[str]) -> list[str]:
    """Ids that occur more than once, sorted.

    >>> repeated_ids(["a", "b", "a", "c", "b"])
    ['a', 'b']
    """
    return sorted(doc_id for doc_id, count in Counter(doc_ids).items() if count > 1)


class VectorIndex(Protocol):
    """A mutable nearest-neighbour index over unit vectors keyed by string document ids."""

    @property
    def dimension(self) -> int: ...

    def __len__(self) -> int: ...

    def __contains__(self, doc_id: object) -> bool: ...

    def upsert(self, doc_ids: Sequence[str], vectors: FloatArray) -> None:
        """Insert vectors (n, d); an id already present has its vector replaced."""

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Remove ids (unknown ones are ignored); returns how many were removed."""

    def search(self, queries: FloatArray, k: int) -> list[Hits]:
        """Top-k by inner product for each query row (nq, d); one `Hits` per query."""

    def vectors(self, doc_ids: Sequence[str]) -> FloatArray:
        """The stored (n, d) vectors of `doc_ids`, in that order."""

    def save(self, directory: Path, metadata: Mapping[str, object] | None = None) -> None:
        """Write a self-describing snapshot atomically into `directory`."""
