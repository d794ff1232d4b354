"""The REST API through the app with the real MiniLM encoder."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.encoder import SentenceTransformerEncoder
from service.settings import SearchSettings, Settings

pytestmark = pytest.mark.slow

DOCS = [
    {
        "id": "statin",
        "title": "Statins",
        "text": "Atorvastatin lowers LDL cholesterol.",
        "metadata": {"year": 2020},
    },
    {
        "id": "aspirin",
        "title": "Aspirin",
        "text": "Aspirin reduces fever and pain.",
        "metadata": {"year": 2021},
    },
    {
        "id": "vaccine",
        "title": "Vaccines",
        "text": "mRNA vaccines induce antibodies.",
        "metadata": {"year": 2021},
    },
]


def make_collection(client: TestClient, name: str = "papers", documents: list[dict[str, Any]] = DOCS) -> None:
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    response = client.post(f"/v1/collections/{name}/documents", json={"documents": documents})
    assert response.status_code == 200, response.text


def assert_error(response: Any, status: int, code: str, *named: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    for text in named:
        assert text in body["error"]["message"], body["error"]["message"]
    return dict(body["error"])


def count(client: TestClient, name: str = "papers") -> int:
    return int(client.get(f"/v1/collections/{name}").json()["documents"])


def test_search_returns_ranked_results_with_breakdown_and_timings(client: TestClient) -> None:
    make_collection(client)
    response = client.post("/v1/collections/papers/search", json={"query": "what lowers cholesterol?", "top_k": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["variant"] == "hybrid+cosine"  # the defaults: hybrid first stage, then the uncalibrated filter
    assert body["results"][0]["id"] == "statin" and len(body["results"]) == 2
    first = body["results"][0]
    assert first["title"] == "Statins" and first["metadata"] == {"year": 2020}
    assert first["relevance"] is None and first["kept"] is True
    breakdown = first["breakdown"]
    assert set(breakdown) == {"dense", "lexical", "fused", "cosine"}
    assert breakdown["dense"]["rank"] == 1 and breakdown["lexical"]["rank"] == 1  # only it says "cholesterol"
    assert breakdown["lexical"]["score"] > 0 and breakdown["fused"]["score"] == pytest.approx(first["score"])
    assert breakdown["fused"]["method"] == "convex" and breakdown["fused"]["dense_weight"] == 0.5
    assert breakdown["cosine"] == {
        "score": pytest.approx(first["score"]),
        "raw_cosine": pytest.approx(breakdown["dense"]["score"]),
        "mapped_score": pytest.approx(first["score"]),
    }
    assert body["results"][0]["score"] >= body["results"][1]["score"]
    assert {"encode", "retrieve", "cosine", "total"} <= set(body["timings_ms"])
    assert body["query"]["candidates"] == 3 and body["query"]["first_stage"] == "hybrid"
    assert body["query"]["cosine"]["calibrated"] is False  # uncalibrated mode is flagged in every response
    assert "no adapter in" in body["query"]["cosine"]["reason"]
    assert first["explanation"] == {}  # an uncalibrated filter has nothing to say about a result
    quiet = client.post("/v1/collections/papers/search", json={"query": "cholesterol", "explain": False}).json()
    assert quiet["results"][0]["explanation"] is None and "cosine" in quiet["results"][0]["breakdown"]


@contextmanager
def stageless_papers(
    first_stage: str, tmp_path: Any, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """An app serving the `papers` collection with no post-retrieval stage behind the given first stage."""
    monkeypatch.setenv("GLASSBOX_PIPELINE__STAGES", "[]")
    monkeypatch.setenv("GLASSBOX_FIRST_STAGE__MODE", first_stage)
    with TestClient(create_app(Settings(home=tmp_path / "home"), encoder=encoder)) as client:
        make_collection(client)
        yield client


def test_dense_baseline_when_no_stages_are_configured(
    tmp_path: Any, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stageless_papers("dense", tmp_path, encoder, monkeypatch) as client:
        body = client.post("/v1/collections/papers/search", json={"query": "fever"}).json()
        assert body["variant"] == "dense" and set(body["results"][0]["breakdown"]) == {"dense"}


def test_bm25_first_stage_finds_only_documents_sharing_a_term(
    tmp_path: Any, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    with stageless_papers("bm25", tmp_path, encoder, monkeypatch) as client:
        body = client.post("/v1/collections/papers/search", json={"query": "the fever"}).json()
        assert body["variant"] == "bm25" and [r["id"] for r in body["results"]] == ["aspirin"]
        assert body["results"][0]["breakdown"] == {"lexical": {"score": body["results"][0]["score"], "rank": 1}}
        client.delete("/v1/collections/papers/documents/aspirin")
        after = client.post("/v1/collections/papers/search", json={"query": "fever"}).json()
        assert after["results"] == []  # a deleted document leaves the BM25 index with the store


def test_metadata_filter_and_batch_search(client: TestClient) -> None:
    make_collection(client)
    filtered = client.post(
        "/v1/collections/papers/search", json={"query": "cholesterol", "filter": {"year": 2021}}
    ).json()
    assert {r["id"] for r in filtered["results"]} == {"aspirin", "vaccine"}
    batch = client.post(
        "/v1/collections/papers/search/batch",
        json={"queries": [{"query": "fever", "top_k": 1}, {"query": "antibodies", "top_k": 1}]},
    ).json()
    assert [r["results"][0]["id"] for r in batch["responses"]] == ["aspirin", "vaccine"]


def test_documents_upsert_replace_get_delete(client: TestClient) -> None:
    make_collection(client)
    got = client.get("/v1/collections/papers/documents/aspirin").json()
    assert got == {**DOCS[1]}
    replaced = {"id": "aspirin", "title": "Trains", "text": "The train to Paris leaves at noon."}
    assert client.post("/v1/collections/papers/documents", json={"documents": [replaced]}).status_code == 200
    assert count(client) == 3
    top = client.post("/v1/collections/papers/search", json={"query": "railway to Paris", "top_k": 1}).json()
    assert top["results"][0]["id"] == "aspirin" and top["results"][0]["title"] == "Trains"
    assert client.delete("/v1/collections/papers/documents/aspirin").json()["deleted"] == ["aspirin"]
    assert_error(client.get("/v1/collections/papers/documents/aspirin"), 404, "document_not_found", "aspirin")
    assert_error(client.delete("/v1/collections/papers/documents/aspirin"), 404, "document_not_found")
    many = client.post("/v1/collections/papers/documents/delete", json={"ids": ["statin", "ghost"]}).json()
    assert many["deleted"] == ["statin"] and many["missing"] == ["ghost"]
    assert count(client) == 1


def test_collections_lifecycle(client: TestClient) -> None:
    make_collection(client, "a")
    created = client.post("/v1/collections", json={"name": "b", "index": "HNSW32"}).json()
    assert created["index"] == "HNSW32" and created["dimension"] == 384 and created["documents"] == 0
    listing = client.get("/v1/collections").json()["collections"]
    assert [(c["name"], c["documents"]) for c in listing] == [("a", 3), ("b", 0)]
    assert_error(client.post("/v1/collections", json={"name": "a"}), 409, "collection_exists", "'a'")
    assert client.delete("/v1/collections/a").json() == {"deleted": "a"}
    assert_error(client.get("/v1/collections/a"), 404, "collection_not_found", "'a'")
    assert [c["name"] for c in client.get("/v1/collections").json()["collections"]] == ["b"]


def test_documents_persist_across_restarts(settings: Settings, encoder: SentenceTransformerEncoder) -> None:
    with TestClient(create_app(settings, encoder=encoder)) as first:
        make_collection(first)
    with TestClient(create_app(settings, encoder=encoder)) as second:
        assert count(second) == 3
        top = second.post("/v1/collections/papers/search", json={"query": "antibodies", "top_k": 1}).json()
        assert top["results"][0]["id"] == "vaccine"


@pytest.mark.parametrize(
    ("payload", "status", "code", "named"),
    [
        ({"query": ""}, 422, "invalid_request", "query"),
        ({"query": "   "}, 422, "invalid_request", "query"),
        ({"query": "x" * 51}, 422, "invalid_request", "longer than 50"),
        ({"query": "x", "top_k": 0}, 422, "validation_error", "top_k"),
        ({"query": "x", "top_k": -3}, 422, "validation_error", "-3"),
        ({"query": "x", "top_k": 21}, 422, "invalid_request", "21"),
        ({"query": "x", "top_k": "ten"}, 422, "validation_error", "'ten'"),
        ({"query": 42}, 422, "validation_error", "query"),
        ({"query": "x", "topk": 3}, 422, "validation_error", "topk"),
        ({"top_k": 3}, 422, "validation_error", "query"),
        ({"query": "x", "filter": ["year"]}, 422, "validation_error", "filter"),
    ],
)
def test_bad_search_requests_are_named_4xx(
    payload: dict[str, Any],
    status: int,
    code: str,
    named: str,
    tmp_path: Any,
    encoder: SentenceTransformerEncoder,
) -> None:
    settings = Settings(home=tmp_path / "home", search=SearchSettings(max_query_chars=50, max_top_k=20))
    with TestClient(create_app(settings, encoder=encoder)) as client:
        make_collection(client)
        assert_error(client.post("/v1/collections/papers/search", json=payload), status, code, named)


def test_malformed_json_and_unknown_collection(client: TestClient) -> None:
    make_collection(client)
    headers = {"content-type": "application/json"}
    assert_error(client.post("/v1/collections/papers/search", content=b"{bad", headers=headers), 400, "malformed_json")
    assert_error(client.post("/v1/collections/papers/search", content=b"{bad"), 400, "malformed_json")
    assert_error(client.post("/v1/collections/nope/search", json={"query": "x"}), 404, "collection_not_found", "nope")
    assert_error(client.post("/v1/collections/nope/documents", json={"documents": DOCS}), 404, "collection_not_found")
    assert_error(client.get("/v1/no-such-route"), 404, "not_found")


def test_bad_upserts_write_nothing(client: TestClient) -> None:
    make_collection(client)
    dup = [DOCS[0], {"id": "new"}, {"id": "statin", "text": "again"}]
    error = assert_error(
        client.post("/v1/collections/papers/documents", json={"documents": dup}),
        422,
        "invalid_request",
        "'statin'",
    )
    assert error["details"]["field"] == "documents.2.id"
    wrong_type = [{"id": "ok"}, {"id": 7, "text": "x"}]
    assert_error(
        client.post("/v1/collections/papers/documents", json={"documents": wrong_type}),
        422,
        "validation_error",
        "documents.1.id",
    )
    assert_error(client.post("/v1/collections/papers/documents", json={"documents": []}), 422, "validation_error")
    assert_error(
        client.post("/v1/collections/papers/documents", json={"documents": [{"id": "m", "metadata": "x"}]}),
        422,
        "validation_error",
        "metadata",
    )
    assert count(client) == 3
    assert_error(client.get("/v1/collections/papers/documents/new"), 404, "document_not_found")


def test_bad_collection_requests(client: TestClient) -> None:
    assert_error(client.post("/v1/collections", json={"name": "../etc"}), 422, "invalid_request", "'../etc'")
    assert_error(client.post("/v1/collections", json={"name": "Caps"}), 422, "invalid_request", "'Caps'")
    assert_error(
        client.post("/v1/collections", json={"name": "x", "index": "Bogus99"}),
        422,
        "invalid_index_config",
        "Bogus99",
    )
    assert client.get("/v1/collections").json() == {"collections": []}


def test_liveness_is_answered_while_every_worker_thread_is_busy(client: TestClient) -> None:
    release = threading.Event()
    tokens: list[float] = []

    async def occupy_the_only_worker_thread() -> None:
        limiter = anyio.to_thread.current_default_thread_limiter()
        tokens.append(limiter.total_tokens)
        limiter.total_tokens = 1
        try:
            await anyio.to_thread.run_sync(release.wait)
        finally:
            limiter.total_tokens = tokens[0]

    assert client.portal is not None
    busy = client.portal.start_task_soon(occupy_the_only_worker_thread)
    timer = threading.Timer(5.0, release.set)  # should /healthz wait for a thread, this frees it (and fails below)
    timer.start()
    try:
        start = time.perf_counter()
        assert client.get("/healthz").json() == {"status": "ok"}
        assert time.perf_counter() - start < 2.0 and not release.is_set()
    finally:
        release.set()
        timer.cancel()
        busy.result(timeout=5)


def test_health_readiness_and_openapi(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["encoder"] == "sentence-transformers/all-MiniLM-L6-v2"
    schema = client.get("/openapi.json").json()
    assert "/v1/collections/{collection}/search" in schema["paths"]
    assert "ErrorResponse" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 200
