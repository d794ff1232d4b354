"""A collection: one document store, one FAISS index and one BM25 index kept consistent, in one directory.

Layout of a collection directory::

    manifest.json       what built it (encoder, dimension, factory), counts, versions; rewritten at each snapshot
    documents.sqlite    documents + embeddings + lexical term counts + change sequence (the durable source of truth)
    faiss/CURRENT       names the current FAISS snapshot directory (replaced atomically)
    faiss/snap-*/       index.faiss, vectors.npy, keys.npy, doc_ids.json, manifest.json
    .lock               held (flock) by the one process that has the collection open for writing

A write commits to SQLite first and only then changes the in-memory indexes, so an acknowledged write is on disk.
Opening replays whatever the SQLite change log holds beyond the FAISS snapshot's sequence number, and rebuilds the
BM25 index from the term counts stored in the document rows (written in the same transaction as the document).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import faiss
import numpy as np

from indexes.atomic import write_json_atomic
from indexes.document_store import Document, DocumentStore
from indexes.errors import ArtifactError, CollectionLockedError, InvalidInputError, ReadOnlyError
from indexes.faiss_index import FaissIndex, SearchTuning
from indexes.lexical import Analyzer, Bm25Index, Bm25Parameters, Bm25Scores
from indexes.protocol import FloatArray, Hits, repeated_ids

logger = logging.getLogger(__name__)

MANIFEST_FORMAT = 1
_STORE_FILE = "documents.sqlite"
_INDEX_DIR = "faiss"
_MANIFEST = "manifest.json"


@dataclass(frozen=True)
class CollectionConfig:
    """What a collection was built with; fixed at creation and checked against the serving encoder."""

    name: str
    dimension: int
    encoder: str
    encoder_revision: str
    factory: str = "Flat"
    normalized: bool = True
    created_at: str = ""
    encoder_backend: str = "torch"
    lexical_stemmer: str = "english"
    lexical_stopwords: str = "english"

    @property
    def analyzer(self) -> Analyzer:
        """How this collection's documents (and queries against it) are split into BM25 terms."""
        return Analyzer(self.lexical_stemmer, self.lexical_stopwords)


@dataclass(frozen=True)
class Match:
    """A search hit with its stored document and exact inner-product score."""

    document: Document
    score: float


