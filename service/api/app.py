"""The FastAPI app factory. Nothing heavy happens at import: the lifespan loads the encoder and collections."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.staticfiles import StaticFiles

from service import __version__
from service.api.errors import install_error_handlers
from service.api.routes import collections, documents, health, search
from service.api.schemas import ErrorResponse
from service.encoder import Encoder
from service.encoder_factory import load_encoder, open_registry
from service.settings import Settings
from service.stage_factory import build_pipeline

logger = logging.getLogger(__name__)
UI_DIR = Path(__file__).with_name("ui")  # the explain page: static files that call the REST API

_ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "malformed JSON",
        404: "unknown collection or document",
        409: "conflict (exists, locked, encoder mismatch)",
        422: "invalid request; the message names the field and the bad value",
    }.items()
}


def create_app(settings: Settings | None = None, *, encoder: Encoder | None = None) -> FastAPI:
    """Build the app. `encoder` lets a caller share an already-loaded encoder (tests, notebooks)."""
    resolved = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active_encoder: Encoder = encoder if encoder is not None else await run_in_threadpool(load_encoder, resolved)
        registry = open_registry(resolved, active_encoder)
        await run_in_threadpool(registry.open_all)
        app.state.settings = resolved
        app.state.registry = registry
        query_encoder: Encoder = active_encoder  # wrapped below by micro-batching and the query-embedding cache
        # in a thread: a KG stage loads its graph here (seconds)
        app.state.pipeline = await run_in_threadpool(build_pipeline, resolved, active_encoder, registry, query_encoder)
        app.state.ready = True
        logger.info("glassbox ready: %d collections under %s", len(registry.names()), registry.root)
        try:
            yield
        finally:
            app.state.ready = False
            await run_in_threadpool(registry.close_all)

    app = FastAPI(
        title="Glassbox",
        version=__version__,
        description="Retrieval that shows its work: FAISS search with a per-stage score breakdown.",
        lifespan=lifespan,
        responses=_ERROR_RESPONSES,
    )
    app.state.ready = False
    install_error_handlers(app)
    for module in (health, collections, documents, search):
        app.include_router(module.router)
    # a mount is not a route, so the page stays out of the OpenAPI schema; /ui redirects to /ui/
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
    return app
