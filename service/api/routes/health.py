"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.api.errors import error_response
from service.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> Health:
    """The process is up."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "still starting"}})
def readyz(request: Request) -> Readiness | JSONResponse:
    """Encoder loaded and every collection open: ready to search."""
    if not getattr(request.app.state, "ready", False):
        return error_response(503, "not_ready", "the service is still starting")
    return Readiness(
        status="ready",
        encoder=request.app.state.pipeline.encoder.identity.name,
        collections=request.app.state.registry.names(),
    )
