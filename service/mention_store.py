"""Per-collection store of documents' concept mentions: one SQLite file keyed by (document id, content hash).

Documents are linked once (at ingest, or by the KG stage the first time it explains them) and read back at search
time. A document upserted with other content has another hash, so its stale mentions are never read; a store
written for another graph or linker is emptied when opened.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kg import Mention

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS mentions (
    doc_id TEXT PRIMARY KEY,
    content_hash TEXT NOT NULL,
    mentions TEXT NOT NULL
);
"""
FIELDS = ("title", "text")


@dataclass(frozen=True)
class FieldMention:
    """A mention in one field of a document: `field` is "title" or "text"; the span indexes that field."""

    field: str
    mention: Mention


class MentionStore:
    """Mentions of one collection's documents, valid for one linker (`linker_key`).

    Args:
        path: the SQLite file (created when absent).
        linker_key: names the graph and linker that produced the mentions; a file written under another key is
            emptied on open.
    """

    def __init__(self, path: Path, linker_key: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute("SELECT value FROM meta WHERE key = 'linker'").fetchone()
        if row is None or row[0] != linker_key:
            with self._db:
                self._db.execute("DELETE FROM mentions")
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('linker', ?)", (linker_key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def get(self, documents: Mapping[str, str]) -> dict[str, list[FieldMention]]:
        """Stored mentions of the documents (id → content hash) whose stored hash matches; others are absent."""
        if not documents:
            return {}
        ids = list(documents)
        found: dict[str, list[FieldMention]] = {}
        with self._lock:
            for offset in range(0, len(ids), 500):
                chunk = ids[offset : offset + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT doc_id, content_hash, mentions FROM mentions WHERE doc_id IN ({marks})", chunk
                ).fetchall()
                for doc_id, content_hash, payload in rows:
                    if documents[doc_id] == content_hash:
                        found[doc_id] = _decode(payload)
        return found

    def put(self, entries: Iterable[tuple[str, str, Sequence[FieldMention]]]) -> None:
        """Store (document id, content hash, mentions) rows, replacing what was stored for those ids."""
        rows = [(doc_id, content_hash, _encode(mentions)) for doc_id, content_hash, mentions in entries]
        with self._lock, self._db:
            self._db.executemany("INSERT OR REPLACE INTO mentions VALUES (?, ?, ?)", rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM mentions").fetchone()[0])


def _encode(mentions: Sequence[FieldMention]) -> str:
    return json.dumps(
        [[m.field, *_fields(m.mention)] for m in mentions],
        ensure_ascii=False,
    )


def _fields(mention: Mention) -> list[str | int]:
    return [mention.concept_id, mention.label, mention.start, mention.end, mention.method]


def _decode(payload: str) -> list[FieldMention]:
    return [
        FieldMention(field, Mention(concept_id, label, int(start), int(end), method))
        for field, concept_id, label, start, end, method in json.loads(payload)
    ]
