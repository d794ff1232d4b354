"""Request limits: body size (declared and streamed), per-request timeout, and the batch/query/top_k limits.

The middleware is tested on its own with small ASGI apps (exact message order and timing), then through the real app.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator, MutableMapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from indexes import FloatArray
from service.api import create_app
from service.api.limits import RequestLimitsMiddleware
from service.encoder import EncoderIdentity, SentenceTransformerEncoder
from service.settings import DocumentSettings, LimitsSettings, SearchSettings, Settings
from tests.test_api import DOCS, assert_error, count, make_collection

Message = MutableMapping[str, Any]


class Exchange:
    """Drive one HTTP request through an ASGI app by hand: body chunks in, messages (with times) out."""

    def __init__(self, chunks: Sequence[bytes], headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.scope = {"type": "http", "method": "POST", "path": "/", "headers": list(headers)}
        self.chunks = list(chunks)
        self.sent: list[tuple[float, Message]] = []
        self.start = 0.0

    async def receive(self) -> Message:
        if not self.chunks:
            await anyio.sleep_forever()  # like a server after the body: nothing more until disconnect
        chunk = self.chunks.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}

    async def send(self, message: Message) -> None:
        self.sent.append((time.monotonic() - self.start, message))

    def run(self, app: Any) -> Exchange:
        async def main() -> None:
            self.start = time.monotonic()
            await app(self.scope, self.receive, self.send)

        anyio.run(main)
        return self

    @property
    def status(self) -> int:
        return int(next(m["status"] for _, m in self.sent if m["type"] == "http.response.start"))

    @property
    def body(self) -> dict[str, Any]:
        return dict(json.loads(b"".join(m.get("body", b"") for _, m in self.sent if m["type"] == "http.response.body")))


class EchoApp:
    """Reads the whole body, optionally sleeps, answers 200 with the byte count; records what it saw."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.called = False
        self.finished = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        size, more = 0, True
        while more:
            message = await receive()
            size += len(message.get("body", b""))
            more = message.get("more_body", False)
        await anyio.sleep(self.delay)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps({"size": size}).encode()})
        self.finished = True


def limited(app: Any, max_body_bytes: int = 100, timeout_s: float = 5.0) -> RequestLimitsMiddleware:
    return RequestLimitsMiddleware(app, LimitsSettings(max_body_bytes=max_body_bytes, request_timeout_s=timeout_s))


def test_declared_oversized_body_is_refused_before_the_app_runs() -> None:
    app = EchoApp()
    exchange = Exchange([b"x" * 101], headers=[(b"content-length", b"101")]).run(limited(app))
    assert exchange.status == 413 and not app.called
    error = exchange.body["error"]
    assert error["code"] == "payload_too_large" and "101 bytes" in error["message"] and "100 bytes" in error["message"]
    assert error["details"] == {"limit": 100, "size": 101}


def test_streamed_body_is_counted_and_refused_when_it_passes_the_limit() -> None:
    app = EchoApp()
    exchange = Exchange([b"x" * 60, b"x" * 60, b"x" * 60]).run(limited(app))  # chunked: no Content-Length
    assert exchange.status == 413 and exchange.body["error"]["code"] == "payload_too_large"
    assert "limit of 100 bytes" in exchange.body["error"]["message"] and not app.finished
    assert [m["type"] for _, m in exchange.sent] == ["http.response.start", "http.response.body"]  # only ours


def test_body_within_the_limit_passes_through() -> None:
    exchange = Exchange([b"x" * 50, b"x" * 50], headers=[(b"content-length", b"100")]).run(limited(EchoApp()))
    assert (exchange.status, exchange.body) == (200, {"size": 100})


def test_timeout_answers_504_at_the_limit_and_lets_the_work_finish() -> None:
    app = EchoApp(delay=1.5)
    exchange = Exchange([b"{}"]).run(limited(app, timeout_s=0.1))
    assert exchange.status == 504 and exchange.body["error"]["code"] == "timeout"
    assert "0.1 s" in exchange.body["error"]["message"] and exchange.body["error"]["details"] == {"limit_s": 0.1}
    sent_at = exchange.sent[0][0]
    assert 0.09 < sent_at < 1.0, sent_at  # answered at the deadline, not when the work ended (1.5 s)
    assert app.finished and len(exchange.sent) == 2  # the app completed; its own 200 was dropped


def test_a_response_already_started_is_not_replaced() -> None:
    async def streaming(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await anyio.sleep(0.3)
        await send({"type": "http.response.body", "body": b'{"late": true}'})

    exchange = Exchange([b""]).run(limited(streaming, timeout_s=0.05))
    assert (exchange.status, exchange.body) == (200, {"late": True})


def test_app_errors_propagate_unwrapped() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):  # as raised, for the outer error middleware
        Exchange([b""]).run(limited(failing))


