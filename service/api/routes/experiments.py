"""Experiments: define, list, report; feedback against an impression."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.concurrency import run_in_threadpool

from service.api.auth import AUTH_RESPONSES, PrincipalDep, authorize
from service.api.deps import ExperimentsDep
from service.api.experiment_schemas import ExperimentList, FeedbackRecorded, FeedbackRequest
from service.settings import ExperimentDefinition

router = APIRouter(prefix="/v1", tags=["experiments"], responses=AUTH_RESPONSES)


def _collections(definition: ExperimentDefinition) -> list[str]:
    return definition.collections or ["*"]  # an experiment on any collection needs the scope on all of them


@router.post("/experiments", status_code=status.HTTP_201_CREATED)
async def create_experiment(
    body: ExperimentDefinition, experiments: ExperimentsDep, principal: PrincipalDep
) -> ExperimentDefinition:
    """Define an experiment (kept across restarts). Needs the write scope on its collections ("*" when none)."""
    for collection in _collections(body):
        authorize(principal, "write", collection)
    return await run_in_threadpool(experiments.create, body)  # builds the variants' pipelines


@router.get("/experiments")
def list_experiments(experiments: ExperimentsDep, principal: PrincipalDep) -> ExperimentList:
    """The experiments this key may read."""
    return ExperimentList(
        experiments=[
            d.model_dump() for d in experiments.definitions() if all(principal.can("read", c) for c in _collections(d))
        ]
    )


@router.get("/experiments/{experiment}")
def experiment_report(experiment: str, experiments: ExperimentsDep, principal: PrincipalDep) -> dict[str, object]:
    """Per variant: impressions, click-through rate and mean reciprocal rank of clicks with 95 % intervals and tests
    against the control; interleaving: wins per variant and a sign test."""
    for collection in _collections(experiments.get(experiment)):
        authorize(principal, "read", collection)
    return experiments.report(experiment)


@router.post("/feedback", status_code=status.HTTP_202_ACCEPTED)
def feedback(body: FeedbackRequest, experiments: ExperimentsDep, _: PrincipalDep) -> FeedbackRecorded:
    """Record a click or rating against an impression. The impression id (random, from a search response) is what
    ties feedback to a search, so any authenticated caller that holds one may report on it."""
    experiment = experiments.feedback(body.impression_id, body.doc_id, body.type, body.value)
    return FeedbackRecorded(experiment=experiment, impression_id=body.impression_id)
