"""Request body size and per-request time limits, as pure ASGI middleware (no BaseHTTPMiddleware buffering).

- Body size: a `Content-Length` over `max_body_bytes` is answered 413 before any byte is read; a body without one
  (chunked) is counted as it streams in, and the request is answered 413 as soon as the count passes the limit.
- Time: a request that has not started its response after `request_timeout_s` is answered 504 (an asyncio timer:
  uvicorn runs asyncio). The route is not interrupted: a sync route runs in a worker thread that cannot be stopped,
  and cutting a write in half would be worse than letting it finish. It completes in the background (durable and
  consistent, as any write) and its own response is discarded. Upserts replace by id and deletes are idempotent,
  so a client may retry a 504 safely.

Both answers come from `service.api.errors`, in the one error shape.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.errors import glassbox_error_response
from service.errors import GlassboxError, PayloadTooLargeError, RequestTimeoutError
from service.settings import LimitsSettings

logger = logging.getLogger(__name__)


class _BodyTooLargeError(Exception):
    """Raised into the app from `receive` once the streamed body passes the limit."""


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, or None when absent or unreadable (then the streamed bytes are counted).

    >>> declared_length({"headers": [(b"content-length", b"12")]}), declared_length({"headers": []})
    (12, None)
    """
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class RequestLimitsMiddleware:
    """Answer over-large bodies 413 and slow requests 504 (see the module docstring)."""

    def __init__(self, app: ASGIApp, limits: LimitsSettings) -> None:
        self.app = app
        self.max_body_bytes = limits.max_body_bytes
        self.timeout_s = limits.request_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await _answer(scope, receive, send, PayloadTooLargeError(self.max_body_bytes, declared))
            return
        await _Exchange(self, scope, receive, send).run()


class _Exchange:
    """One request's state: bytes received, whether the app's response began, whether this middleware answered."""

    def __init__(self, limits: RequestLimitsMiddleware, scope: Scope, receive: Receive, send: Send) -> None:
        self.limits = limits
        self.scope = scope
        self.receive = receive
        self.send = send
        self.received = 0
        self.too_large = False
        self.started = False  # the app's response began going out: it is no longer ours to replace
        self.answered = False  # this middleware answered (413 or 504): drop whatever the app sends
        self.timeout_reply: asyncio.Task[None] | None = None

    async def limited_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request" and not self.too_large:
            self.received += len(message.get("body", b""))
            if self.received > self.limits.max_body_bytes:
                self.too_large = True
                raise _BodyTooLargeError
        return message

    async def guarded_send(self, message: Message) -> None:
        if self.answered or (self.too_large and not self.started):
            return  # the app's reply to a request this middleware answers (or has answered) itself
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)

    def on_timeout(self) -> None:
        """Called by the event loop's timer: answer 504 unless the app's response has begun."""
        if self.started or self.answered or self.too_large:
            return
        self.answered = True  # from here the app's own messages are dropped; the route runs on to completion
        error = RequestTimeoutError(self.limits.timeout_s)
        self.timeout_reply = asyncio.get_running_loop().create_task(_answer(self.scope, self.receive, self.send, error))

    async def run(self) -> None:
        # a plain loop timer, not a cancel scope: cancelling would wait for the route's worker thread anyway, and
        # the timer costs microseconds where a task group per request costs tens of them
        timer = asyncio.get_running_loop().call_later(self.limits.timeout_s, self.on_timeout)
        try:
            await self.limits.app(self.scope, self.limited_receive, self.guarded_send)
        except _BodyTooLargeError:
            pass  # the app did not catch it; the 413 goes out below
        except Exception:
            if not self.answered:
                raise
            logger.exception("a request answered 504 failed later in the background")
        finally:
            timer.cancel()
            if self.timeout_reply is not None:
                await self.timeout_reply
        if self.too_large and not self.started and not self.answered:
            self.answered = True
            await _answer(self.scope, self.receive, self.send, PayloadTooLargeError(self.limits.max_body_bytes))


async def _answer(scope: Scope, receive: Receive, send: Send, error: GlassboxError) -> None:
    await glassbox_error_response(error)(scope, receive, send)
