"""The response and query-embedding cache: in-process LRU, Redis (a private server), keys, invalidation, the API."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import signal
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fastapi.concurrency import run_in_threadpool
from fastapi.testclient import TestClient

from adapters import CosineAdapter
from indexes import FloatArray
from service.api import create_app
from service.cache import MemoryCache, QueryEmbeddingCache, RedisCache, build_cache
from service.encoder import EncoderIdentity, SentenceTransformerEncoder
from service.filter_stage import CosineFilterStage
from service.pipeline import Pipeline
from service.registry import CollectionRegistry
from service.response_cache import CACHE_HEADER, ResponseCache
from service.settings import CacheSettings, FilterSettings, IndexSettings, SearchSettings, Settings
from tests.servers import RedisServer

DOCS = [
    {"id": "statin", "title": "Statins", "text": "Atorvastatin lowers LDL cholesterol.", "metadata": {"year": 2020}},
    {"id": "aspirin", "title": "Aspirin", "text": "Aspirin reduces fever and pain.", "metadata": {"year": 2021}},
    {"id": "vaccine", "title": "Vaccines", "text": "mRNA vaccines induce antibodies.", "metadata": {"year": 2021}},
]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class CountingEncoder:
    """Deterministic stub: a text's vector is seeded by its hash; counts the texts it encodes."""

    def __init__(self, revision: str = "r1") -> None:
        self.identity = EncoderIdentity("stub", revision, 8, "torch")
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        self.encoded += texts
        rows = [np.random.default_rng(int(hashlib.sha256(t.encode()).hexdigest()[:8], 16)).random(8) for t in texts]
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(texts), 8)
        return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.kill()


# ------------------------------------------------------------------ in-process LRU


def test_memory_cache_evicts_least_recently_used_and_expires_by_ttl() -> None:
    clock = Clock()
    cache = MemoryCache(max_entries=3, ttl_seconds=10, clock=clock)
    cache.set_many({"a": b"1", "b": b"2", "c": b"3"})
    assert cache.get("response", "a") == b"1"  # "a" is now the most recently used
    cache.set("d", b"4")
    assert cache.get_many("response", ["a", "b", "c", "d"]) == [b"1", None, b"3", b"4"]
    assert len(cache) == 3
    clock.now = 9.9
    assert cache.get("embedding", "c") == b"3"
    clock.now = 10.0
    assert cache.get_many("embedding", ["a", "c", "d"]) == [None, None, None]
    assert len(cache) == 0
    cache.set("e", b"5")  # stored at t=10: lives until t=20
    clock.now = 19.0
    assert cache.get("embedding", "e") == b"5"
    assert cache.stats() == {
        "response": {"hits": 4, "misses": 1},
        "embedding": {"hits": 2, "misses": 3},
        "errors": 0,
    }


def test_memory_cache_generations_change_on_invalidate() -> None:
    cache = MemoryCache(max_entries=10, ttl_seconds=60)
    first = cache.generation("papers")
    assert cache.generation("papers") == first
    cache.invalidate("papers")
    assert cache.generation("papers") != first
    assert cache.generation("other") == first  # per collection
    assert cache.backend == "memory" and cache.status() == "ok"


def test_build_cache_picks_the_backend(tmp_path: Path, redis_server: RedisServer) -> None:
    assert build_cache(Settings(home=tmp_path)).backend == "memory"
    assert build_cache(Settings(home=tmp_path, cache=CacheSettings(enabled=False))).backend == "none"
    redis_cache = build_cache(Settings(home=tmp_path, redis_url=redis_server.url))
    try:
        assert redis_cache.backend == "redis" and redis_cache.status() == "ok"
    finally:
        redis_cache.close()


def test_redis_url_is_checked_and_empty_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_REDIS_URL", "")
    assert Settings().redis_url is None
    with pytest.raises(ValueError, match="must start with redis://"):
        Settings(redis_url="http://user:secret@cache:6379")


# ------------------------------------------------------------------ Redis


