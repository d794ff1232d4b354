"""FastAPI dependencies: what routes receive from app.state, as `Annotated` aliases."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from service.pipeline import Pipeline
from service.registry import CollectionRegistry
from service.settings import Settings


def get_settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def get_registry(request: Request) -> CollectionRegistry:
    return cast(CollectionRegistry, request.app.state.registry)


def get_pipeline(request: Request) -> Pipeline:
    return cast(Pipeline, request.app.state.pipeline)


SettingsDep = Annotated[Settings, Depends(get_settings)]
RegistryDep = Annotated[CollectionRegistry, Depends(get_registry)]
PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
