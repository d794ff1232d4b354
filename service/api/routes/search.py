"""Search and batch search."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.concurrency import run_in_threadpool

from service.api.auth import AUTH_RESPONSES, ReadAccess
from service.api.deps import ExperimentsDep, MetricsDep, PipelineDep, RegistryDep, ResponseCacheDep, SettingsDep
from service.api.experiment_schemas import ExperimentExposure
from service.api.schemas import (
    BatchSearchRequest,
    BatchSearchResponse,
    SearchRequest,
    SearchResponse,
    SearchResult,
)
from service.api.validation import check_search, check_search_batch
from service.errors import InvalidRequestError
from service.experiments.manager import Exposure
from service.pipeline import SearchOutcome, SearchQuery
from service.response_cache import CACHE_HEADER, CacheState

router = APIRouter(
    prefix="/v1/collections/{collection}", tags=["search"], dependencies=[ReadAccess], responses=AUTH_RESPONSES
)

_CACHE_HEADER_DOC: dict[int | str, dict[str, object]] = {
    200: {
        "headers": {
            CACHE_HEADER: {
                "description": "hit: served from the response cache; miss: computed and cached; bypass: computed, "
                "cache off or unreachable",
                "schema": {"type": "string", "enum": ["hit", "miss", "bypass"]},
            }
        }
    }
}


def _query(request: SearchRequest) -> SearchQuery:
    return SearchQuery(request.query, request.top_k, request.filter, request.explain)


def search_response(outcome: SearchOutcome, exposure: Exposure | None = None) -> SearchResponse:
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
        experiment=None if exposure is None else ExperimentExposure.model_validate(vars(exposure)),
    )


def _json(content: bytes, state: CacheState) -> Response:
    return Response(content, media_type="application/json", headers={CACHE_HEADER: state})


@router.post("/search", response_model=SearchResponse, responses=_CACHE_HEADER_DOC)
async def search(
    collection: str,
    body: SearchRequest,
    pipeline: PipelineDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    registry: RegistryDep,
    responses: ResponseCacheDep,
    experiments: ExperimentsDep,
) -> Response:
    """Search one collection. A repeated request is answered from the response cache (`X-Glassbox-Cache: hit`)
    until the collection is written to; its `timings_ms` are those of the original computation."""
    check_search(body, settings.search)
    if body.experiment is not None:  # experiment traffic is never cached: every impression is served and logged
        experiment, unit_id = body.experiment, body.unit_id or ""
        outcome, exposure = await run_in_threadpool(experiments.search, collection, _query(body), experiment, unit_id)
        metrics.observe_search(outcome)
        return _json(search_response(outcome, exposure).model_dump_json().encode(), "bypass")
    # after every dependency (authentication included): the cache never answers a request that would be refused.
    # A hit is answered on the event loop; the search itself runs in a worker thread (as in `search_batch`).
    request_body = body.model_dump(mode="json")
    opened = registry.opened(collection)
    lookup = None if opened is None else await responses.alookup(opened, pipeline.fingerprint, request_body)
    if lookup is not None and lookup.cached is not None:
        return _json(lookup.cached, "hit")

    def compute() -> Response:
        found = lookup or responses.lookup(registry.get(collection), pipeline.fingerprint, request_body)
        if found.cached is not None:
            return _json(found.cached, "hit")
        outcome = pipeline.search(collection, _query(body))
        metrics.observe_search(outcome)
        content = search_response(outcome).model_dump_json().encode()
        responses.store([found], [content])
        return _json(content, found.state)

    return await run_in_threadpool(compute)


@router.post("/search/batch", response_model=BatchSearchResponse, responses=_CACHE_HEADER_DOC)
async def search_batch(
    collection: str,
    body: BatchSearchRequest,
    pipeline: PipelineDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    registry: RegistryDep,
    responses: ResponseCacheDep,
) -> Response:
    """Several searches; each is looked up in the response cache on its own and only the misses are computed
    (encoded in one batch). `X-Glassbox-Cache` is `hit` when every query was cached."""
    check_search_batch(body.queries, settings.search)
    for position, query in enumerate(body.queries):
        if query.experiment is not None:
            raise InvalidRequestError(
                f"queries.{position}.experiment", query.experiment, "experiments run on single searches, not batches"
            )
    bodies = [query.model_dump(mode="json") for query in body.queries]
    opened = registry.opened(collection)
    looked_up = None if opened is None else await responses.alookup_many(opened, pipeline.fingerprint, bodies)
    if looked_up is not None and all(lookup.cached is not None for lookup in looked_up):
        return _json(_batch_body([lookup.cached or b"" for lookup in looked_up]), "hit")  # on the event loop

    def compute() -> Response:
        lookups = looked_up
        if lookups is None:
            lookups = responses.lookup_many(registry.get(collection), pipeline.fingerprint, bodies)
        misses = [i for i, lookup in enumerate(lookups) if lookup.cached is None]
        outcomes = pipeline.search_batch(collection, [_query(body.queries[i]) for i in misses]) if misses else []
        parts = [lookup.cached or b"" for lookup in lookups]
        for i, outcome in zip(misses, outcomes, strict=True):
            metrics.observe_search(outcome)
            parts[i] = search_response(outcome).model_dump_json().encode()
        responses.store([lookups[i] for i in misses], [parts[i] for i in misses])
        state: CacheState = "hit" if not misses else lookups[misses[0]].state
        return _json(_batch_body(parts), state)

    return await run_in_threadpool(compute)


def _batch_body(parts: list[bytes]) -> bytes:
    return b'{"responses":[' + b",".join(parts) + b"]}"
