"""SQLite document store: documents, their embeddings, lexical terms and a change sequence, the source of truth.

Every write batch takes the next sequence number. Upserted rows carry it; deleted ids are recorded in `deletions`
with it. A FAISS snapshot records the last sequence it contains, so after a crash the index is brought up to date
by replaying `changes_since(snapshot_seq)`: nothing acknowledged is lost and no vector outlives its document.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexes.errors import ArtifactError, DimensionMismatchError, InvalidInputError, ReadOnlyError
from indexes.protocol import FloatArray

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    embedding BLOB NOT NULL,
    seq INTEGER NOT NULL,
    terms TEXT
);
CREATE INDEX IF NOT EXISTS documents_by_seq ON documents(seq);
CREATE TABLE IF NOT EXISTS deletions (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
_CHUNK = 500  # stays under SQLite's bound-parameter limit


@dataclass(frozen=True)
class Document:
    """A stored document. `metadata` is a JSON object; filters compare its top-level values for equality."""

    id: str
    title: str = ""
    text: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Hash of title, text and metadata: equal hashes mean an upsert would change nothing."""
        payload = json.dumps([self.title, self.text, self.metadata], sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class ChangeSet:
    """Changes after a sequence number: upserted ids with their vectors (n, d), and deleted ids."""

    upserted_ids: list[str]
    upserted_vectors: FloatArray
    deleted_ids: list[str]
    last_seq: int


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class DocumentStore:
    """Documents, embeddings and the change log of one collection in one SQLite file.

    Args:
        path: the SQLite file (created when absent unless `read_only`).
        dimension: embedding width; vectors of another width are refused.
        read_only: open without write access.
    """

    def __init__(self, path: Path, dimension: int, *, read_only: bool = False) -> None:
        if read_only and not path.is_file():
            raise ArtifactError(f"document store {path} does not exist")
        self._path = path
        self._dimension = dimension
        self._read_only = read_only
        uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        if not read_only:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            self._migrate()
        self._has_terms = self._column_exists("terms")

    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self._check_writable()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    def last_seq(self) -> int:
        value = self.get_meta("last_seq")
        return 0 if value is None else int(value)

    # ------------------------------------------------------------------ writes

    def upsert(
        self, documents: Sequence[Document], vectors: FloatArray, term_counts: Sequence[Mapping[str, int]]
    ) -> int:
        """Insert or replace `documents` with their (n, d) vectors and lexical term counts in one transaction.

        Returns the transaction's sequence number.
        """
        self._check_writable()
        matrix = np.ascontiguousarray(vectors, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(documents):
            raise InvalidInputError(f"got {len(documents)} documents but vectors of shape {matrix.shape}")
        if len(term_counts) != len(documents):
            raise InvalidInputError(f"got {len(documents)} documents but {len(term_counts)} term-count maps")
        if matrix.shape[1] != self._dimension:
            raise DimensionMismatchError(f"vectors have dimension {matrix.shape[1]}, the store has {self._dimension}")
        with self._lock, self._transaction() as seq:
            self._db.executemany(
                "INSERT OR REPLACE INTO documents(id, title, text, metadata, content_hash, embedding, seq, terms) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        doc.id,
                        doc.title,
                        doc.text,
                        json.dumps(doc.metadata, ensure_ascii=False),
                        doc.content_hash,
                        vector.tobytes(),
                        seq,
                        json.dumps(counts, ensure_ascii=False),
                    )
                    for doc, vector, counts in zip(documents, matrix, term_counts, strict=True)
                ],
            )
            for chunk in _chunks([doc.id for doc in documents]):
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM deletions WHERE id IN ({marks})", tuple(chunk))
        return seq

    def delete(self, ids: Sequence[str]) -> tuple[int, list[str]]:
        """Delete `ids` in one transaction; returns (sequence, the ids that existed)."""
        self._check_writable()
        with self._lock, self._transaction() as seq:
            existing = sorted(self._existing_ids(ids))
            for chunk in _chunks(existing):
                marks = ",".join("?" * len(chunk))
                self._db.execute(f"DELETE FROM documents WHERE id IN ({marks})", tuple(chunk))
            self._db.executemany(
                "INSERT OR REPLACE INTO deletions(id, seq) VALUES (?, ?)", [(i, seq) for i in existing]
            )
        return seq, existing

    def prune_deletions(self, up_to_seq: int) -> None:
        """Forget deletion records that a snapshot at `up_to_seq` already reflects."""
        self._check_writable()
        with self._lock:
            self._db.execute("DELETE FROM deletions WHERE seq <= ?", (up_to_seq,))

    # ------------------------------------------------------------------ reads

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def get(self, ids: Sequence[str]) -> dict[str, Document]:
        """The stored documents among `ids`, keyed by id (absent ids are missing from the result)."""
        found: dict[str, Document] = {}
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT id, title, text, metadata FROM documents WHERE id IN ({marks})", tuple(chunk)
                )
                for doc_id, title, text, metadata in rows:
                    found[doc_id] = Document(doc_id, title, text, json.loads(metadata))
        return found

    def content_hashes(self, ids: Sequence[str]) -> dict[str, str]:
        """Stored content hashes of the ids present."""
        hashes: dict[str, str] = {}
        with self._lock:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT id, content_hash FROM documents WHERE id IN ({marks})", tuple(chunk))
                hashes.update({str(doc_id): str(digest) for doc_id, digest in rows})
        return hashes

    def ids(self) -> set[str]:
        with self._lock:
            return {str(row[0]) for row in self._db.execute("SELECT id FROM documents")}

    def term_counts(self) -> Iterator[tuple[str, dict[str, int] | None]]:
        """Every document's id with its stored term counts (None for rows written before terms were stored)."""
        with self._lock:
            if not self._has_terms:
                rows = [(str(row[0]), None) for row in self._db.execute("SELECT id FROM documents")]
            else:
                rows = list(self._db.execute("SELECT id, terms FROM documents"))
        for doc_id, raw in rows:
            yield str(doc_id), (None if raw is None else json.loads(raw))

    def set_term_counts(self, counts: Mapping[str, Mapping[str, int]]) -> None:
        """Store term counts for existing rows (back-filling a store made before terms were stored)."""
        self._check_writable()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "UPDATE documents SET terms = ? WHERE id = ?",
                    [(json.dumps(terms, ensure_ascii=False), doc_id) for doc_id, terms in counts.items()],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def changes_since(self, seq: int) -> ChangeSet:
        """Everything written after sequence `seq`: the current vectors of upserted ids and the deleted ids."""
        with self._lock:
            last = self.last_seq()
            rows = self._db.execute(
                "SELECT id, embedding FROM documents WHERE seq > ? ORDER BY seq, id", (seq,)
            ).fetchall()
            deleted = [
                str(row[0]) for row in self._db.execute("SELECT id FROM deletions WHERE seq > ? ORDER BY seq", (seq,))
            ]
        vectors = np.empty((len(rows), self._dimension), dtype=np.float32)
        for i, (_, blob) in enumerate(rows):
            vectors[i] = np.frombuffer(blob, dtype=np.float32)
        return ChangeSet([str(row[0]) for row in rows], vectors, deleted, last)

    # ------------------------------------------------------------------ internals

    def _column_exists(self, column: str) -> bool:
        with self._lock:
            return any(row[1] == column for row in self._db.execute("PRAGMA table_info(documents)"))

    def _migrate(self) -> None:
        """Bring a store written by an older version up to this schema (additive changes only)."""
        if not self._column_exists("terms"):
            self._db.execute("ALTER TABLE documents ADD COLUMN terms TEXT")

    def _existing_ids(self, ids: Sequence[str]) -> set[str]:
        existing: set[str] = set()
        for chunk in _chunks(list(dict.fromkeys(ids))):
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(f"SELECT id FROM documents WHERE id IN ({marks})", tuple(chunk))
            existing.update(str(row[0]) for row in rows)
        return existing

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError(f"document store {self._path} is open read-only")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT that allocates the next sequence number; rolls back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> int:
        self._db.execute("BEGIN IMMEDIATE")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        seq = (0 if row is None else int(row[0])) + 1
        self._db.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('last_seq', ?)", (str(seq),))
        return seq

    def __exit__(self, exc_type: object, exc: object, traceback: object) -> None:
        if exc_type is None:
            self._db.execute("COMMIT")
        else:
            self._db.execute("ROLLBACK")
