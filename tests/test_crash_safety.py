"""SIGKILL the real server in the middle of a stream of batch upserts; nothing acknowledged may be lost."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from indexes import Collection

pytestmark = pytest.mark.slow
BATCH = 25
WORDS = [
    "protein",
    "gene",
    "cell",
    "virus",
    "vaccine",
    "tumour",
    "insulin",
    "neuron",
    "enzyme",
    "antibody",
    "receptor",
    "lipid",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def text_of(i: int) -> str:
    """A distinct sentence per document, so a search for it finds it first."""
    a, b, c = WORDS[i % 12], WORDS[(i // 12) % 12], WORDS[(i // 144) % 12]
    return f"Document {i}: the {a} binds the {b} near the {c}, sample code {i * 7919 % 100003}."


def upsert_until_stopped(
    client: httpx.Client,
    collection: str,
    batch: int,
    acknowledged: list[int],
    in_flight: list[int],
    stop: threading.Event,
) -> None:
    """Upsert documents d0, d1, ... in batches until `stop` or the server goes away; ids whose upsert was answered
    200 go to `acknowledged`, the batch being sent is in `in_flight`."""
    start = 0
    while not stop.is_set():
        ids = list(range(start, start + batch))
        in_flight[:] = ids
        docs = [{"id": f"d{i}", "title": f"T{i}", "text": text_of(i)} for i in ids]
        try:
            response = client.post(f"/v1/collections/{collection}/documents", json={"documents": docs})
        except httpx.TransportError:
            return
        if response.status_code != 200:
            return
        acknowledged.extend(ids)
        start += batch


class Server:
    """`glassbox serve` as a child process on a free port."""

    def __init__(self, home: Path) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        env = {
            **os.environ,
            "GLASSBOX_HOME": str(home),
            "HF_HUB_OFFLINE": "1",
            "GLASSBOX_LOG_LEVEL": "WARNING",
            "GLASSBOX_SEARCH__MAX_TOP_K": "5000",  # lets one search return the whole collection
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "service", "serve", "--port", self.url.rsplit(":", 1)[1]],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.kill()
        raise RuntimeError("server did not become ready in 120 s")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_sigkill_during_upserts_loses_nothing_acknowledged(home: Path) -> None:
    server = Server(home)
    acknowledged: list[int] = []
    in_flight: list[int] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            assert client.post("/v1/collections", json={"name": "crash"}).status_code == 201
            upsert_until_stopped(client, "crash", BATCH, acknowledged, in_flight, stop)

    writer = threading.Thread(target=stream)
    try:
        writer.start()
        deadline = time.monotonic() + 120
        while len(acknowledged) < 8 * BATCH and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill()  # mid-stream: a batch is normally in flight right now
        stop.set()
        writer.join(timeout=60)
    finally:
        server.kill()
    assert len(acknowledged) >= 8 * BATCH
    unacknowledged = [i for i in in_flight if i not in set(acknowledged)]

    restarted = Server(home)
    try:
        with httpx.Client(base_url=restarted.url, timeout=30) as client:
            total = client.get("/v1/collections/crash").json()["documents"]
            for i in acknowledged:
                got = client.get(f"/v1/collections/crash/documents/d{i}")
                assert got.status_code == 200 and got.json()["text"] == text_of(i)
            present = [
                i for i in unacknowledged if client.get(f"/v1/collections/crash/documents/d{i}").status_code == 200
            ]
            everything = client.post("/v1/collections/crash/search", json={"query": "protein", "top_k": 5000})
            searchable = {r["id"] for r in everything.json()["results"]}
        assert present in ([], unacknowledged), "a batch must be all-or-nothing"
        assert total == len(acknowledged) + len(present)
        assert searchable == {f"d{i}" for i in [*acknowledged, *present]}
        reader = Collection.open(home / "collections" / "crash", read_only=True)
        try:
            assert reader.verify() == (set(), set())
            assert len(reader) == total
        finally:
            reader.close()
    finally:
        restarted.kill()