def matches_filter(metadata: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """True when every key of `where` is present in `metadata` with an equal JSON value.

    >>> matches_filter({"year": 2020, "tag": "x"}, {"year": 2020})
    True
    >>> matches_filter({"year": "2020"}, {"year": 2020})
    False
    """
    return all(key in metadata and metadata[key] == value for key, value in where.items())


class Collection:
    """Documents plus their FAISS index, opened from (or created in) one directory."""

    def __init__(
        self,
        directory: Path,
        config: CollectionConfig,
        store: DocumentStore,
        index: FaissIndex,
        *,
        read_only: bool,
        lock_file: IO[str] | None,
        snapshot_every: int,
        bm25: Bm25Parameters | None,
    ) -> None:
        self._directory = directory
        self._config = config
        self._analyzer = config.analyzer
        self._store = store
        self._index = index
        self._lexical = Bm25Index(bm25)
        self._read_only = read_only
        self._lock_file = lock_file
        self._snapshot_every = snapshot_every
        self._applied_seq = 0
        self._changes_since_snapshot = 0
        self._mutex = threading.RLock()
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def create(
        cls,
        directory: Path,
        config: CollectionConfig,
        tuning: SearchTuning | None = None,
        snapshot_every: int = 50_000,
        bm25: Bm25Parameters | None = None,
    ) -> Collection:
        """Create a new, empty collection in `directory` (which must not hold one)."""
        if (directory / _STORE_FILE).exists():
            raise ArtifactError(f"a collection already exists in {directory}")
        config.analyzer  # noqa: B018 - validates the analyser settings before anything is written
        index = FaissIndex(config.dimension, config.factory, tuning)  # validates factory and device first
        directory.mkdir(parents=True, exist_ok=True)
        lock_file = _acquire_lock(directory)
        stamped = CollectionConfig(**{**asdict(config), "created_at": datetime.now(UTC).isoformat()})
        try:
            store = DocumentStore(directory / _STORE_FILE, config.dimension)
            store.set_meta("config", json.dumps(asdict(stamped)))
        except BaseException:
            lock_file.close()
            raise
        collection = cls(
            directory,
            stamped,
            store,
            index,
            read_only=False,
            lock_file=lock_file,
            snapshot_every=snapshot_every,
            bm25=bm25,
        )
        collection.snapshot()
        return collection

    @classmethod
    def open(
        cls,
        directory: Path,
        tuning: SearchTuning | None = None,
        *,
        read_only: bool = False,
        snapshot_every: int = 50_000,
        bm25: Bm25Parameters | None = None,
    ) -> Collection:
        """Open an existing collection, replaying writes made after its last snapshot.

        Raises:
            ArtifactError: the directory holds no collection or its files are corrupt.
            CollectionLockedError: another process has it open for writing (not raised when `read_only`).
        """
        if not (directory / _STORE_FILE).is_file():
            raise ArtifactError(f"no collection in {directory}")
        lock_file = None if read_only else _acquire_lock(directory)
        try:
            raw_config = _read_config(directory, read_only)
            config = CollectionConfig(**raw_config)
            store = DocumentStore(directory / _STORE_FILE, config.dimension, read_only=read_only)
            try:
                index = FaissIndex.load(directory / _INDEX_DIR, tuning)
                applied = int(FaissIndex.read_manifest(directory / _INDEX_DIR)["metadata"]["applied_seq"])
            except ArtifactError as exc:
                logger.warning("rebuilding the index of %s from its documents: %s", directory, exc)
                index, applied = FaissIndex(config.dimension, config.factory, tuning), 0
        except BaseException:
            if lock_file is not None:
                lock_file.close()
            raise
        collection = cls(
            directory,
            config,
            store,
            index,
            read_only=read_only,
            lock_file=lock_file,
            snapshot_every=snapshot_every,
            bm25=bm25,
        )
        collection._replay(applied)
        collection._load_lexical()
        return collection

    def close(self) -> None:
        """Snapshot (when writable and changed) and release files and the process lock."""
        with self._mutex:
            if self._closed:
                return
            if not self._read_only and self._changes_since_snapshot:
                self.snapshot()
            self._store.close()
            if self._lock_file is not None:
                self._lock_file.close()
            self._closed = True

    # ------------------------------------------------------------------ properties

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def config(self) -> CollectionConfig:
        return self._config

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def index(self) -> FaissIndex:
        return self._index

    @property
    def lexical(self) -> Bm25Index:
        return self._lexical

    @property
    def analyzer(self) -> Analyzer:
        return self._analyzer

    def __len__(self) -> int:
        return len(self._index)

    # ------------------------------------------------------------------ writes

    def upsert(self, documents: Sequence[Document], vectors: FloatArray) -> None:
        """Store documents with their (n, d) vectors; durable when this returns.

        Raises:
            InvalidInputError: an id repeats in the batch, or counts differ.
        """
        self._check_writable()
        ids = [doc.id for doc in documents]
        repeated = repeated_ids(ids)  # checked before the store writes anything
        if repeated:
            raise InvalidInputError(f"duplicate ids in one batch: {repeated[:10]}")
        term_counts = [self._analyzer.term_counts(lexical_text(doc)) for doc in documents]
        with self._mutex:
            seq = self._store.upsert(documents, vectors, term_counts)
            self._index.upsert(ids, vectors)
            self._lexical.upsert(ids, term_counts)
            self._after_write(seq, len(ids))

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete documents by id; returns the ids that existed."""
        self._check_writable()
        with self._mutex:
            seq, existing = self._store.delete(ids)
            self._index.delete(existing)
            self._lexical.delete(existing)
            self._after_write(seq, len(existing))
        return existing

    def snapshot(self) -> None:
        """Write the FAISS snapshot and the manifest, then drop deletion records it makes redundant."""
        self._check_writable()
        with self._mutex:
            seq = self._store.last_seq()
            self._index.save(self._directory / _INDEX_DIR, {"applied_seq": seq})
            write_json_atomic(self._directory / _MANIFEST, self.describe())
            self._store.prune_deletions(seq)
            self._applied_seq = seq
            self._changes_since_snapshot = 0

    # ------------------------------------------------------------------ reads

    def get(self, ids: Sequence[str]) -> dict[str, Document]:
        """Stored documents among `ids`, keyed by id."""
        return self._store.get(ids)

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        return self._store.content_hashes(ids)

    def vectors(self, ids: Sequence[str]) -> FloatArray:
        """Stored (n, d) embeddings of `ids`, in that order."""
        with self._mutex:
            return self._index.vectors(ids)

    def search(
        self,
        queries: FloatArray,
        k: int,
        where: Mapping[str, Any] | None = None,
        overfetch: int = 10,
    ) -> list[list[Match]]:
        """Top-k documents per query row (nq, d), optionally restricted by a metadata equality filter.

        With `where`, the index is asked for `k * overfetch` hits, which are then filtered; when fewer than k
        survive and the index holds more, the fetch grows 4x and repeats, up to the whole collection. The
        result is therefore the best k matching documents *as the index ranks them*: exact for Flat, subject to
        the same recall as any ANN search otherwise.
        """
        if overfetch < 1:
            raise InvalidInputError(f"overfetch must be >= 1, got {overfetch}")
        results: list[list[Match]] = []
        for query in np.atleast_2d(queries):
            results.append(self._search_one(query[None, :], k, where or {}, overfetch))
        return results

    def nearest(self, query: FloatArray, k: int) -> Hits:
        """The k nearest documents' ids and exact inner products for one (d,) query, without reading documents."""
        with self._mutex:
            return self._index.search(np.asarray(query, dtype=np.float32)[None, :], k)[0]

    def lexical_scores(self, text: str) -> Bm25Scores:
        """Every document's BM25 score for a query text, computed once (read top-k and given ids from it)."""
        return self._lexical.scores(self._analyzer.terms(text))

    def lexical_search(self, scores: Bm25Scores, k: int, where: Mapping[str, Any] | None = None) -> list[Match]:
        """The k best documents by BM25 (only those sharing a term with the query), best first.

        With `where`, documents are read in BM25 order, a page at a time, until k pass the metadata filter.
        """
        ranked_scores, ids = scores.ranked() if where else scores.top(k)
        page_size = max(k, 100) if where else k
        matches: list[Match] = []
        for start in range(0, len(ids), page_size):
            page = ids[start : start + page_size]
            documents = self._store.get(page)
            for doc_id, score in zip(page, ranked_scores[start : start + len(page)].tolist(), strict=True):
                if doc_id in documents and matches_filter(documents[doc_id].metadata, where or {}):
                    matches.append(Match(documents[doc_id], score))
                    if len(matches) == k:
                        return matches
        return matches

    def describe(self) -> dict[str, Any]:
        """The manifest: configuration, counts and library versions."""
        return {
            "format": MANIFEST_FORMAT,
            **asdict(self._config),
            "documents": len(self._index),
            "trained": self._index.is_trained,
            "faiss_version": faiss.__version__,
            "updated_at": datetime.now(UTC).isoformat(),
        }

    def verify(self) -> tuple[set[str], set[str]]:
        """(ids in the FAISS or BM25 index without a stored document, stored ids missing from either index).

        Both are empty when the three stores agree.
        """
        with self._mutex:
            dense = set(self._index.doc_ids())
            lexical = set(self._lexical.doc_ids())
            stored = self._store.ids()
        return (dense | lexical) - stored, (stored - dense) | (stored - lexical)

    # ------------------------------------------------------------------ internals

    def _search_one(self, query: FloatArray, k: int, where: Mapping[str, Any], overfetch: int) -> list[Match]:
        fetch = k * overfetch if where else k
        while True:
            with self._mutex:
                hits = self._index.search(query, fetch)[0]
                total = len(self._index)
            documents = self._store.get(hits.doc_ids)
            matches = [
                Match(documents[doc_id], float(score))
                for doc_id, score in zip(hits.doc_ids, hits.scores, strict=True)
                if doc_id in documents and matches_filter(documents[doc_id].metadata, where)
            ]
            if len(matches) >= k or fetch >= total:
                return matches[:k]
            fetch = min(fetch * 4, total)

    def _replay(self, applied_seq: int) -> None:
        changes = self._store.changes_since(applied_seq)
        with self._mutex:
            if changes.deleted_ids:
                self._index.delete(changes.deleted_ids)
            if changes.upserted_ids:
                self._index.upsert(changes.upserted_ids, changes.upserted_vectors)
            self._applied_seq = changes.last_seq
            replayed = len(changes.upserted_ids) + len(changes.deleted_ids)
            if replayed:
                logger.info("replayed %d changes into %s after its snapshot", replayed, self._directory)
                if not self._read_only:
                    self.snapshot()
            if len(self._index) != self._store.count():
                raise ArtifactError(
                    f"collection {self._directory} is inconsistent after replay: index holds {len(self._index)} "
                    f"vectors, store holds {self._store.count()} documents"
                )

    def _load_lexical(self) -> None:
        """Build the BM25 index from the stored term counts, analysing rows stored without them."""
        ids: list[str] = []
        counts: list[dict[str, int]] = []
        missing: list[str] = []
        for doc_id, terms in self._store.term_counts():
            if terms is None:
                missing.append(doc_id)
            else:
                ids.append(doc_id)
                counts.append(terms)
        backfill: dict[str, dict[str, int]] = {}
        for start in range(0, len(missing), 1000):
            for doc_id, doc in self._store.get(missing[start : start + 1000]).items():
                backfill[doc_id] = self._analyzer.term_counts(lexical_text(doc))
        if backfill:
            logger.info("analysed %d documents of %s stored before BM25 terms were", len(backfill), self._directory)
            if not self._read_only:
                self._store.set_term_counts(backfill)
        with self._mutex:
            self._lexical.upsert([*ids, *backfill], [*counts, *backfill.values()])

    def _after_write(self, seq: int, changed: int) -> None:
        self._applied_seq = seq
        self._changes_since_snapshot += changed
        if self._changes_since_snapshot >= self._snapshot_every:
            self.snapshot()

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError(f"collection {self._config.name!r} is open read-only")
        if self._closed:
            raise ReadOnlyError(f"collection {self._config.name!r} is closed")


def lexical_text(document: Document) -> str:
    """What BM25 indexes of a document: its title and text.

    >>> lexical_text(Document("d", "Statins", "lower cholesterol"))
    'Statins lower cholesterol'
    """
    return f"{document.title} {document.text}".strip()


def _read_config(directory: Path, read_only: bool) -> dict[str, Any]:
    store_path = directory / _STORE_FILE
    probe = DocumentStore(store_path, 1, read_only=True)
    try:
        raw = probe.get_meta("config")
    finally:
        probe.close()
    if raw is None:
        raise ArtifactError(f"collection {directory} has no stored configuration")
    config: dict[str, Any] = json.loads(raw)
    return config


def _acquire_lock(directory: Path) -> IO[str]:
    handle = open(directory / ".lock", "a+")  # noqa: SIM115 - held for the collection's lifetime
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise CollectionLockedError(
            f"collection {directory} is open for writing in another process (pid {owner}); "
            "stop that process or write through its REST API"
        ) from exc
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
