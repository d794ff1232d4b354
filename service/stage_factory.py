"""Builds the configured post-retrieval stages, in order, from settings (a registry, not an if/elif chain)."""

from __future__ import annotations

from collections.abc import Callable

from service.encoder import EncoderIdentity
from service.filter_stage import CosineFilterStage
from service.settings import Settings
from service.stages import Stage


def _cosine(settings: Settings, encoder: EncoderIdentity) -> Stage:
    return CosineFilterStage.from_directory(
        settings.adapters_dir / "cosine",
        encoder,
        min_results=settings.filter.min_results,
        filtering=settings.filter.enabled,
    )


STAGE_BUILDERS: dict[str, Callable[[Settings, EncoderIdentity], Stage]] = {"cosine": _cosine}


def build_stages(settings: Settings, encoder: EncoderIdentity) -> list[Stage]:
    """The stages of `settings.pipeline.stages`, loaded and checked against the serving encoder."""
    return [STAGE_BUILDERS[name](settings, encoder) for name in settings.pipeline.stages]