def test_redis_cache_stores_with_ttl_and_counts(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, ttl_seconds=30, prefix="unit")
    try:
        cache.set_many({"unit:a": b"1", "unit:b": b"\x00\xff"})
        assert cache.get_many("embedding", ["unit:a", "unit:b", "unit:c"]) == [b"1", b"\x00\xff", None]
        assert cache.get("response", "unit:a") == b"1"
        assert 0 < redis_server.client().ttl("unit:a") <= 30
        generation = cache.generation("papers")
        assert generation is not None and cache.generation("papers") == generation
        cache.invalidate("papers")
        assert cache.generation("papers") not in (None, generation)
        assert cache.stats() == {
            "response": {"hits": 1, "misses": 0},
            "embedding": {"hits": 2, "misses": 1},
            "errors": 0,
        }
    finally:
        cache.close()


@pytest.mark.slow
def test_redis_outage_bypasses_then_recovers_and_applies_missed_invalidations(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path / "redis")
    cache = RedisCache(server.url, ttl_seconds=60, retry_seconds=0.2, timeout_ms=200)
    try:
        cache.set("k", b"v")
        before = cache.generation("papers")
        server.kill()
        with caplog.at_level(logging.WARNING, logger="service.cache"):
            start = time.perf_counter()
            assert cache.get("response", "k") is None  # bypassed: a miss, not an error
            cache.set("k2", b"v2")  # a no-op
            assert cache.generation("papers") is None  # responses are neither served nor stored
            cache.invalidate("papers")  # the write still succeeds; the invalidation waits for Redis
            assert cache.status() == "down"
            assert time.perf_counter() - start < 1.0  # a dead Redis never stalls a search
            server.start()  # empty, same port
            deadline = time.monotonic() + 5
            while cache.status() != "ok" and time.monotonic() < deadline:
                time.sleep(0.05)
            assert cache.status() == "ok"
        warnings = [r.getMessage() for r in caplog.records if r.name == "service.cache"]
        assert len(warnings) == 2, warnings  # one for the outage (not one per call), one for the recovery
        assert "unreachable" in warnings[0] and "reachable again" in warnings[1]
        assert cache.stats()["errors"] >= 1
        assert server.client().exists("glassbox:gen:papers")  # the missed invalidation was applied on recovery
        after = cache.generation("papers")
        assert after is not None and after != before
        cache.set("k3", b"v3")
        assert cache.get("response", "k3") == b"v3"
    finally:
        cache.close()
        server.kill()


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_responses_are_served_only_under_the_generation_they_were_computed_in(
    backend: str, redis_server: RedisServer
) -> None:
    cache: MemoryCache | RedisCache = (
        MemoryCache(10, 60) if backend == "memory" else RedisCache(redis_server.url, ttl_seconds=60, prefix="tags")
    )
    try:
        generation, found = cache.get_responses("papers", ["tags:r1", "tags:r2"])
        assert generation is not None and found == [None, None]
        cache.set_responses(generation, {"tags:r1": b'{"results": []}'})
        assert cache.get_responses("papers", ["tags:r1", "tags:r2"]) == (generation, [b'{"results": []}', None])
        cache.invalidate("papers")  # a write: what was computed before it is never served again
        newer, found = cache.get_responses("papers", ["tags:r1"])
        assert newer not in (None, generation) and found == [None]
        cache.set_responses(generation, {"tags:r1": b"late"})  # a search that raced the write stores late
        assert cache.get_responses("papers", ["tags:r1"]) == (newer, [None])
        assert cache.stats()["response"] == {"hits": 1, "misses": 5}
    finally:
        cache.close()


# ------------------------------------------------------------------ query embeddings


def test_query_embedding_cache_encodes_each_text_once_per_encoder_revision() -> None:
    cache = MemoryCache(max_entries=100, ttl_seconds=60)
    inner = CountingEncoder()
    cached = QueryEmbeddingCache(inner, cache)
    first = cached.encode(["aspirin", "statins"])
    second = cached.encode(["statins", "aspirin", "vaccines"])
    assert inner.encoded == ["aspirin", "statins", "vaccines"]
    np.testing.assert_array_equal(second[:2], first[::-1])
    np.testing.assert_array_equal(second, inner.encode(["statins", "aspirin", "vaccines"]))
    assert second.dtype == np.float32 and cached.encode([]).shape == (0, 8)
    other = CountingEncoder(revision="r2")  # a retrained model never reads the old model's vectors
    QueryEmbeddingCache(other, cache).encode(["aspirin"])
    assert other.encoded == ["aspirin"]
    assert cache.stats()["embedding"] == {"hits": 2, "misses": 4}


# ------------------------------------------------------------------ keys


