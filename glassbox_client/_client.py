"""Sync and async clients. Both build requests and read responses with the same functions; only I/O differs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from glassbox_client._models import ContextResponse, GlassboxAPIError, SearchResponse

Request = tuple[str, str, dict[str, Any] | None]  # method, path, JSON body


def _headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


def _search(
    collection: str,
    query: str,
    top_k: int,
    filter: Mapping[str, Any] | None,
    explain: bool,
    experiment: str | None,
    unit_id: str | None,
) -> Request:
    body: dict[str, Any] = {"query": query, "top_k": top_k, "filter": dict(filter or {}), "explain": explain}
    if experiment is not None:
        body |= {"experiment": experiment, "unit_id": unit_id}
    return "POST", f"/v1/collections/{collection}/search", body


def _context(collection: str, query: str, token_budget: int, top_k: int, filter: Mapping[str, Any] | None) -> Request:
    body = {"query": query, "token_budget": token_budget, "top_k": top_k, "filter": dict(filter or {})}
    return "POST", f"/v1/collections/{collection}/context", body


def _upsert(collection: str, documents: Sequence[Mapping[str, Any]]) -> Request:
    return "POST", f"/v1/collections/{collection}/documents", {"documents": [dict(d) for d in documents]}


def _feedback(impression_id: str, doc_id: str, kind: str, value: float | None) -> Request:
    return "POST", "/v1/feedback", {"impression_id": impression_id, "doc_id": doc_id, "type": kind, "value": value}


def _checked(response: httpx.Response) -> Any:
    """The JSON body of a 2xx response; otherwise `GlassboxAPIError` from the API's error shape."""
    if response.is_success:
        return response.json()
    try:
        error = response.json()["error"]
        code, message, details = error["code"], error["message"], error.get("details", {})
    except (ValueError, KeyError, TypeError):
        code, message, details = "http_error", response.text[:200], {}
    raise GlassboxAPIError(response.status_code, code, message, details, response.headers.get("X-Request-ID"))


class GlassboxClient:
    """Blocking client. `transport` lets tests and embedders pass any httpx transport.

    Raises:
        GlassboxAPIError: any non-2xx answer, with the API's code and message.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._http = httpx.Client(base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport)

    def _send(self, request: Request) -> Any:
        method, path, body = request
        return _checked(self._http.request(method, path, json=body))

    def search(
        self,
        collection: str,
        query: str,
        *,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        explain: bool = True,
        experiment: str | None = None,
        unit_id: str | None = None,
    ) -> SearchResponse:
        request = _search(collection, query, top_k, filter, explain, experiment, unit_id)
        return SearchResponse.from_json(self._send(request))

    def context(
        self,
        collection: str,
        query: str,
        *,
        token_budget: int = 512,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
    ) -> ContextResponse:
        """Kept passages trimmed to `token_budget` tokens, each with relevance and a one-line rationale."""
        return ContextResponse.from_json(self._send(_context(collection, query, token_budget, top_k, filter)))

    def create_collection(self, name: str, index: str | None = None) -> dict[str, Any]:
        body = {"name": name} | ({"index": index} if index else {})
        return dict(self._send(("POST", "/v1/collections", body)))

    def upsert(self, collection: str, documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return dict(self._send(_upsert(collection, documents)))

    def feedback(self, impression_id: str, doc_id: str, kind: str = "click", value: float | None = None) -> None:
        self._send(_feedback(impression_id, doc_id, kind, value))

    def experiment_report(self, experiment: str) -> dict[str, Any]:
        return dict(self._send(("GET", f"/v1/experiments/{experiment}", None)))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> GlassboxClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()


class AsyncGlassboxClient:
    """The same API for asyncio code."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url, headers=_headers(api_key), timeout=timeout, transport=transport
        )

    async def _send(self, request: Request) -> Any:
        method, path, body = request
        return _checked(await self._http.request(method, path, json=body))

    async def search(
        self,
        collection: str,
        query: str,
        *,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
        explain: bool = True,
        experiment: str | None = None,
        unit_id: str | None = None,
    ) -> SearchResponse:
        request = _search(collection, query, top_k, filter, explain, experiment, unit_id)
        return SearchResponse.from_json(await self._send(request))

    async def context(
        self,
        collection: str,
        query: str,
        *,
        token_budget: int = 512,
        top_k: int = 10,
        filter: Mapping[str, Any] | None = None,
    ) -> ContextResponse:
        return ContextResponse.from_json(await self._send(_context(collection, query, token_budget, top_k, filter)))

    async def create_collection(self, name: str, index: str | None = None) -> dict[str, Any]:
        body = {"name": name} | ({"index": index} if index else {})
        return dict(await self._send(("POST", "/v1/collections", body)))

    async def upsert(self, collection: str, documents: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        return dict(await self._send(_upsert(collection, documents)))

    async def feedback(self, impression_id: str, doc_id: str, kind: str = "click", value: float | None = None) -> None:
        await self._send(_feedback(impression_id, doc_id, kind, value))

    async def experiment_report(self, experiment: str) -> dict[str, Any]:
        return dict(await self._send(("GET", f"/v1/experiments/{experiment}", None)))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncGlassboxClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
