"""Request ids, request metrics and the access log (one pure ASGI middleware), and the `GET /metrics` route.

Pure ASGI rather than Starlette's `BaseHTTPMiddleware`, which runs each request through an extra task and
memory stream and costs throughput. Install it last (`install_observability`), so that it is the outermost
middleware and every response, including those of other middleware, carries `X-Request-ID`.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import cast

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.deps import MetricsDep
from service.log_format import request_id_var
from service.metrics import CONTENT_TYPE, UNMATCHED_ROUTE, ServiceMetrics

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

access_logger = logging.getLogger("service.access")
router = APIRouter(tags=["observability"])


def accepted_request_id(value: str | None) -> str:
    """The client's request id when it is 1-64 characters of [A-Za-z0-9._-], else a new uuid4 hex.

    >>> accepted_request_id("abc-123.x_y")
    'abc-123.x_y'
    >>> len(accepted_request_id("has space")), len(accepted_request_id(None))
    (32, 32)
    """
    if value is not None and _VALID_REQUEST_ID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def route_template(scope: Scope) -> str:
    """The path template of the route that handled the request (never the raw path); UNMATCHED_ROUTE if none."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


def _header(scope: Scope, key: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == key:
            return cast(bytes, value).decode("latin-1")
    return None


class ObservabilityMiddleware:
    """Per HTTP request: accept or make a request id (log context and `X-Request-ID` response header), count the
    request by route template and status, time it, and log one access line (method, route, status, duration).

    An exception that escapes the app before the response starts is answered here, by the app's own handler for
    `Exception` (service/api/errors.py), so that the 500 carries the request id and is logged under it.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(_header(scope, _HEADER_KEY))
        header = (_HEADER_KEY, request_id.encode("latin-1"))
        token = request_id_var.set(request_id)
        start = time.perf_counter()
        status = 500
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                started = True
                status = int(message["status"])
                headers = [item for item in message.get("headers", ()) if item[0].lower() != _HEADER_KEY]
                message = {**message, "headers": [*headers, header]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            handler = getattr(scope.get("app"), "exception_handlers", {}).get(Exception)
            if started or handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
            await response(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            method, route = scope["method"], route_template(scope)
            self.metrics.observe_request(method, route, status, seconds)
            access_logger.info(
                "%s %s %d %.1f ms",
                method,
                route,
                status,
                seconds * 1000.0,
                extra={"method": method, "route": route, "status": status, "duration_ms": round(seconds * 1000.0, 3)},
            )
            request_id_var.reset(token)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format (version 0.0.4)"}},
)
def metrics(service_metrics: MetricsDep) -> Response:
    """Prometheus metrics: requests by route and status, latency per route and per pipeline stage, relevance
    filter keep counts, micro-batch sizes, cache hits and misses, process memory and CPU."""
    return Response(service_metrics.render(), media_type=CONTENT_TYPE)


def install_observability(app: FastAPI, metrics: ServiceMetrics) -> None:
    """Put `metrics` on app.state, add the middleware and the /metrics route. Call it after every other
    `add_middleware`, so that this middleware is the outermost one."""
    app.state.metrics = metrics
    app.add_middleware(ObservabilityMiddleware, metrics=metrics)
    app.include_router(router)
