"""Pydantic request/response models: the HTTP edge only (inside, the service uses frozen dataclasses)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from service.api.experiment_schemas import ExperimentExposure


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class DocumentIn(_Request):
    id: str = Field(min_length=1, description="stable document id, unique in the collection")
    title: str = ""
    text: str = ""
    metadata: dict[str, JsonValue] = Field(default_factory=dict, description="JSON object; filterable")


class UpsertRequest(_Request):
    documents: list[DocumentIn] = Field(min_length=1)


class UpsertResponse(BaseModel):
    collection: str
    upserted: int
    ids: list[str]


class DeleteRequest(_Request):
    ids: list[str] = Field(min_length=1)


class DeleteResponse(BaseModel):
    collection: str
    deleted: list[str]
    missing: list[str]


class DocumentOut(BaseModel):
    id: str
    title: str
    text: str
    metadata: dict[str, Any]


class CollectionCreate(_Request):
    name: str = Field(description="1-64 of a-z, 0-9, '_', '-'")
    index: str | None = Field(None, description="FAISS factory string; default from GLASSBOX_INDEX__FACTORY")


class CollectionInfo(BaseModel):
    name: str
    documents: int
    dimension: int
    encoder: str
    encoder_revision: str
    index: str
    created_at: str


class CollectionList(BaseModel):
    collections: list[CollectionInfo]


class CollectionDeleted(BaseModel):
    deleted: str


class SearchRequest(_Request):
    query: str = Field(description="query text (non-empty, at most GLASSBOX_SEARCH__MAX_QUERY_CHARS)")
    top_k: int = Field(10, ge=1, description="results to return (at most GLASSBOX_SEARCH__MAX_TOP_K)")
    filter: dict[str, JsonValue] = Field(
        default_factory=dict, description="metadata equality filter: every key must equal its value"
    )
    explain: bool = Field(
        True, description="include each result's `explanation`: every stage's short summary of it (the breakdown stays)"
    )
    experiment: str | None = Field(
        None, description="serve this search under an online experiment (see GET /v1/experiments); needs `unit_id`"
    )
    unit_id: str | None = Field(
        None, max_length=256, description="the user or session id an experiment assigns by (same unit, same variant)"
    )


class BatchSearchRequest(_Request):
    queries: list[SearchRequest] = Field(min_length=1)


class SearchResult(BaseModel):
    id: str
    title: str
    text: str
    metadata: dict[str, Any]
    score: float = Field(description="final score after all stages")
    relevance: float | None = Field(description="calibrated relevance probability; null when uncalibrated")
    kept: bool = Field(description="whether the relevance filter kept it")
    breakdown: dict[str, dict[str, Any]] = Field(description="score (and rank) per stage, by stage name")
    explanation: dict[str, Any] | None = Field(
        description="per stage, a short summary a reader can check (relevance, IMRNN words, KG rationales); null "
        "when the request set explain=false"
    )


class SearchResponse(BaseModel):
    results: list[SearchResult]
    query: dict[str, Any]
    timings_ms: dict[str, float]
    variant: str
    experiment: ExperimentExposure | None = Field(
        None, description="set when the search ran under an experiment: send `impression_id` back with feedback"
    )


class BatchSearchResponse(BaseModel):
    responses: list[SearchResponse]


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: str


class CacheReadiness(BaseModel):
    backend: str = Field(description="redis, memory (in-process) or none (caching off)")
    status: str = Field(description="ok, or down while Redis is unreachable (searches bypass the cache)")


class Readiness(BaseModel):
    status: str = Field(description="ready, or degraded: still serving, but the cache is down")
    encoder: str
    collections: list[str]
    cache: CacheReadiness
