"""API-key authentication and per-collection scopes, as FastAPI dependencies.

With no keys configured (`GLASSBOX_API_KEYS` empty: the embedded local mode) every caller is the anonymous
principal, allowed everything. Otherwise a key comes in `X-API-Key: KEY` (checked first) or
`Authorization: Bearer KEY`; none, or one that matches no configured digest, is a 401, and a key without the
scope a collection needs is a 403 naming the collection and the scope. Scopes: `read` searches, gets documents
and describes or lists collections (a list shows only readable ones); `write` creates and deletes collections
and upserts and deletes documents. Write does not imply read. Public routes (health, readiness, metrics, OpenAPI,
docs, the explain page) take no dependency from here.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import Depends, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from service.api.deps import SettingsDep
from service.api.schemas import ErrorResponse
from service.api_keys import Principal, Scope, find_key
from service.errors import ForbiddenError, UnauthorizedError

logger = logging.getLogger(__name__)

_api_key_header = APIKeyHeader(
    name="X-API-Key", scheme_name="ApiKey", auto_error=False, description="an API key (see GLASSBOX_API_KEYS)"
)
_bearer = HTTPBearer(scheme_name="Bearer", auto_error=False, description="the same API key as a bearer token")

AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {
        "model": ErrorResponse,
        "description": "no API key, or an unknown one",
        "headers": {"WWW-Authenticate": {"description": "the scheme to use", "schema": {"type": "string"}}},
    },
    403: {"model": ErrorResponse, "description": "the API key lacks the scope this collection needs"},
}


async def authenticate(
    settings: SettingsDep,
    api_key: Annotated[str | None, Security(_api_key_header)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> Principal:
    """The caller: anonymous when no keys are configured, else the key's holder. Raises `UnauthorizedError`.

    async: it only hashes and compares, so it runs on the event loop instead of costing a thread-pool hop.
    """
    if not settings.api_keys:
        return Principal.anonymous()
    presented = api_key or (bearer.credentials if bearer is not None else None)
    if not presented:
        raise UnauthorizedError("an API key is required: send it as X-API-Key: KEY or Authorization: Bearer KEY")
    entry = find_key(presented, settings.api_keys)
    if entry is None:
        logger.info("request refused: the API key matches no configured key")  # never the key or its digest
        raise UnauthorizedError("the API key is not valid")
    return Principal.of(entry)


PrincipalDep = Annotated[Principal, Depends(authenticate)]


def authorize(principal: Principal, scope: Scope, collection: str) -> None:
    """Raise `ForbiddenError` unless `principal` holds `scope` on `collection`."""
    if not principal.can(scope, collection):
        logger.info("request refused: key %r lacks %s on collection %r", principal.name, scope, collection)
        raise ForbiddenError(principal.name, scope, collection)


async def require_read(collection: str, principal: PrincipalDep) -> Principal:
    """Dependency for routes under /v1/collections/{collection} that read it."""
    authorize(principal, "read", collection)
    return principal


async def require_write(collection: str, principal: PrincipalDep) -> Principal:
    """Dependency for routes under /v1/collections/{collection} that change it."""
    authorize(principal, "write", collection)
    return principal


Authenticated = Depends(authenticate)
ReadAccess = Depends(require_read)
WriteAccess = Depends(require_write)
