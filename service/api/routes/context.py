"""RAG context: the kept passages of a search, trimmed to a token budget, with relevance and a rationale each."""

from __future__ import annotations

from fastapi import APIRouter

from service.api.auth import AUTH_RESPONSES, ReadAccess
from service.api.deps import MetricsDep, PipelineDep, SettingsDep, TokenCounterDep
from service.api.experiment_schemas import ContextPassageOut, ContextRequest, ContextResponse
from service.api.schemas import SearchRequest
from service.api.validation import check_search
from service.pipeline import SearchQuery
from service.rag_context import build_context

router = APIRouter(
    prefix="/v1/collections/{collection}", tags=["rag"], dependencies=[ReadAccess], responses=AUTH_RESPONSES
)


@router.post("/context")
def context(
    collection: str,
    body: ContextRequest,
    pipeline: PipelineDep,
    settings: SettingsDep,
    metrics: MetricsDep,
    counter: TokenCounterDep,
) -> ContextResponse:
    """Search, keep what the relevance filter kept, best first, and fill `token_budget` (title + text tokens of the
    serving encoder's tokenizer): whole passages while they fit, the first that does not fit cut to what is left."""
    check_search(SearchRequest(query=body.query, top_k=body.top_k, filter=body.filter), settings.search)
    outcome = pipeline.search(collection, SearchQuery(body.query, body.top_k, body.filter, explain=True))
    metrics.observe_search(outcome)
    built = build_context(outcome.results, body.token_budget, counter)
    return ContextResponse(
        passages=[ContextPassageOut(**vars(p)) for p in built.passages],
        tokens=built.tokens,
        token_budget=built.budget,
        tokenizer=counter.name,
        left_out=built.left_out,
        variant=outcome.variant,
    )