def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    async def main() -> None:
        await limited(app)({"type": "lifespan"}, Exchange([]).receive, Exchange([]).send)

    anyio.run(main)
    assert seen == ["lifespan"]


# --- through the real app ---------------------------------------------------------------------------------------


class SlowEncoder:
    """The real encoder, made slow on demand: stands in for a request that outlives its timeout."""

    def __init__(self, inner: SentenceTransformerEncoder) -> None:
        self.inner = inner
        self.slow = threading.Event()

    @property
    def identity(self) -> EncoderIdentity:
        return self.inner.identity

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        if self.slow.is_set():
            time.sleep(1.5)
        return self.inner.encode(texts, progress=progress)


@pytest.fixture
def limited_client(tmp_path: Path, encoder: SentenceTransformerEncoder) -> Iterator[TestClient]:
    settings = Settings(
        home=tmp_path / "home",
        limits=LimitsSettings(max_body_bytes=2000),
        search=SearchSettings(max_query_chars=50, max_top_k=20, max_batch_queries=2),
        documents=DocumentSettings(max_batch=2, max_text_chars=100, max_id_chars=10),
    )
    with TestClient(create_app(settings, encoder=encoder)) as client:
        make_collection(client, documents=DOCS[:2])
        yield client


@pytest.mark.slow
def test_app_refuses_oversized_bodies_declared_or_streamed(limited_client: TestClient) -> None:
    url = "/v1/collections/papers/documents"
    big = json.dumps({"documents": [{"id": "a", "text": "x" * 3000}]}).encode()
    assert_error(limited_client.post(url, content=big), 413, "payload_too_large", str(len(big)), "2000 bytes")

    def chunks() -> Iterator[bytes]:
        yield big[:1500]
        yield big[1500:]

    assert_error(limited_client.post(url, content=chunks()), 413, "payload_too_large", "2000 bytes")
    assert count(limited_client) == 2


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "payload", "named"),
    [
        ("documents", {"documents": [{"id": f"d{i}"} for i in range(3)]}, "at most 2 documents (got 3)"),
        ("documents", {"documents": [{"id": "x" * 11}]}, "'xxxxxxxxxxx'"),
        ("documents", {"documents": [{"id": "d", "text": "y" * 101}]}, "longer than 100 characters"),
        ("search", {"query": "q" * 51}, "longer than 50 characters"),
        ("search", {"query": "q", "top_k": 21}, "top_k must be <= 20 (got 21)"),
        ("search/batch", {"queries": [{"query": "q"}] * 3}, "at most 2 queries (got 3)"),
        ("search/batch", {"queries": [{"query": "q"}, {"query": "q", "top_k": 99}]}, "queries.1.top_k"),
    ],
    ids=["batch-size", "id-length", "text-length", "query-length", "top-k", "batch-queries", "top-k-in-batch"],
)
def test_request_limits_name_the_bad_value(
    limited_client: TestClient, path: str, payload: dict[str, Any], named: str
) -> None:
    response = limited_client.post(f"/v1/collections/papers/{path}", json=payload)
    assert_error(response, 422, "invalid_request", named)


@pytest.mark.slow
def test_a_timed_out_upsert_still_lands_and_a_retry_is_idempotent(
    tmp_path: Path, encoder: SentenceTransformerEncoder
) -> None:
    plain = Settings(home=tmp_path / "home")
    with TestClient(create_app(plain, encoder=encoder)) as setup:
        make_collection(setup, documents=DOCS[:1])
    slow = SlowEncoder(encoder)
    settings = plain.model_copy(update={"limits": LimitsSettings(request_timeout_s=0.5)})
    with TestClient(create_app(settings, encoder=slow)) as client:
        slow.slow.set()
        late = {"documents": [{"id": "late", "title": "Late", "text": "It arrives after the deadline."}]}
        assert_error(client.post("/v1/collections/papers/documents", json=late), 504, "timeout", "0.5 s")
        # the test client returns once the app has finished: the write completed behind the 504
        assert client.get("/v1/collections/papers/documents/late").json()["title"] == "Late"
        slow.slow.clear()
        assert client.post("/v1/collections/papers/documents", json=late).status_code == 200  # the retry
        assert count(client) == 2
    with TestClient(create_app(plain, encoder=encoder)) as reopened:  # and it is durable
        assert reopened.get("/v1/collections/papers/documents/late").status_code == 200


def test_openapi_declares_limit_errors_on_every_operation(tmp_path: Path) -> None:
    schema = create_app(Settings(home=tmp_path / "home")).openapi()
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            declared = set(operation["responses"])
            assert {"413", "504"} <= declared, (method, path, declared)
            for status in ("413", "504"):
                (content,) = operation["responses"][status]["content"].values()  # JSON, or the route's media type
                assert content["schema"]["$ref"].endswith("/ErrorResponse")
