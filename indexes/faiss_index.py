"""FAISS-backed `VectorIndex`: stable string ids, any factory string, exact re-scoring, atomic snapshots.

Design notes:
- Every document id gets a fresh int64 key on each upsert; keys are never reused, so a replaced vector can never
  be confused with its successor. `_key_of` maps doc id -> live key.
- The exact float32 vectors are kept beside the FAISS structure. They serve `vectors()` (the adapters need
  candidates' embeddings even from lossy IVF-PQ codes), exact re-scoring of ANN hits, brute-force search while an
  IVF index waits for enough vectors to train, and rebuilds.
- Structures that cannot remove vectors (HNSW) get tombstones: a stale key stays in FAISS, is filtered from
  results (the search over-fetches by the number of stale keys) and disappears at the next compaction.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np

from indexes.atomic import fsync_file, write_bytes_atomic, write_json_atomic
from indexes.errors import (
    ArtifactError,
    DimensionMismatchError,
    GpuUnavailableError,
    IndexConfigError,
    InvalidInputError,
    UnknownDocumentError,
)
from indexes.protocol import FloatArray, Hits, repeated_ids

logger = logging.getLogger(__name__)

Device = Literal["cpu", "gpu", "auto"]
SNAPSHOT_FORMAT = 1
_CURRENT = "CURRENT"
_MIN_COMPACTION_STALE = 1024
_COMPACTION_STALE_FRACTION = 0.2
_UNTRAINED_FALLBACK_TRAIN_SIZE = 4096


@dataclass(frozen=True)
class SearchTuning:
    """Run-time knobs that change speed/recall but not what is stored.

    Attributes:
        device: "cpu", "gpu" (error when faiss reports no GPU) or "auto" (GPU when faiss reports one).
        nprobe: IVF lists visited per query.
        ef_search: HNSW candidate-list size per query.
        refine_factor: lossy codes (PQ, SQ) fetch k x this many candidates, re-scored exactly.
    """

    device: Device = "auto"
    nprobe: int = 32
    ef_search: int = 128
    refine_factor: int = 4

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "gpu", "auto"):
            raise IndexConfigError(f"device must be 'cpu', 'gpu' or 'auto', got {self.device!r}")
        if self.nprobe < 1:
            raise IndexConfigError(f"nprobe must be >= 1, got {self.nprobe}")
        if self.ef_search < 1:
            raise IndexConfigError(f"ef_search must be >= 1, got {self.ef_search}")
        if self.refine_factor < 1:
            raise IndexConfigError(f"refine_factor must be >= 1, got {self.refine_factor}")


def build_faiss_index(dimension: int, factory: str) -> Any:
    """Build an empty inner-product FAISS index from a factory string that accepts caller-chosen int64 ids."""
    if dimension < 1:
        raise IndexConfigError(f"dimension must be >= 1, got {dimension}")
    try:
        base = faiss.index_factory(dimension, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise IndexConfigError(f"invalid FAISS factory string {factory!r}: {exc}") from exc
    if faiss.try_extract_index_ivf(base) is not None or isinstance(base, faiss.IndexIDMap):
        return base
    return faiss.IndexIDMap(base)


def _core(index: Any) -> Any:
    """The index inside an IDMap wrapper, downcast to its concrete type."""
    inner = faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index
    return inner


def _stores_exact_vectors(index: Any) -> bool:
    return isinstance(_core(index), faiss.IndexFlat | faiss.IndexIVFFlat | faiss.IndexHNSWFlat)


def _supports_removal(index: Any) -> bool:
    return not isinstance(_core(index), faiss.IndexHNSW)


def default_train_size(index: Any) -> int:
    """How many vectors an untrained index waits for before training (faiss advises >= 39 per IVF list)."""
    if index.is_trained:
        return 0
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return max(39 * int(ivf.nlist), 256)
    return _UNTRAINED_FALLBACK_TRAIN_SIZE


def gpu_count() -> int:
    """Number of GPUs faiss can use (0 on faiss-cpu builds)."""
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


class FaissIndex:
    """A mutable FAISS index over unit vectors, keyed by string document ids.

    Args:
        dimension: vector width d.
        factory: FAISS factory string ("Flat", "IVF256,Flat", "HNSW32", "IVF256,PQ32", ...).
        tuning: run-time search parameters and device choice.
        train_size: vectors to wait for before training an untrained index (default: 39 x nlist).

    Raises:
        IndexConfigError: the factory string is invalid or the device choice cannot be honoured.
        GpuUnavailableError: `tuning.device == "gpu"` and faiss reports no GPU.
    """

    def __init__(
        self,
        dimension: int,
        factory: str = "Flat",
        tuning: SearchTuning | None = None,
        train_size: int | None = None,
    ) -> None:
        self._factory = factory
        self._index = build_faiss_index(dimension, factory)
        self._dimension = dimension
        self._train_size = default_train_size(self._index) if train_size is None else train_size
        self._vectors = np.empty((0, dimension), dtype=np.float32)
        self._count = 0
        self._row_of: dict[int, int] = {}
        self._key_at_row: list[int] = []
        self._key_of: dict[str, int] = {}
        self._doc_of: dict[int, str] = {}
        self._stale: set[int] = set()
        self._next_key = 0
        self._tuning = tuning or SearchTuning()
        self._gpu_index: Any = None
        self._gpu_dirty = True
        self._use_gpu = self._resolve_device(self._tuning.device)
        self._apply_tuning(self._index)

    # ------------------------------------------------------------------ properties

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def factory(self) -> str:
        return self._factory

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    @property
    def uses_gpu(self) -> bool:
        return self._use_gpu

    @property
    def stale_count(self) -> int:
        """Tombstoned vectors still inside the FAISS structure (HNSW only)."""
        return len(self._stale)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._key_of

    def doc_ids(self) -> list[str]:
        """All live document ids, in storage order."""
        return [self._doc_of[key] for key in self._key_at_row]

    # ------------------------------------------------------------------ writes

    def upsert(self, doc_ids: Sequence[str], vectors: FloatArray) -> None:
        """Insert (n, d) vectors under `doc_ids`; an id already present has its vector replaced.

        Raises:
            InvalidInputError: lengths differ, an id repeats inside the batch, or a value is not finite.
            DimensionMismatchError: d differs from the index's dimension.
        """
        matrix = self._as_matrix(vectors, "vectors")
        if len(doc_ids) != matrix.shape[0]:
            raise InvalidInputError(f"got {len(doc_ids)} ids but {matrix.shape[0]} vectors")
        if not np.isfinite(matrix).all():
            raise InvalidInputError("vectors contain NaN or infinite values")
        duplicates = repeated_ids(doc_ids)
        if duplicates:
            raise InvalidInputError(f"duplicate ids in one batch: {duplicates[:10]}")
        if not doc_ids:
            return
        self._remove_keys([self._key_of[d] for d in doc_ids if d in self._key_of])
        keys = np.arange(self._next_key, self._next_key + len(doc_ids), dtype=np.int64)
        self._next_key += len(doc_ids)
        self._append_rows(keys, matrix, doc_ids)
        if self._index.is_trained:
            self._index.add_with_ids(matrix, keys)
        elif self._count >= self._train_size:
            self._train_and_fill()
        self._gpu_dirty = True

    def delete(self, doc_ids: Sequence[str]) -> int:
        """Remove `doc_ids`; ids not present are ignored. Returns the number removed."""
        keys = [self._key_of[d] for d in dict.fromkeys(doc_ids) if d in self._key_of]
        self._remove_keys(keys)
        self._gpu_dirty = True
        return len(keys)

    def compact(self) -> None:
        """Rebuild the FAISS structure from the live vectors, dropping tombstones."""
        index = build_faiss_index(self._dimension, self._factory)
        self._apply_tuning(index)
        self._index = index
        self._stale.clear()
        live = self._vectors[: self._count]
        if not index.is_trained and self._count < self._train_size:
            return
        if not index.is_trained:
            index.train(live)
        if self._count:
            index.add_with_ids(live, np.asarray(self._key_at_row, dtype=np.int64))
        self._gpu_dirty = True

    # ------------------------------------------------------------------ reads

    def search(self, queries: FloatArray, k: int) -> list[Hits]:
        """Top-k documents by inner product for each row of `queries` (nq, d), best first.

        Scores are recomputed exactly from the stored vectors, so lossy structures (PQ) still report true
        inner products. Fewer than k hits come back when the index holds fewer than k documents.
        """
        matrix = self._as_matrix(queries, "queries")
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        k = min(k, self._count)
        if k == 0:
            return [Hits(np.empty(0, dtype=np.float32), ()) for _ in range(matrix.shape[0])]
        if not self._index.is_trained:
            return self._exact_search(matrix, k)
        wanted = k if _stores_exact_vectors(self._index) else k * self._tuning.refine_factor
        fetch = min(wanted + len(self._stale), int(self._index.ntotal))
        _, keys = self._searchable_index().search(matrix, fetch)
        return [self._rescore(query, row_keys, k) for query, row_keys in zip(matrix, keys, strict=True)]

    def vectors(self, doc_ids: Sequence[str]) -> FloatArray:
        """The stored (n, d) float32 vectors of `doc_ids`, in that order.

        Raises:
            UnknownDocumentError: an id is not in the index.
        """
        rows = []
        for doc_id in doc_ids:
            key = self._key_of.get(doc_id)
            if key is None:
                raise UnknownDocumentError(f"document {doc_id!r} is not in the index")
            rows.append(self._row_of[key])
        return self._vectors[np.asarray(rows, dtype=np.int64)].copy()

    # ------------------------------------------------------------------ persistence

    def save(self, directory: Path, metadata: Mapping[str, object] | None = None) -> None:
        """Write a snapshot into `directory` atomically.

        Files go into a fresh `snap-*` sub-directory; the `CURRENT` pointer is then replaced in one rename,
        so a crash at any point leaves the previous snapshot intact. Older snapshots are removed afterwards.
        """
        directory.mkdir(parents=True, exist_ok=True)
        snapshot = directory / f"snap-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
        snapshot.mkdir()
        faiss.write_index(self._index, str(snapshot / "index.faiss"))
        np.save(snapshot / "vectors.npy", self._vectors[: self._count])
        np.save(snapshot / "keys.npy", np.asarray(self._key_at_row, dtype=np.int64))
        (snapshot / "doc_ids.json").write_text(json.dumps(self.doc_ids()))
        for name in ("index.faiss", "vectors.npy", "keys.npy", "doc_ids.json"):
            fsync_file(snapshot / name)
        manifest = {
            "format": SNAPSHOT_FORMAT,
            "faiss_version": faiss.__version__,
            "factory": self._factory,
            "dimension": self._dimension,
            "metric": "inner_product",
            "count": self._count,
            "trained": self.is_trained,
            "train_size": self._train_size,
            "next_key": self._next_key,
            "stale_keys": sorted(self._stale),
            "created_at": datetime.now(UTC).isoformat(),
            "metadata": dict(metadata or {}),
        }
        write_json_atomic(snapshot / "manifest.json", manifest)
        write_bytes_atomic(directory / _CURRENT, snapshot.name.encode())
        for old in directory.glob("snap-*"):
            if old.name != snapshot.name:
                shutil.rmtree(old, ignore_errors=True)

    @staticmethod
    def read_manifest(directory: Path) -> dict[str, Any]:
        """The manifest of the current snapshot in `directory`."""
        snapshot = FaissIndex._current_snapshot(directory)
        try:
            manifest: dict[str, Any] = json.loads((snapshot / "manifest.json").read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactError(f"unreadable index manifest in {snapshot}: {exc}") from exc
        if manifest.get("format") != SNAPSHOT_FORMAT:
            raise ArtifactError(f"unsupported snapshot format {manifest.get('format')!r} in {snapshot}")
        return manifest

    @classmethod
    def load(cls, directory: Path, tuning: SearchTuning | None = None) -> FaissIndex:
        """Load the current snapshot in `directory` (written by `save`).

        Raises:
            ArtifactError: no snapshot, or its files disagree with each other.
        """
        manifest = cls.read_manifest(directory)
        snapshot = cls._current_snapshot(directory)
        try:
            faiss_index = faiss.read_index(str(snapshot / "index.faiss"))
            vectors = np.load(snapshot / "vectors.npy")
            keys = np.load(snapshot / "keys.npy")
            doc_ids = json.loads((snapshot / "doc_ids.json").read_text())
        except (OSError, ValueError, RuntimeError) as exc:
            raise ArtifactError(f"corrupt index snapshot {snapshot}: {exc}") from exc
        count = int(manifest["count"])
        stale = {int(key) for key in manifest["stale_keys"]}
        expected_ntotal = count + len(stale) if faiss_index.is_trained else 0
        if not (len(vectors) == len(keys) == len(doc_ids) == count) or faiss_index.ntotal != expected_ntotal:
            raise ArtifactError(
                f"index snapshot {snapshot} is inconsistent: manifest count {count}, vectors {len(vectors)}, "
                f"keys {len(keys)}, ids {len(doc_ids)}, faiss ntotal {faiss_index.ntotal}"
            )
        index = cls(int(manifest["dimension"]), manifest["factory"], tuning, int(manifest["train_size"]))
        index._index = faiss_index
        index._apply_tuning(faiss_index)
        index._vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        index._count = count
        index._key_at_row = [int(key) for key in keys]
        index._row_of = {key: row for row, key in enumerate(index._key_at_row)}
        index._key_of = dict(zip(doc_ids, index._key_at_row, strict=True))
        index._doc_of = {key: doc for doc, key in index._key_of.items()}
        index._stale = stale
        index._next_key = int(manifest["next_key"])
        return index

    # ------------------------------------------------------------------ internals

    @staticmethod
    def _current_snapshot(directory: Path) -> Path:
        pointer = directory / _CURRENT
        if not pointer.is_file():
            raise ArtifactError(f"no index snapshot in {directory} (missing {_CURRENT})")
        snapshot = directory / pointer.read_text().strip()
        if not snapshot.is_dir():
            raise ArtifactError(f"{pointer} names {snapshot.name!r}, which does not exist")
        return snapshot

    def _as_matrix(self, array: FloatArray, what: str) -> FloatArray:
        matrix = np.ascontiguousarray(array, dtype=np.float32)
        if matrix.ndim != 2:
            raise InvalidInputError(f"{what} must be 2-D (n, d), got shape {matrix.shape}")
        if matrix.shape[1] != self._dimension:
            raise DimensionMismatchError(f"{what} have dimension {matrix.shape[1]}, the index has {self._dimension}")
        return matrix

    def _append_rows(self, keys: Iterable[int], matrix: FloatArray, doc_ids: Sequence[str]) -> None:
        needed = self._count + matrix.shape[0]
        if needed > self._vectors.shape[0]:
            grown = np.empty((max(needed, 2 * self._vectors.shape[0], 64), self._dimension), dtype=np.float32)
            grown[: self._count] = self._vectors[: self._count]
            self._vectors = grown
        self._vectors[self._count : needed] = matrix
        for offset, (key, doc_id) in enumerate(zip(keys, doc_ids, strict=True)):
            key = int(key)
            self._row_of[key] = self._count + offset
            self._key_at_row.append(key)
            self._key_of[doc_id] = key
            self._doc_of[key] = doc_id
        self._count = needed

    def _remove_keys(self, keys: list[int]) -> None:
        if not keys:
            return
        if self._index.is_trained:
            if _supports_removal(self._index):
                self._index.remove_ids(np.asarray(keys, dtype=np.int64))
            else:
                self._stale.update(keys)
        for key in keys:
            row = self._row_of.pop(key)
            last = self._count - 1
            if row != last:
                moved = self._key_at_row[last]
                self._vectors[row] = self._vectors[last]
                self._key_at_row[row] = moved
                self._row_of[moved] = row
            self._key_at_row.pop()
            self._count -= 1
            del self._key_of[self._doc_of.pop(key)]
        if len(self._stale) > max(_MIN_COMPACTION_STALE, _COMPACTION_STALE_FRACTION * self._index.ntotal):
            self.compact()

    def _train_and_fill(self) -> None:
        live = self._vectors[: self._count]
        logger.info("training %s on %d vectors", self._factory, self._count)
        self._index.train(live)
        self._index.add_with_ids(live, np.asarray(self._key_at_row, dtype=np.int64))

    def _exact_search(self, matrix: FloatArray, k: int) -> list[Hits]:
        scores = matrix @ self._vectors[: self._count].T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        results = []
        for row_scores, rows in zip(scores, top, strict=True):
            order = rows[np.argsort(-row_scores[rows], kind="stable")]
            ids = tuple(self._doc_of[self._key_at_row[r]] for r in order)
            results.append(Hits(row_scores[order].astype(np.float32), ids))
        return results

    def _rescore(self, query: FloatArray, keys: FloatArray, k: int) -> Hits:
        live = [int(key) for key in keys if key >= 0 and int(key) in self._row_of]
        rows = np.asarray([self._row_of[key] for key in live], dtype=np.int64)
        exact = self._vectors[rows] @ query if len(rows) else np.empty(0, dtype=np.float32)
        order = np.argsort(-exact, kind="stable")[:k]
        return Hits(exact[order].astype(np.float32), tuple(self._doc_of[live[i]] for i in order))

    def _apply_tuning(self, index: Any) -> None:
        ivf = faiss.try_extract_index_ivf(index)
        if ivf is not None:
            ivf.nprobe = min(self._tuning.nprobe, int(ivf.nlist))
        core = _core(index)
        if isinstance(core, faiss.IndexHNSW):
            core.hnsw.efSearch = self._tuning.ef_search

    def _resolve_device(self, device: Device) -> bool:
        gpus = gpu_count()
        if device == "cpu":
            return False
        if device == "gpu" and gpus == 0:
            raise GpuUnavailableError(
                "index device 'gpu' was demanded but faiss reports no GPU "
                f"(faiss {faiss.__version__}; install the 'gpu' extra on a CUDA machine or use device 'auto')"
            )
        return gpus > 0

    def _searchable_index(self) -> Any:
        if not self._use_gpu:
            return self._index
        if self._gpu_dirty or self._gpu_index is None:
            try:
                resources = faiss.StandardGpuResources()
                self._gpu_index = faiss.index_cpu_to_gpu(resources, 0, self._index)
                self._gpu_resources = resources
            except (RuntimeError, AttributeError) as exc:
                if self._tuning.device == "gpu":
                    raise IndexConfigError(f"cannot move {self._factory!r} to the GPU: {exc}") from exc
                logger.warning("index %r stays on the CPU: %s", self._factory, exc)
                self._use_gpu = False
                return self._index
            self._gpu_dirty = False
        return self._gpu_index
