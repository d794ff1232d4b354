"""FastAPI dependencies: what routes receive from app.state, as `Annotated` aliases.

The getters are `async def` although they only read attributes: FastAPI runs a sync dependency in its thread pool,
one thread hop per dependency per request; an async one runs on the event loop at once.
"""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from service.cache import Cache
from service.experiments.manager import ExperimentManager
from service.metrics import ServiceMetrics
from service.pipeline import Pipeline
from service.rag_context import TokenCounter
from service.registry import CollectionRegistry
from service.response_cache import ResponseCache
from service.settings import Settings


async def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def get_registry(request: Request) -> CollectionRegistry:
    return cast(CollectionRegistry, request.app.state.registry)


async def get_pipeline(request: Request) -> Pipeline:
    return cast(Pipeline, request.app.state.pipeline)


async def get_cache(request: Request) -> Cache:
    return cast(Cache, request.app.state.cache)


async def get_response_cache(request: Request) -> ResponseCache:
    return cast(ResponseCache, request.app.state.response_cache)


async def get_metrics(request: Request) -> ServiceMetrics:
    return cast(ServiceMetrics, request.app.state.metrics)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[CollectionRegistry, Depends(get_registry)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
CacheDep = Annotated[Cache, Depends(get_cache)]
ResponseCacheDep = Annotated[ResponseCache, Depends(get_response_cache)]
MetricsDep = Annotated[ServiceMetrics, Depends(get_metrics)]


async def get_experiments(request: Request) -> ExperimentManager:
    return cast(ExperimentManager, request.app.state.experiments)


async def get_token_counter(request: Request) -> TokenCounter:
    return cast(TokenCounter, request.app.state.token_counter)


ExperimentsDep = Annotated[ExperimentManager, Depends(get_experiments)]
TokenCounterDep = Annotated[TokenCounter, Depends(get_token_counter)]
