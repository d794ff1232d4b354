"""GET /metrics after real requests: route templates, status labels, stage histograms, filter and batch metrics."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.encoder import SentenceTransformerEncoder
from service.metrics import ServiceMetrics
from service.pipeline import SearchOutcome
from service.settings import Settings
from tests.test_api import make_collection


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in a text exposition, or None when it is absent."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#") or " " not in line:
            continue
        series, value = line.rsplit(" ", 1)
        metric, _, rest = series.partition("{")
        found = ",".join(sorted(part for part in rest.rstrip("}").split(",") if part))
        if metric == name and found == wanted:
            return float(value)
    return None


def test_two_apps_in_one_process_keep_separate_registries() -> None:
    first, second = ServiceMetrics(), ServiceMetrics()
    first.observe_request("GET", "/healthz", 200, 0.001)
    assert sample(first.render().decode(), "glassbox_http_requests_total", method="GET", route="/healthz", status="200")
    assert (
        sample(second.render().decode(), "glassbox_http_requests_total", method="GET", route="/healthz", status="200")
        is None
    )
    create_app(Settings())
    create_app(Settings())  # builds its own registry: no duplicate-timeseries error


def test_search_outcome_feeds_stage_histograms_and_filter_counters() -> None:
    metrics = ServiceMetrics()
    outcome = SearchOutcome(
        results=[],
        query={"candidates": 100, "cosine": {"calibrated": True, "kept": 7}},
        timings_ms={"encode": 4.0, "retrieve": 3.0, "cosine": 0.5, "total": 7.5},
        variant="hybrid+cosine",
    )
    metrics.observe_search(outcome)
    metrics.observe_search(SearchOutcome([], {"candidates": 50}, {"encode": 1.0, "total": 2.0}, "dense"))
    text = metrics.render().decode()
    assert sample(text, "glassbox_filter_candidates_total", calibrated="true") == 100
    assert sample(text, "glassbox_filter_kept_total", calibrated="true") == 7
    assert sample(text, "glassbox_search_stage_duration_seconds_count", stage="encode") == 2
    assert sample(text, "glassbox_search_stage_duration_seconds_sum", stage="cosine") == pytest.approx(0.0005)
    assert sample(text, "glassbox_search_stage_duration_seconds_count", stage="total") == 2
    metrics.observe_request("BREW", "unmatched", 405, 0.001)  # odd methods share one label value
    text = metrics.render().decode()
    assert sample(text, "glassbox_http_requests_total", method="OTHER", route="unmatched", status="405") == 1


@pytest.mark.slow
def test_metrics_endpoint_after_real_requests(client: TestClient) -> None:
    make_collection(client)
    for query in ("what lowers cholesterol?", "vaccines", "pain relief"):
        assert client.post("/v1/collections/papers/search", json={"query": query, "top_k": 2}).status_code == 200
    assert client.post("/v1/collections/papers/search", json={"query": "", "top_k": 2}).status_code == 422
    assert client.post("/v1/collections/nope/search", json={"query": "x"}).status_code == 404
    assert client.get("/no/such/path").status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/v1/collections/{collection}/search"
    assert sample(text, "glassbox_http_requests_total", method="POST", route=route, status="200") == 3
    assert sample(text, "glassbox_http_requests_total", method="POST", route=route, status="422") == 1
    assert sample(text, "glassbox_http_requests_total", method="POST", route=route, status="404") == 1
    assert sample(text, "glassbox_http_requests_total", method="GET", route="unmatched", status="404") == 1
    assert "/v1/collections/papers/search" not in text and "/no/such/path" not in text  # templates, never paths
    assert sample(text, "glassbox_http_request_duration_seconds_count", method="POST", route=route) == 5
    for stage in ("encode", "retrieve", "cosine", "total"):  # the default pipeline: hybrid, then the cosine filter
        assert sample(text, "glassbox_search_stage_duration_seconds_count", stage=stage) == 3, stage
    # uncalibrated (no adapter in a fresh home): the filter keeps all of its 3 candidates, 3 times
    assert sample(text, "glassbox_filter_candidates_total", calibrated="false") == 9
    assert sample(text, "glassbox_filter_kept_total", calibrated="false") == 9
    assert sample(text, "glassbox_encode_batch_size_count") == 3  # micro-batching is on by default
    assert (sample(text, "process_resident_memory_bytes") or 0) > 0
    # the cache collector reports exactly when the app has a cache (helper of the lifespan), quietly otherwise
    has_cache = getattr(client.app.state, "cache", None) is not None  # type: ignore[attr-defined]
    assert ("glassbox_cache_up" in text) == has_cache
    if has_cache:
        assert re.search(r'^glassbox_cache_up\{backend="[^"]+"\} 1\.0$', text, re.MULTILINE)
        assert sample(text, "glassbox_cache_misses_total", kind="embedding") is not None


@pytest.mark.slow
def test_metrics_route_is_in_openapi_as_text(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert "text/plain" in operation["responses"]["200"]["content"]


@pytest.mark.slow
def test_batching_can_be_turned_off(settings: Settings, encoder: SentenceTransformerEncoder) -> None:
    settings = settings.model_copy(update={"batching": settings.batching.model_copy(update={"enabled": False})})
    with TestClient(create_app(settings, encoder=encoder)) as client:
        make_collection(client)
        assert client.post("/v1/collections/papers/search", json={"query": "vaccines"}).status_code == 200
        text = client.get("/metrics").text
    assert sample(text, "glassbox_encode_batch_size_count") == 0
    assert sample(text, "glassbox_search_stage_duration_seconds_count", stage="encode") == 1
