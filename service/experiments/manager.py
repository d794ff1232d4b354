"""Runs experiments: assigns units to variants, serves each variant's pipeline (or one team-draft interleaved list),
logs impressions and feedback, and reports."""

from __future__ import annotations

import json
import random
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from service.errors import ExperimentExistsError, ExperimentNotFoundError, InvalidRequestError
from service.experiments.assignment import assign_variant
from service.experiments.events import EventLog, ExperimentEvent
from service.experiments.interleaving import TEAM_A, team_draft
from service.experiments.report import experiment_report
from service.pipeline import Pipeline, SearchOutcome, SearchQuery
from service.settings import ExperimentDefinition, VariantDefinition

PipelineFactory = Callable[[VariantDefinition], Pipeline]


@dataclass(frozen=True)
class Exposure:
    """What a response says about the experiment it was served under."""

    experiment: str
    mode: str
    variant: str
    impression_id: str
    teams: tuple[str, ...] | None = None  # interleaving: which variant contributed each result


class ExperimentManager:
    """Experiments from settings (read-only) and from the API (kept in `definitions_file`), with their event log.

    Args:
        pipeline_for: builds (once per distinct first stage and stages) the pipeline a variant serves.
    """

    def __init__(
        self,
        configured: Sequence[ExperimentDefinition],
        definitions_file: Path,
        log: EventLog,
        pipeline_for: PipelineFactory,
    ) -> None:
        self._configured = {d.id: d for d in configured}
        self._file = definitions_file
        self._log = log
        self._pipeline_for = pipeline_for
        self._pipelines: dict[tuple[Any, ...], Pipeline] = {}
        self._lock = threading.Lock()
        self._created: dict[str, ExperimentDefinition] = {}
        if definitions_file.is_file():
            for raw in json.loads(definitions_file.read_text()):
                definition = ExperimentDefinition.model_validate(raw)
                self._created[definition.id] = definition

    @property
    def log(self) -> EventLog:
        return self._log

    def definitions(self) -> list[ExperimentDefinition]:
        return [*self._configured.values(), *self._created.values()]

    def get(self, experiment: str) -> ExperimentDefinition:
        found = self._configured.get(experiment) or self._created.get(experiment)
        if found is None:
            raise ExperimentNotFoundError(experiment)
        return found

    def create(self, definition: ExperimentDefinition) -> ExperimentDefinition:
        """Add an experiment (kept across restarts); its variants' pipelines are built now, so a bad one fails here."""
        with self._lock:
            if definition.id in self._configured or definition.id in self._created:
                raise ExperimentExistsError(definition.id)
            for variant in definition.variants:
                self._pipeline(variant)
            self._created[definition.id] = definition
            temporary = self._file.with_suffix(".tmp")
            self._file.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps([d.model_dump() for d in self._created.values()], indent=2))
            temporary.replace(self._file)
        return definition

    def prepare(self) -> None:
        """Build every known experiment's pipelines now (start-up), so that a variant that cannot be served fails
        before traffic arrives."""
        with self._lock:
            for definition in self.definitions():
                for variant in definition.variants:
                    self._pipeline(variant)

    def _pipeline(self, variant: VariantDefinition) -> Pipeline:
        key = (variant.first_stage, None if variant.stages is None else tuple(variant.stages))
        if key not in self._pipelines:
            self._pipelines[key] = self._pipeline_for(variant)
        return self._pipelines[key]

    def search(self, collection: str, query: SearchQuery, experiment: str, unit: str) -> tuple[SearchOutcome, Exposure]:
        """Serve `query` under `experiment` for `unit` (a user or session id) and log the impression."""
        definition = self.get(experiment)
        if definition.collections and collection not in definition.collections:
            raise InvalidRequestError(
                "experiment", experiment, f"experiment runs on {definition.collections}, not on {collection!r}"
            )
        if not unit.strip():
            raise InvalidRequestError("unit_id", unit, "an experiment needs a non-blank unit_id (user or session id)")
        impression_id = f"{definition.id}:{uuid.uuid4().hex}"
        with self._lock:
            pipelines = {variant.name: self._pipeline(variant) for variant in definition.variants}
        if definition.mode == "interleave":
            outcome, exposure = self._interleave(definition, pipelines, collection, query, impression_id)
        else:
            name = assign_variant(definition.id, unit, definition.weights)
            outcome = pipelines[name].search(collection, query)
            exposure = Exposure(definition.id, "ab", name, impression_id)
        payload: dict[str, Any] = {
            "variant": exposure.variant,
            "collection": collection,
            "doc_ids": [item.doc_id for item in outcome.results],
            "served_variant": outcome.variant,
        }
        if exposure.teams is not None:
            payload["teams"] = list(exposure.teams)
        self._log.append(ExperimentEvent(definition.id, "impression", impression_id, payload))
        return outcome, exposure

    @staticmethod
    def _interleave(
        definition: ExperimentDefinition,
        pipelines: dict[str, Pipeline],
        collection: str,
        query: SearchQuery,
        impression_id: str,
    ) -> tuple[SearchOutcome, Exposure]:
        a, b = (variant.name for variant in definition.variants)
        first, second = pipelines[a].search(collection, query), pipelines[b].search(collection, query)
        mixed = team_draft(
            [item.doc_id for item in first.results],
            [item.doc_id for item in second.results],
            query.top_k,
            random.Random(impression_id),
        )
        items = {TEAM_A: {i.doc_id: i for i in first.results}, "B": {i.doc_id: i for i in second.results}}
        results = [items[team][doc_id] for doc_id, team in zip(mixed.ids, mixed.teams, strict=True)]
        timings = {f"{a}.{k}": v for k, v in first.timings_ms.items()} | {
            f"{b}.{k}": v for k, v in second.timings_ms.items()
        }
        query_info = {**first.query, "interleaved": {a: first.variant, b: second.variant}}
        outcome = replace(first, results=results, timings_ms=timings, query=query_info, variant="interleave")
        teams = tuple(a if team == TEAM_A else b for team in mixed.teams)
        return outcome, Exposure(definition.id, "interleave", "interleave", impression_id, teams)

    def feedback(self, impression_id: str, doc_id: str, kind: str, value: float | None) -> str:
        """Record a click or rating against an impression; returns the experiment id."""
        experiment, separator, token = impression_id.partition(":")
        if not separator or len(token) != 32:
            raise InvalidRequestError("impression_id", impression_id, "not an impression id returned by a search")
        self.get(experiment)
        if kind == "rating" and value is None:
            raise InvalidRequestError("value", value, "a rating needs a numeric value")
        payload = {"doc_id": doc_id, "type": kind, "value": value}
        self._log.append(ExperimentEvent(experiment, "feedback", impression_id, payload))
        return experiment

    def report(self, experiment: str) -> dict[str, Any]:
        definition = self.get(experiment)
        return experiment_report(definition, self._log.events(definition.id)) | {"events_backend": self._log.backend}

    def close(self) -> None:
        self._log.close()
