"""Builds the configured pipeline from settings: its first stage and post-retrieval stages (registries, not if/elif)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adapters import Adapter
from service.encoder import Encoder
from service.filter_stage import CosineFilterStage
from service.first_stage import build_retriever, require_first_stage, trained_first_stage
from service.imrnn_stage import ImrnnStage
from service.kg_stage import KgPathStage
from service.pipeline import Pipeline
from service.registry import CollectionRegistry
from service.settings import Settings
from service.stages import Stage
from service.token_vocabulary import encoded_vocabulary


def _cosine(settings: Settings, encoder: Encoder) -> Stage:
    return CosineFilterStage.from_directory(
        settings.adapters_dir / "cosine",
        encoder.identity,
        min_results=settings.filter.min_results,
        filtering=settings.filter.enabled,
        first_stage=settings.first_stage.mode,
    )


def _imrnn(settings: Settings, encoder: Encoder) -> Stage:
    directory = settings.adapters_dir / "imrnn"
    if (directory / "config.json").is_file():
        trained = trained_first_stage(Adapter.read_report(directory))
        require_first_stage("IMRNN adapter", directory, trained, settings.first_stage.mode, "imrnn")
    return load_imrnn_stage(directory, settings, encoder)


def load_imrnn_stage(directory: Path, settings: Settings, encoder: Encoder) -> ImrnnStage:
    """The IMRNN stage of the adapter in `directory` with the word settings of `settings.imrnn`.

    The word table (vocabulary words encoded by this encoder) is built once, cached under GLASSBOX_HOME/encoders.
    """
    return ImrnnStage.from_directory(
        directory,
        encoder.identity,
        vocabulary=lambda: encoded_vocabulary(encoder, settings.encoder.model, settings.home / "encoders"),
        explained_results=settings.imrnn.explained_results,
        words=settings.imrnn.words,
        word_pool=settings.imrnn.word_pool,
        blas_threads=settings.imrnn.blas_threads,
    )


def _kg(settings: Settings, encoder: Encoder) -> Stage:
    return KgPathStage.from_settings(settings, encoder)


STAGE_BUILDERS: dict[str, Callable[[Settings, Encoder], Stage]] = {"cosine": _cosine, "imrnn": _imrnn, "kg": _kg}


def build_stages(settings: Settings, encoder: Encoder) -> list[Stage]:
    """The stages of `settings.pipeline.stages`, loaded and checked against the serving encoder."""
    return [STAGE_BUILDERS[name](settings, encoder) for name in settings.pipeline.stages]


def build_pipeline(
    settings: Settings, encoder: Encoder, registry: CollectionRegistry, query_encoder: Encoder | None = None
) -> Pipeline:
    """The configured pipeline: the first stage of `settings.first_stage` and the stages of `settings.pipeline`.

    `query_encoder` encodes query texts (the server wraps `encoder` with micro-batching and an embedding cache).
    """
    return Pipeline(
        encoder,
        registry,
        settings.search,
        build_stages(settings, encoder),
        build_retriever(settings),
        query_encoder=query_encoder,
    )
