"""Builds the configured encoder backend (a registry, not an if/elif chain)."""

from __future__ import annotations

from collections.abc import Callable

from service.encoder import Encoder, SentenceTransformerEncoder
from service.registry import CollectionRegistry
from service.settings import Settings


def _torch(settings: Settings) -> Encoder:
    return SentenceTransformerEncoder(settings.encoder)


def _onnx(settings: Settings) -> Encoder:
    from service.onnx_encoder import OnnxEncoder

    return OnnxEncoder(settings.encoder, settings.home / "encoders")


BACKENDS: dict[str, Callable[[Settings], Encoder]] = {"torch": _torch, "onnx": _onnx, "onnx-int8": _onnx}


def load_encoder(settings: Settings) -> Encoder:
    """The encoder of `settings.encoder.backend`, loaded from local files."""
    return BACKENDS[settings.encoder.backend](settings)


def open_registry(settings: Settings, encoder: Encoder, *, read_only: bool = False) -> CollectionRegistry:
    """The collection registry under GLASSBOX_HOME, checked against `encoder`."""
    return CollectionRegistry(
        settings.collections_dir,
        encoder.identity,
        settings.index,
        read_only=read_only,
        allow_mixed_precision=settings.encoder.allow_mixed_precision,
        lexical=settings.lexical,
    )
