"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from service.api.errors import error_response
from service.api.schemas import CacheReadiness, Health, Readiness
from service.cache import Cache

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> Health:
    """The process is up. Answered on the event loop: a liveness probe never waits for a worker thread, so a
    thread pool busy with searches cannot make a healthy server look dead."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses={503: {"description": "still starting"}})
def readyz(request: Request) -> Readiness | JSONResponse:
    """Encoder loaded and every collection open: ready to search. `degraded` (still 200): searches are served but
    the cache is down (Redis unreachable); it recovers on its own when Redis returns."""
    if not getattr(request.app.state, "ready", False):
        return error_response(503, "not_ready", "the service is still starting")
    cache: Cache = request.app.state.cache
    cache_status = cache.status()
    return Readiness(
        status="ready" if cache_status == "ok" else "degraded",
        encoder=request.app.state.pipeline.encoder.identity.name,
        collections=request.app.state.registry.names(),
        cache=CacheReadiness(backend=cache.backend, status=cache_status),
    )
