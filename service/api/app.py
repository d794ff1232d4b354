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
from service.api.limits import RequestLimitsMiddleware
from service.api.observability import install_observability
from service.api.routes import collections, context, documents, experiments, health, search
from service.api.schemas import ErrorResponse
from service.api_keys import check_keys
from service.cache import QueryEmbeddingCache, build_cache
from service.encoder import Encoder
from service.encoder_factory import load_encoder, open_registry
from service.experiment_factory import build_experiments
from service.metrics import ServiceMetrics
from service.micro_batching import MicroBatchingEncoder
from service.rag_context import encoder_token_counter
from service.response_cache import ResponseCache
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
        413: "request body over GLASSBOX_LIMITS__MAX_BODY_BYTES",
        504: "no response within GLASSBOX_LIMITS__REQUEST_TIMEOUT_S (the work may still complete; retry is safe)",
    }.items()
}


def create_app(settings: Settings | None = None, *, encoder: Encoder | None = None) -> FastAPI:
    """Build the app. `encoder` lets a caller share an already-loaded encoder (tests, notebooks)."""
    resolved = settings or Settings()
    check_keys(resolved.api_keys)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        active_encoder: Encoder = encoder if encoder is not None else await run_in_threadpool(load_encoder, resolved)
        registry = open_registry(resolved, active_encoder)
        await run_in_threadpool(registry.open_all)
        app.state.settings = resolved
        app.state.registry = registry
        query_encoder: Encoder = active_encoder  # wrapped below by micro-batching and the query-embedding cache
        batcher: MicroBatchingEncoder | None = None
        if resolved.batching.enabled:  # concurrent searches share forward passes; upserts keep the plain encoder
            query_encoder = batcher = MicroBatchingEncoder(
                active_encoder,
                max_batch=resolved.batching.max_batch,
                max_wait_ms=resolved.batching.max_wait_ms,
                on_batch=metrics.observe_encode_batch,
            )
        cache = build_cache(resolved)  # Redis, else in-process; a Redis down at start-up only degrades /readyz
        app.state.cache = cache
        app.state.response_cache = ResponseCache(cache, resolved)
        for name in registry.names():  # changed while no server held it (CLI ingest, a crash before invalidating)
            await run_in_threadpool(cache.invalidate, name)
        if resolved.cache.enabled and resolved.cache.embeddings:
            query_encoder = QueryEmbeddingCache(query_encoder, cache, resolved.cache.key_prefix)
        # in a thread: a KG stage loads its graph here (seconds)
        app.state.pipeline = await run_in_threadpool(build_pipeline, resolved, active_encoder, registry, query_encoder)
        app.state.experiments = await run_in_threadpool(
            build_experiments, resolved, active_encoder, registry, query_encoder, app.state.pipeline
        )
        app.state.token_counter = encoder_token_counter(resolved.encoder.model)
        app.state.ready = True
        logger.info("glassbox ready: %d collections under %s", len(registry.names()), registry.root)
        try:
            yield
        finally:
            app.state.ready = False
            if batcher is not None:
                await run_in_threadpool(batcher.close)
            await run_in_threadpool(app.state.experiments.close)
            await run_in_threadpool(registry.close_all)
            await cache.aclose()
            await run_in_threadpool(cache.close)

    app = FastAPI(
        title="Glassbox",
        version=__version__,
        description="Retrieval that shows its work: FAISS search with a per-stage score breakdown.",
        lifespan=lifespan,
        responses=_ERROR_RESPONSES,
    )
    app.state.ready = False
    metrics = ServiceMetrics(cache=lambda: getattr(app.state, "cache", None))  # the cache appears in the lifespan
    install_error_handlers(app)
    app.add_middleware(RequestLimitsMiddleware, limits=resolved.limits)  # 413 and 504 in the one error shape
    for module in (health, collections, documents, search, context, experiments):
        app.include_router(module.router)
    # a mount is not a route, so the page stays out of the OpenAPI schema; /ui redirects to /ui/
    app.mount("/ui", StaticFiles(directory=UI_DIR, html=True), name="ui")
    install_observability(app, metrics)  # last: its middleware must be the outermost (request id on every response)
    return app