@pytest.mark.slow
def test_response_keys_carry_settings_pipeline_request_and_collection_identity(
    tmp_path: Path, encoder: SentenceTransformerEncoder
) -> None:
    settings = Settings(home=tmp_path)
    registry = CollectionRegistry(tmp_path / "collections", encoder.identity, IndexSettings(factory="Flat"))
    try:
        collection = registry.create("papers")
        responses = ResponseCache(MemoryCache(10, 60), settings)
        body = {"query": "aspirin", "top_k": 10, "filter": {}, "explain": True}
        key = responses.key(collection, "pipeline", body)
        assert key.startswith("glassbox:resp:v1:papers:")
        assert responses.key(collection, "pipeline", dict(reversed(body.items()))) == key
        assert responses.key(collection, "other-pipeline", body) != key
        assert responses.key(collection, "pipeline", {**body, "top_k": 5}) != key
        unfiltered = ResponseCache(MemoryCache(10, 60), Settings(home=tmp_path, filter=FilterSettings(enabled=False)))
        assert unfiltered.key(collection, "pipeline", body) != key
        registry.delete("papers")
        recreated = registry.create("papers")
        assert responses.key(recreated, "pipeline", body) != key

        torch.manual_seed(0)
        first = CosineFilterStage(CosineAdapter(encoder.identity.dimension))
        torch.manual_seed(1)
        retrained = CosineFilterStage(CosineAdapter(encoder.identity.dimension))
        assert first.version != retrained.version
        assert first.version != CosineFilterStage(first.adapter, min_results=3).version
        assert first.version == CosineFilterStage(first.adapter).version
        fingerprints = {
            Pipeline(encoder, registry, SearchSettings(), stages).fingerprint
            for stages in ([], [first], [retrained], [CosineFilterStage(None)])
        }
        assert len(fingerprints) == 4
        assert (
            Pipeline(encoder, registry, SearchSettings(candidates=50)).fingerprint
            != Pipeline(encoder, registry, SearchSettings()).fingerprint
        )
    finally:
        registry.close_all()


# ------------------------------------------------------------------ through the API


def make_collection(client: TestClient, name: str = "papers") -> None:
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    assert client.post(f"/v1/collections/{name}/documents", json={"documents": DOCS}).status_code == 200


def search(client: TestClient, body: dict[str, Any], name: str = "papers") -> tuple[str, Any]:
    response = client.post(f"/v1/collections/{name}/search", json=body)
    assert response.status_code == 200, response.text
    return response.headers[CACHE_HEADER], response


def ids(response: Any) -> list[str]:
    return [result["id"] for result in response.json()["results"]]


def test_async_lookup_answers_as_the_sync_one(redis_server: RedisServer) -> None:
    cache = RedisCache(redis_server.url, ttl_seconds=60, prefix="async")
    generation, _ = cache.get_responses("papers", ["async:r1"])
    assert generation is not None
    cache.set_responses(generation, {"async:r1": b'{"results": []}'})

    async def on_one_loop() -> tuple[Any, ...]:
        try:
            first = await cache.aget_responses("papers", ["async:r1", "async:r2"])
            cache.invalidate("papers")
            after_write = await cache.aget_responses("papers", ["async:r1"])
            # another loop (in another thread) while this one's client is open: the sync path answers it
            elsewhere = await asyncio.to_thread(asyncio.run, cache.aget_responses("papers", ["async:r1"]))
            return first, after_write, elsewhere
        finally:
            await cache.aclose()

    first, after_write, elsewhere = asyncio.run(on_one_loop())
    assert first == (generation, [b'{"results": []}', None])
    assert after_write[0] not in (None, generation) and after_write[1] == [None]
    assert elsewhere == after_write
    assert cache.stats()["response"] == {"hits": 1, "misses": 4}
    cache.close()


