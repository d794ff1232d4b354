"""An on-disk embedding cache in front of any encoder, keyed by model name + revision + text hash."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indexes import FloatArray
from service.encoder import Encoder, EncoderIdentity

_CHUNK = 500
_SCHEMA = "CREATE TABLE IF NOT EXISTS embeddings (key TEXT PRIMARY KEY, vector BLOB NOT NULL)"


def embedding_cache_path(home: Path) -> Path:
    """The embedding cache shared by ingest, training and evaluation under a GLASSBOX_HOME."""
    return home / "cache" / "embeddings.sqlite"


def cache_key(identity: EncoderIdentity, text: str) -> str:
    """sha256 over model name, revision, backend and text: a changed model, backend or text never hits a stale entry."""
    key = f"{identity.name}\0{identity.revision}\0{identity.backend}\0{text}"
    return hashlib.sha256(key.encode()).hexdigest()


class CachingEncoder:
    """An `Encoder` that answers from an SQLite cache and encodes only the texts it has not seen.

    Args:
        encoder: the encoder to cache.
        path: the cache file (created when absent); one file may hold several models' entries.
    """

    def __init__(self, encoder: Encoder, path: Path) -> None:
        self._encoder = encoder
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @property
    def identity(self) -> EncoderIdentity:
        return self._encoder.identity

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        """(n, d) float32 unit rows, identical to the wrapped encoder's for the same texts."""
        keys = [cache_key(self.identity, text) for text in texts]
        found = self._lookup(keys)
        missing = [i for i, key in enumerate(keys) if key not in found]
        vectors = np.empty((len(texts), self.identity.dimension), dtype=np.float32)
        for i, key in enumerate(keys):
            if key in found:
                vectors[i] = found[key]
        if missing:
            fresh = self._encoder.encode([texts[i] for i in missing], progress=progress)
            vectors[missing] = fresh
            with self._lock:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO embeddings(key, vector) VALUES (?, ?)",
                    [(keys[i], vector.tobytes()) for i, vector in zip(missing, fresh, strict=True)],
                )
                self._db.execute("COMMIT")
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return vectors

    def _lookup(self, keys: Sequence[str]) -> dict[str, FloatArray]:
        found: dict[str, FloatArray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                chunk = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key, vector FROM embeddings WHERE key IN ({marks})", chunk)
                for key, blob in rows:
                    vector = np.frombuffer(blob, dtype=np.float32)
                    if vector.shape == (self.identity.dimension,):
                        found[str(key)] = vector
        return found
