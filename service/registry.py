"""The collections under `GLASSBOX_HOME/collections`, opened once and checked against the serving encoder."""

from __future__ import annotations

import logging
import shutil
import threading
import uuid
from pathlib import Path

import faiss

from indexes import ArtifactError, Bm25Parameters, Collection, CollectionConfig, SearchTuning
from service.encoder import EncoderIdentity
from service.errors import (
    CollectionExistsError,
    CollectionNotFoundError,
    EncoderMismatchError,
    InvalidRequestError,
)
from service.settings import COLLECTION_NAME_PATTERN, IndexSettings, LexicalSettings

logger = logging.getLogger(__name__)


def validate_collection_name(name: str) -> str:
    """Collection names are directory names: lowercase letters, digits, '_' and '-', at most 64."""
    if not COLLECTION_NAME_PATTERN.fullmatch(name):
        raise InvalidRequestError(
            "name", name, "collection names are 1-64 of a-z, 0-9, '_', '-' and start with a letter or digit"
        )
    return name


PRECISION = {"torch": "fp32", "onnx": "fp32", "onnx-int8": "int8"}


def check_encoder(config: CollectionConfig, encoder: EncoderIdentity, allow_mixed_precision: bool = False) -> None:
    """Refuse a collection built by another encoder: vectors from different models are not comparable.

    torch and fp32 ONNX produce the same vectors (cosine >= 0.9999) and are interchangeable; int8 vectors differ
    slightly, so an int8 encoder serves an fp32 collection (or the reverse) only with `allow_mixed_precision`.
    """
    if config.dimension != encoder.dimension:
        raise EncoderMismatchError(
            f"collection {config.name!r} holds {config.dimension}-d vectors from {config.encoder!r}, "
            f"but the serving encoder {encoder.name!r} produces {encoder.dimension}-d vectors",
            {"collection": config.name, "collection_encoder": config.encoder, "encoder": encoder.name},
        )
    if config.encoder_revision != encoder.revision:
        raise EncoderMismatchError(
            f"collection {config.name!r} was built with encoder {config.encoder!r} revision "
            f"{config.encoder_revision}, the serving encoder {encoder.name!r} is revision {encoder.revision}; "
            "re-ingest the collection or serve it with the encoder that built it",
            {"collection": config.name, "collection_encoder": config.encoder, "encoder": encoder.name},
        )
    built, serving = PRECISION.get(config.encoder_backend, "fp32"), PRECISION.get(encoder.backend, "fp32")
    if built != serving and not allow_mixed_precision:
        raise EncoderMismatchError(
            f"collection {config.name!r} was built with the {config.encoder_backend!r} encoder backend ({built}), "
            f"the serving backend is {encoder.backend!r} ({serving}); set GLASSBOX_ENCODER__ALLOW_MIXED_PRECISION=true "
            "to accept the difference (measured in docs/benchmarks.md) or re-ingest",
            {"collection": config.name, "collection_backend": config.encoder_backend, "backend": encoder.backend},
        )


class CollectionRegistry:
    """Opens, creates, lists and deletes collections in one root directory (thread-safe)."""

    def __init__(
        self,
        root: Path,
        encoder: EncoderIdentity,
        index_settings: IndexSettings,
        *,
        read_only: bool = False,
        allow_mixed_precision: bool = False,
        lexical: LexicalSettings | None = None,
    ) -> None:
        if index_settings.threads is not None:
            faiss.omp_set_num_threads(index_settings.threads)
        self._root = root
        self._encoder = encoder
        self._index_settings = index_settings
        self._read_only = read_only
        self._allow_mixed_precision = allow_mixed_precision
        self._tuning = SearchTuning(
            device=index_settings.device,
            nprobe=index_settings.nprobe,
            ef_search=index_settings.ef_search,
            refine_factor=index_settings.refine_factor,
        )
        self._lexical = lexical or LexicalSettings()
        self._bm25 = Bm25Parameters(self._lexical.k1, self._lexical.b)
        self._open: dict[str, Collection] = {}
        self._lock = threading.RLock()

    @property
    def root(self) -> Path:
        return self._root

    def open_all(self) -> None:
        """Open every collection on disk (start-up), failing on the first that the encoder cannot serve."""
        if not self._root.is_dir():
            return
        for directory in sorted(p for p in self._root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            self.get(directory.name)

    def names(self) -> list[str]:
        if not self._root.is_dir():
            return []
        return sorted(
            p.name
            for p in self._root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / "documents.sqlite").is_file()
        )

    def opened(self, name: str) -> Collection | None:
        """The collection `name` when it is open already, else None; never blocks (for the event loop)."""
        return self._open.get(name)

    def get(self, name: str) -> Collection:
        """The open collection `name`, opening it on first use."""
        with self._lock:
            if name in self._open:
                return self._open[name]
            directory = self._root / name
            if not COLLECTION_NAME_PATTERN.fullmatch(name) or not (directory / "documents.sqlite").is_file():
                raise CollectionNotFoundError(name)
            collection = Collection.open(
                directory,
                self._tuning,
                read_only=self._read_only,
                snapshot_every=self._index_settings.snapshot_every,
                bm25=self._bm25,
            )
            try:
                check_encoder(collection.config, self._encoder, self._allow_mixed_precision)
            except EncoderMismatchError:
                collection.close()
                raise
            self._open[name] = collection
            logger.info("collection %s open: %d documents", name, len(collection))
            return collection

    def create(self, name: str, factory: str | None = None) -> Collection:
        validate_collection_name(name)
        with self._lock:
            if name in self._open or (self._root / name / "documents.sqlite").exists():
                raise CollectionExistsError(name)
            config = CollectionConfig(
                name=name,
                dimension=self._encoder.dimension,
                encoder=self._encoder.name,
                encoder_revision=self._encoder.revision,
                factory=factory or self._index_settings.factory,
                encoder_backend=self._encoder.backend,
                lexical_stemmer=self._lexical.stemmer,
                lexical_stopwords=self._lexical.stopwords,
            )
            directory = self._root / name
            try:
                collection = Collection.create(
                    directory, config, self._tuning, self._index_settings.snapshot_every, self._bm25
                )
            except BaseException:
                shutil.rmtree(directory, ignore_errors=True)
                raise
            self._open[name] = collection
            return collection

    def get_or_create(self, name: str, factory: str | None = None) -> Collection:
        with self._lock:
            try:
                return self.get(name)
            except CollectionNotFoundError:
                return self.create(name, factory)

    def delete(self, name: str) -> None:
        """Remove a collection: renamed aside in one step, then removed, so a crash never leaves half of one."""
        with self._lock:
            collection = self.get(name)
            collection.close()
            del self._open[name]
            trash = self._root / f".deleted-{name}-{uuid.uuid4().hex[:8]}"
            collection.directory.rename(trash)
            shutil.rmtree(trash, ignore_errors=True)

    def close_all(self) -> None:
        with self._lock:
            for collection in self._open.values():
                try:
                    collection.close()
                except ArtifactError:
                    logger.exception("closing collection %s failed", collection.name)
            self._open.clear()