@pytest.mark.slow
def test_async_lookup_bypasses_a_dead_redis_and_serves_nothing_stale_after_it(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    cache = RedisCache(server.url, ttl_seconds=60, retry_seconds=0.2, timeout_ms=200)

    async def scenario() -> None:
        try:
            await outage()
        finally:
            await cache.aclose()

    async def outage() -> None:
        generation, _ = await cache.aget_responses("papers", ["k"])
        assert generation is not None
        cache.set_responses(generation, {"k": b"old"})
        assert await cache.aget_responses("papers", ["k"]) == (generation, [b"old"])
        server.kill()
        start = time.perf_counter()
        assert await cache.aget_responses("papers", ["k"]) == (None, [None])  # bypassed, not an error
        assert cache.status() == "down" and time.perf_counter() - start < 1.0
        cache.invalidate("papers")  # a write while Redis is down: remembered
        server.start()  # empty, same port: "k" is gone, but the point is the generation
        cache.set_responses(generation, {"k": b"old"})  # bypassed while down: stores nothing
        deadline = time.monotonic() + 5
        while cache.status() != "ok" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        newer, found = await cache.aget_responses("papers", ["k"])
        assert newer not in (None, generation) and found == [None]

    try:
        asyncio.run(scenario())
    finally:
        cache.close()
        server.kill()


@pytest.fixture(params=["memory", "redis"])
def cached_client(
    request: pytest.FixtureRequest, tmp_path: Path, encoder: SentenceTransformerEncoder, redis_server: RedisServer
) -> Iterator[TestClient]:
    redis_url = redis_server.url if request.param == "redis" else None
    settings = Settings(home=tmp_path / "home", redis_url=redis_url, cache=CacheSettings(key_prefix=tmp_path.name))
    with TestClient(create_app(settings, encoder=encoder)) as client:
        assert client.app.state.cache.backend == request.param  # type: ignore[attr-defined]
        yield client


@pytest.mark.slow
def test_second_identical_search_is_a_hit_with_the_same_body(cached_client: TestClient) -> None:
    make_collection(cached_client)
    state, first = search(cached_client, {"query": "fever medicine"})
    assert state == "miss" and ids(first)[0] == "aspirin"
    state, second = search(cached_client, {"query": "fever medicine", "top_k": 10, "filter": {}, "explain": True})
    assert state == "hit"
    assert second.content == first.content and second.headers["content-type"] == "application/json"
    state, _ = search(cached_client, {"query": "fever medicine", "top_k": 2})
    assert state == "miss"  # another request body, another key
    stats = cached_client.app.state.cache.stats()  # type: ignore[attr-defined]
    assert stats["response"] == {"hits": 1, "misses": 2}
    assert stats["embedding"]["hits"] >= 1  # the top_k=2 search reused the query's embedding
    ready = cached_client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["cache"]["status"] == "ok"


@pytest.mark.slow
def test_a_hit_is_answered_without_a_worker_thread(cached_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    import service.api.routes.search as search_route

    make_collection(cached_client)
    calls: list[str] = []
    original = run_in_threadpool

    async def counting(func: Any, *args: Any) -> Any:
        calls.append(getattr(func, "__name__", "?"))
        return await original(func, *args)

    monkeypatch.setattr(search_route, "run_in_threadpool", counting)
    assert search(cached_client, {"query": "fever medicine"})[0] == "miss"
    assert calls == ["compute"]
    assert search(cached_client, {"query": "fever medicine"})[0] == "hit"
    assert calls == ["compute"]  # the hit was answered on the event loop

    def batch(*texts: str) -> str:
        response = cached_client.post(
            "/v1/collections/papers/search/batch", json={"queries": [{"query": t} for t in texts]}
        )
        assert response.status_code == 200, response.text
        return response.headers[CACHE_HEADER]

    assert batch("fever medicine") == "hit" and calls == ["compute"]  # a batch of hits too
    assert batch("fever medicine", "cholesterol") == "miss" and calls == ["compute", "compute"]
    assert batch("cholesterol", "fever medicine") == "hit" and calls == ["compute", "compute"]


@pytest.mark.slow
def test_writes_invalidate_the_collections_responses(cached_client: TestClient) -> None:
    make_collection(cached_client)
    make_collection(cached_client, "other")
    body = {"query": "fever medicine", "top_k": 10}
    search(cached_client, body)
    search(cached_client, body, "other")
    new = {"id": "ibuprofen", "title": "Ibuprofen", "text": "Ibuprofen is a fever medicine."}
    assert cached_client.post("/v1/collections/papers/documents", json={"documents": [new]}).status_code == 200
    state, response = search(cached_client, body)
    assert state == "miss" and ids(response)[0] == "ibuprofen"
    assert search(cached_client, body, "other")[0] == "hit"  # only the written collection is invalidated
    assert search(cached_client, body)[0] == "hit"

    assert cached_client.delete("/v1/collections/papers/documents/ibuprofen").status_code == 200
    state, response = search(cached_client, body)
    assert state == "miss" and "ibuprofen" not in ids(response)
    deleted = cached_client.post("/v1/collections/papers/documents/delete", json={"ids": ["aspirin"]})
    assert deleted.status_code == 200
    state, response = search(cached_client, body)
    assert state == "miss" and "aspirin" not in ids(response)

    assert cached_client.delete("/v1/collections/papers").status_code == 200
    assert cached_client.post("/v1/collections/papers/search", json=body).status_code == 404
    assert cached_client.post("/v1/collections", json={"name": "papers"}).status_code == 201
    state, response = search(cached_client, body)
    assert state == "miss" and ids(response) == []


@pytest.mark.slow
def test_batch_search_caches_each_query(cached_client: TestClient) -> None:
    make_collection(cached_client)
    search(cached_client, {"query": "cholesterol"})
    queries = [{"query": "cholesterol"}, {"query": "antibodies", "top_k": 2}]
    first = cached_client.post("/v1/collections/papers/search/batch", json={"queries": queries})
    assert first.status_code == 200 and first.headers[CACHE_HEADER] == "miss"
    assert [r["results"][0]["id"] for r in first.json()["responses"]] == ["statin", "vaccine"]
    second = cached_client.post("/v1/collections/papers/search/batch", json={"queries": queries})
    assert second.headers[CACHE_HEADER] == "hit" and second.json() == first.json()
    assert second.json()["responses"][0] == search(cached_client, {"query": "cholesterol"})[1].json()


@pytest.mark.slow
def test_cache_off_bypasses(tmp_path: Path, encoder: SentenceTransformerEncoder) -> None:
    settings = Settings(home=tmp_path / "home", cache=CacheSettings(enabled=False))
    with TestClient(create_app(settings, encoder=encoder)) as client:
        make_collection(client)
        assert [search(client, {"query": "fever"})[0] for _ in range(2)] == ["bypass", "bypass"]
        assert client.get("/readyz").json()["cache"] == {"backend": "none", "status": "ok"}


@pytest.mark.slow
def test_authentication_runs_before_the_cache(tmp_path: Path, encoder: SentenceTransformerEncoder) -> None:
    def key(name: str, read: list[str]) -> dict[str, Any]:
        digest = hashlib.sha256(f"key-{name}".encode()).hexdigest()
        return {"name": name, "sha256": digest, "read": read, "write": read}

    settings = Settings.model_validate(
        {"home": tmp_path / "home", "api_keys": [key("owner", ["papers"]), key("stranger", ["other"])]}
    )
    with TestClient(create_app(settings, encoder=encoder)) as client:
        client.headers["X-API-Key"] = "key-owner"
        make_collection(client)
        search(client, {"query": "fever"})
        assert search(client, {"query": "fever"})[0] == "hit"
        anonymous = client.post("/v1/collections/papers/search", json={"query": "fever"}, headers={"X-API-Key": ""})
        assert anonymous.status_code == 401 and CACHE_HEADER not in anonymous.headers
        stranger = client.post(
            "/v1/collections/papers/search", json={"query": "fever"}, headers={"X-API-Key": "key-stranger"}
        )
        assert stranger.status_code == 403 and CACHE_HEADER not in stranger.headers


@pytest.mark.slow
def test_invalidation_missed_while_redis_hangs_is_applied_before_serving_again(tmp_path: Path) -> None:
    """A Redis that stops answering (SIGSTOP) keeps its data: an entry cached before the outage must not be served
    after it when the collection was written to meanwhile."""
    server = RedisServer(tmp_path / "redis")
    cache = RedisCache(server.url, ttl_seconds=60, retry_seconds=0.2, timeout_ms=100)
    assert server.process is not None
    try:
        before = cache.generation("papers")
        assert before is not None
        server.process.send_signal(signal.SIGSTOP)
        try:
            start = time.perf_counter()
            cache.invalidate("papers")  # times out: the write goes on, the invalidation is remembered
            assert cache.generation("papers") is None
            assert time.perf_counter() - start < 1.0
        finally:
            server.process.send_signal(signal.SIGCONT)
        deadline = time.monotonic() + 5
        while cache.status() != "ok" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cache.generation("papers") not in (None, before)
    finally:
        cache.close()
        server.kill()
