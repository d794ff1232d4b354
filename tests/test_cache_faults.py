"""Faults around the cache with a real `glassbox serve` and a private `redis-server`: Redis killed and restarted
while searches flow; the server SIGKILLed mid-upsert with Redis configured (nothing acknowledged lost, no stale
cached response after the restart)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from indexes import Collection, Document
from tests.servers import RedisServer
from tests.test_crash_safety import Server, text_of, upsert_until_stopped

pytestmark = pytest.mark.slow
BATCH = 10
HEADER = "X-Glassbox-Cache"


@dataclass
class Stack:
    redis: RedisServer
    server: Server
    home: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One Redis and one server for the module (a server start costs seconds on a small machine)."""
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    home = tmp_path_factory.mktemp("faults") / "home"
    patch = pytest.MonkeyPatch()  # the server child inherits the environment
    patch.setenv("GLASSBOX_REDIS_URL", redis.url)
    patch.setenv("GLASSBOX_CACHE__RETRY_SECONDS", "0.5")
    patch.setenv("GLASSBOX_ENCODER__BACKEND", "torch")  # no ONNX export into a fresh home: faster start
    try:
        stack = Stack(redis, Server(home), home)
        yield stack
        stack.server.kill()
    finally:
        redis.kill()
        patch.undo()


def wait_for(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def test_redis_killed_and_restarted_while_searches_flow(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.server.url, timeout=30)
    assert client.post("/v1/collections", json={"name": "flow"}).status_code == 201
    docs = [{"id": f"d{i}", "title": f"T{i}", "text": text_of(i)} for i in range(20)]
    assert client.post("/v1/collections/flow/documents", json={"documents": docs}).status_code == 200
    bodies = [{"query": text_of(i), "top_k": 3} for i in range(4)]
    served: list[tuple[float, str]] = []  # (when, X-Glassbox-Cache) per successful search
    failed: list[str] = []
    stop = threading.Event()

    def searches() -> None:
        with httpx.Client(base_url=stack.server.url, timeout=30) as searcher:
            while not stop.is_set():
                for body in bodies:
                    try:
                        response = searcher.post("/v1/collections/flow/search", json=body)
                    except httpx.HTTPError as exc:
                        failed.append(repr(exc))
                        continue
                    if response.status_code != 200:
                        failed.append(f"{response.status_code}: {response.text[:200]}")
                    else:
                        served.append((time.monotonic(), response.headers[HEADER]))

    def hits_since(moment: float) -> int:
        return sum(1 for when, state in list(served) if when > moment and state == "hit")

    thread = threading.Thread(target=searches)
    thread.start()
    try:
        wait_for(lambda: hits_since(0.0) >= 4, 30, "cache hits before the outage")
        stack.redis.kill()
        killed = time.monotonic()
        wait_for(lambda: client.get("/readyz").json()["status"] == "degraded", 10, "/readyz saying degraded")
        assert client.get("/readyz").json()["cache"] == {"backend": "redis", "status": "down"}
        # a write during the outage succeeds; its invalidation is applied when Redis returns
        new = {"id": "outage", "title": "Outage", "text": "Written while the cache was down: zebra quartz."}
        assert client.post("/v1/collections/flow/documents", json={"documents": [new]}).status_code == 200
        wait_for(lambda: sum(1 for when, _ in list(served) if when > killed) >= 8, 30, "searches during the outage")
        stack.redis.start()  # empty, same port
        restarted = time.monotonic()
        wait_for(lambda: client.get("/readyz").json()["status"] == "ready", 10, "/readyz ready again")
        wait_for(lambda: hits_since(restarted) >= 4, 15, "cache hits after Redis returned")
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failed == [], failed[:5]
    during = {state for when, state in served if killed + 1.0 < when < restarted}
    assert during <= {"bypass"}, during  # Redis down: computed, not cached
    found = client.post("/v1/collections/flow/search", json={"query": "zebra quartz", "top_k": 1}).json()
    assert found["results"][0]["id"] == "outage"
    client.close()


def test_sigkill_mid_upsert_with_redis_loses_nothing_and_serves_nothing_stale(stack: Stack) -> None:
    """The foundation crash test (tests/test_crash_safety.py) on the cached path. Upserts stream; the server is
    SIGKILLed mid-stream right after a search was served from the cache, so Redis holds a response under the
    collection's latest generation. A document is then written while no server runs (as `glassbox ingest` would,
    or a batch committed but killed before its invalidation). After the restart the same search must see every
    acknowledged document and that one: the start-up invalidation, not a stale cached response."""
    acknowledged: list[int] = []
    in_flight: list[int] = []
    stop = threading.Event()
    everything = {"query": "protein", "top_k": 5000}

    def writes() -> None:
        with httpx.Client(base_url=stack.server.url, timeout=30) as writer:
            upsert_until_stopped(writer, "crash", BATCH, acknowledged, in_flight, stop)

    client = httpx.Client(base_url=stack.server.url, timeout=30)
    assert client.post("/v1/collections", json={"name": "crash"}).status_code == 201
    thread = threading.Thread(target=writes)
    thread.start()
    try:
        wait_for(lambda: len(acknowledged) >= 3 * BATCH, 120, "three acknowledged batches")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # until a hit with no acknowledgement while it was served
            count = len(acknowledged)
            cached = client.post("/v1/collections/crash/search", json=everything).headers[HEADER] == "hit"
            if cached and len(acknowledged) == count:
                break
        stack.server.kill()  # mid-stream: a batch is normally in flight right now
    finally:
        stop.set()
        thread.join(timeout=60)
        client.close()
    assert cached, "no search was served from the cache before the kill"
    unacknowledged = [i for i in in_flight if i not in set(acknowledged)]
    collection = Collection.open(stack.home / "collections" / "crash")
    try:
        vector = np.ones((1, collection.config.dimension), dtype=np.float32)
        offline = Document("offline", "Offline", "A protein written while no server ran.")
        collection.upsert([offline], vector / np.linalg.norm(vector))
    finally:
        collection.close()

    stack.server = Server(stack.home)  # same environment: the same Redis, which kept its entries
    with httpx.Client(base_url=stack.server.url, timeout=30) as client:
        for i in acknowledged:
            got = client.get(f"/v1/collections/crash/documents/d{i}")
            assert got.status_code == 200 and got.json()["text"] == text_of(i)
        present = [i for i in unacknowledged if client.get(f"/v1/collections/crash/documents/d{i}").status_code == 200]
        assert present in ([], unacknowledged), "a batch must be all-or-nothing"
        first = client.post("/v1/collections/crash/search", json=everything)
        assert first.headers[HEADER] == "miss"  # nothing cached before the restart is served after it
        expected = {f"d{i}" for i in [*acknowledged, *present]} | {"offline"}
        assert {r["id"] for r in first.json()["results"]} == expected
        again = client.post("/v1/collections/crash/search", json=everything)
        assert again.headers[HEADER] == "hit" and again.content == first.content
        last = acknowledged[-1]
        newest = client.post("/v1/collections/crash/search", json={"query": text_of(last), "top_k": 1}).json()
        assert newest["results"][0]["id"] == f"d{last}"
