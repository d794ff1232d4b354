"""Search and batch search."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.deps import PipelineDep, SettingsDep
from service.api.schemas import (
    BatchSearchRequest,
    BatchSearchResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from service.api.validation import check_search, check_search_batch
from service.pipeline import SearchOutcome, SearchQuery

router = APIRouter(prefix="/v1/collections/{collection}", tags=["search"])


def _query(request: SearchRequest) -> SearchQuery:
    return SearchQuery(request.query, request.top_k, request.filter, request.explain)


def search_response(outcome: SearchOutcome) -> SearchResponse:
    return SearchResponse(
        results=[
            SearchResult(
                id=item.doc_id,
                title=item.title,
                text=item.text,
                metadata=dict(item.metadata),
                score=item.score,
                relevance=item.relevance,
                kept=item.kept,
                breakdown=item.breakdown,
                explanation=item.explanation,
            )
            for item in outcome.results
        ],
        query=outcome.query,
        timings_ms=outcome.timings_ms,
        variant=outcome.variant,
    )


@router.post("/search")
def search(collection: str, body: SearchRequest, pipeline: PipelineDep, settings: SettingsDep) -> SearchResponse:
    check_search(body, settings.search)
    return search_response(pipeline.search(collection, _query(body)))


@router.post("/search/batch")
def search_batch(
    collection: str, body: BatchSearchRequest, pipeline: PipelineDep, settings: SettingsDep
) -> BatchSearchResponse:
    check_search_batch(body.queries, settings.search)
    outcomes = pipeline.search_batch(collection, [_query(q) for q in body.queries])
    return BatchSearchResponse(responses=[search_response(o) for o in outcomes])
