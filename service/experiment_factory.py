"""Builds the experiment manager from settings: its event log (Redis Streams or embedded) and the pipelines its
variants serve (the served pipeline itself when a variant changes nothing)."""

from __future__ import annotations

from service.encoder import Encoder
from service.errors import ConfigurationError, InvalidRequestError
from service.experiments.events import EventLog, RedisStreamEventLog, SqliteEventLog
from service.experiments.manager import ExperimentManager
from service.first_stage import build_retriever
from service.pipeline import Pipeline
from service.registry import CollectionRegistry
from service.settings import Settings, VariantDefinition
from service.stage_factory import STAGE_BUILDERS
from service.stages import Stage


def open_event_log(settings: Settings) -> EventLog:
    """Redis Streams when GLASSBOX_REDIS_URL is set (with a local outbox for outages), else the embedded log."""
    local = SqliteEventLog(settings.home / "experiments" / "events.sqlite")
    if settings.redis_url is None:
        return local
    return RedisStreamEventLog(settings.redis_url, local)


def build_experiments(
    settings: Settings, encoder: Encoder, registry: CollectionRegistry, query_encoder: Encoder, served: Pipeline
) -> ExperimentManager:
    """The experiments of `settings.experiments` (their pipelines built now, so a bad variant fails at start-up)."""

    # stages are loaded once per (stage, first stage) and shared by every variant that uses them: a KG stage holds
    # its graph (hundreds of MB, seconds to load), adapters their weights; the served pipeline's own stages included
    served_mode = served.first_stage_mode
    loaded: dict[tuple[str, str], Stage] = {
        (name, served_mode): stage for name, stage in zip(settings.pipeline.stages, served.stages, strict=True)
    }

    def pipeline_for(variant: VariantDefinition) -> Pipeline:
        if variant.first_stage is None and variant.stages is None:
            return served
        mode = variant.first_stage or served_mode
        stages = settings.pipeline.stages if variant.stages is None else variant.stages
        changed = settings.model_copy(update={"first_stage": settings.first_stage.model_copy(update={"mode": mode})})
        try:
            for name in stages:
                if (name, mode) not in loaded:
                    loaded[(name, mode)] = STAGE_BUILDERS[name](changed, encoder)
            retriever = build_retriever(changed)
        except ConfigurationError as exc:
            raise InvalidRequestError(f"variants.{variant.name}", variant.name, exc.message) from exc
        chosen = [loaded[(name, mode)] for name in stages]
        return Pipeline(encoder, registry, settings.search, chosen, retriever, query_encoder=query_encoder)

    manager = ExperimentManager(
        settings.experiments, settings.home / "experiments" / "definitions.json", open_event_log(settings), pipeline_for
    )
    manager.prepare()
    return manager
