"""JSON log lines carry the request id the response returned; client ids are echoed when valid, else replaced."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.api.deps import get_pipeline
from service.encoder import SentenceTransformerEncoder
from service.log_format import JsonFormatter, TextFormatter, request_id_var
from service.settings import Settings
from tests.test_api import make_collection

pytestmark = pytest.mark.slow


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything logged at INFO and above while the test runs, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


def parsed(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [line for line in parsed(stream) if line["logger"] == "service.access"]


def test_access_log_line_carries_the_returned_request_id(client: TestClient, log_lines: io.StringIO) -> None:
    make_collection(client)
    response = client.post("/v1/collections/papers/search", json={"query": "vaccines", "top_k": 1})
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32 and int(request_id, 16) >= 0  # a fresh uuid4 hex
    (line,) = [entry for entry in access_lines(log_lines) if entry["request_id"] == request_id]
    assert set(line) >= {"time", "level", "logger", "message", "request_id"}
    assert line["method"] == "POST" and line["route"] == "/v1/collections/{collection}/search"
    assert line["status"] == 200 and line["duration_ms"] > 0
    assert line["message"].startswith("POST /v1/collections/{collection}/search 200 ")
    served = json.dumps([entry for entry in parsed(log_lines) if entry["logger"].startswith("service")])
    assert "vaccines" not in served and "papers/search" not in served  # no bodies, no raw paths


def test_a_valid_client_request_id_is_echoed_an_invalid_one_replaced(client: TestClient) -> None:
    assert client.get("/healthz", headers={"X-Request-ID": "trace-42.a_b"}).headers["X-Request-ID"] == "trace-42.a_b"
    for bad in ("has space", "x" * 65, "semi;colon", ""):
        returned = client.get("/healthz", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert returned != bad and len(returned) == 32
    first, second = (client.get("/healthz").headers["X-Request-ID"] for _ in range(2))
    assert first != second


def test_error_responses_carry_the_request_id(
    settings: Settings, encoder: SentenceTransformerEncoder, log_lines: io.StringIO
) -> None:
    app = create_app(settings, encoder=encoder)

    def broken_pipeline() -> None:  # a sync dependency: FastAPI runs it in a worker thread
        logging.getLogger("tests.broken").warning("about to fail")
        raise RuntimeError("pipeline exploded")

    app.dependency_overrides[get_pipeline] = broken_pipeline
    with TestClient(app) as client:
        missing = client.get("/v1/collections/nope")
        assert missing.status_code == 404 and len(missing.headers["X-Request-ID"]) == 32
        invalid = client.post("/v1/collections", json={"name": "Bad Name"}, headers={"X-Request-ID": "req-1"})
        assert invalid.status_code == 422 and invalid.headers["X-Request-ID"] == "req-1"
        crashed = client.post("/v1/collections/papers/search", json={"query": "x"}, headers={"X-Request-ID": "req-2"})
    assert crashed.status_code == 500 and crashed.headers["X-Request-ID"] == "req-2"
    assert crashed.json()["error"]["code"] == "internal_error"
    by_logger = {(line["logger"], line["request_id"]): line for line in parsed(log_lines)}
    assert ("tests.broken", "req-2") in by_logger  # logged in the worker thread, under the request's id
    assert "pipeline exploded" in by_logger[("service.api.errors", "req-2")]["exception"]
    assert by_logger[("service.access", "req-2")]["status"] == 500


def test_text_format_names_the_request_and_json_keeps_extra_fields() -> None:
    record = logging.LogRecord("glassbox.x", logging.INFO, __file__, 1, "hello %s", ("world",), None)
    record.route = "/healthz"
    token = request_id_var.set("abc")
    try:
        text, line = TextFormatter().format(record), json.loads(JsonFormatter().format(record))
    finally:
        request_id_var.reset(token)
    assert text.endswith("INFO glassbox.x [abc]: hello world")
    assert line["message"] == "hello world" and line["request_id"] == "abc" and line["route"] == "/healthz"
    assert line["time"].endswith("Z") and line["level"] == "INFO"
    assert json.loads(JsonFormatter().format(record))["request_id"] is None  # outside a request
