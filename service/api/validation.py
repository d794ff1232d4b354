"""Limits from settings that a static schema cannot express; each failure names the field and the value."""

from __future__ import annotations

from service.api.schemas import DocumentIn, SearchRequest
from service.errors import InvalidRequestError
from service.settings import DocumentSettings, SearchSettings


def check_search(request: SearchRequest, limits: SearchSettings, field: str = "") -> None:
    """Raise `InvalidRequestError` for an empty or over-long query or a top_k above the maximum."""
    if not request.query.strip():
        raise InvalidRequestError(f"{field}query", request.query, "query must not be empty")
    if len(request.query) > limits.max_query_chars:
        raise InvalidRequestError(
            f"{field}query", request.query, f"query is longer than {limits.max_query_chars} characters"
        )
    if request.top_k > limits.max_top_k:
        raise InvalidRequestError(f"{field}top_k", request.top_k, f"top_k must be <= {limits.max_top_k}")


def check_search_batch(requests: list[SearchRequest], limits: SearchSettings) -> None:
    if len(requests) > limits.max_batch_queries:
        raise InvalidRequestError("queries", len(requests), f"a batch holds at most {limits.max_batch_queries} queries")
    for position, request in enumerate(requests):
        check_search(request, limits, field=f"queries.{position}.")


def check_documents(documents: list[DocumentIn], limits: DocumentSettings) -> None:
    """Raise `InvalidRequestError` for an oversized batch, duplicate or over-long ids, or over-long texts."""
    if len(documents) > limits.max_batch:
        raise InvalidRequestError("documents", len(documents), f"a batch holds at most {limits.max_batch} documents")
    seen: set[str] = set()
    for position, document in enumerate(documents):
        if document.id in seen:
            raise InvalidRequestError(
                f"documents.{position}.id", document.id, "duplicate id in one batch; nothing was written"
            )
        seen.add(document.id)
        if not document.id.strip() or len(document.id) > limits.max_id_chars:
            raise InvalidRequestError(
                f"documents.{position}.id",
                document.id,
                f"ids are 1-{limits.max_id_chars} characters and not blank",
            )
        if len(document.title) + len(document.text) > limits.max_text_chars:
            raise InvalidRequestError(
                f"documents.{position}.text",
                document.text,
                f"title + text is longer than {limits.max_text_chars} characters",
            )
