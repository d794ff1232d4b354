"""Search latency over HTTP with the response cache: off (baseline), first request (miss), repeated request (hit),
with Redis and with the in-process cache, in one run.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cache.py [--source-home /work/benchhome] [--queries 200]
          [--repeats 3] [--redis-url URL]

1. Copies `--source-home` (default $GLASSBOX_HOME, else /work/benchhome; it must hold the collection
   `--collection`, default `scifact`) into a temporary directory, so the servers below never write into it.
2. Starts a private `redis-server` on a free port (`--save "" --appendonly no`), unless `--redis-url` names one
   (keys then get a fresh prefix, so nothing of an earlier run is hit).
3. For each of three configurations it starts the real server (`glassbox serve`, a subprocess, on the copy) and,
   sequentially from one keep-alive connection (`KeepAliveClient`: a raw socket, so that the client's own cost
   stays out of the figures), sends `--queries` SciFact test queries ({"query", "top_k": 10}):
   - `off` (GLASSBOX_CACHE__ENABLED=false): one pass; every request computed. The baseline.
   - `redis` and `memory`: a first pass (misses: computed and stored), then `--repeats` passes of the same
     requests (hits: the stored JSON bytes, no encode, no retrieval).
   Each request's `X-Glassbox-Cache` header is checked against what the pass expects. Before each search the
   client also sends `GET /healthz` on the same connection: the HTTP round trip of a route that does nothing
   (the floor), timed under the same conditions as the search right after it. In the repeated passes each
   request is also sent from an `httpx.Client`, to show what a typical Python client adds.
4. Prints Markdown: p50/p95/p99 per pass, the floor's p50 in that pass, the median of the paired differences
   search - floor (what the search costs above a bare HTTP round trip), each p50's ratio to the baseline's, and
   the httpx client's p50 for the same hits.

Client and server share the machine's cores; on a busy machine the floor itself moves by milliseconds, which is
why it is measured alongside. The target (issue #7): Redis hits at p50 <= 2 ms over HTTP.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from _common import (
    argument_parser,
    data_dir,
    machine_line,
    markdown_table,
    percentile_ms,
    resolve_dataset,
    stop_process,
)

from evaluation import BeirDataset

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
READY_TIMEOUT_S = 300.0
TARGET_HIT_P50_MS = 2.0


@dataclass(frozen=True)
class Pass:
    """One pass's label, per-request seconds, the paired floor requests' seconds, the cache states seen, and (hit
    passes) the seconds of the same requests sent from httpx."""

    label: str
    latencies: list[float]
    floors: list[float]
    states: dict[str, int]
    httpx_latencies: list[float] = field(default_factory=list)  # the same requests from httpx (repeated passes)

    def p(self, q: float) -> float:
        return percentile_ms(self.latencies, q)

    def above_floor(self) -> float:
        """Median of the paired differences search - floor, in ms."""
        return percentile_ms([s - f for s, f in zip(self.latencies, self.floors, strict=True)], 50)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A private redis-server without persistence; yields its URL; always stops it."""
    import redis

    port = free_port()
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(directory)], stdout=subprocess.DEVNULL)
    client = redis.Redis(port=port, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"redis-server on port {port} did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def running_server(home: Path, env: dict[str, str], log: Path) -> Iterator[str]:
    """`glassbox serve` on a free port with GLASSBOX_HOME=home and `env`; yields its URL; always stops it."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "glassbox"), "serve", "--host", "127.0.0.1", "--port", str(port)]
    full_env = {**os.environ, "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1", "GLASSBOX_LOG_LEVEL": "WARNING"}
    with log.open("wb") as output:
        process = subprocess.Popen(command, env={**full_env, **env}, stdout=output, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + READY_TIMEOUT_S
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/readyz", timeout=5).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S:.0f} s (log: {log})")
                time.sleep(0.5)
            yield url
        finally:
            stop_process(process)


class KeepAliveClient:
    """A minimal HTTP/1.1 client on one keep-alive socket: writes the request bytes and reads the status line,
    headers and a Content-Length body. It costs the client side microseconds where httpx costs about a
    millisecond per request on this machine, so the times below are the server's plus the loopback."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._host = f"{parts.hostname}:{parts.port}"
        self._sock = socket.create_connection((parts.hostname, parts.port), timeout=120)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def close(self) -> None:
        self._sock.close()

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self._sock.sendall(head.encode() + b"\r\n" + body)
        while b"\r\n\r\n" not in self._buffer:
            self._buffer += self._receive()
        raw_head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = raw_head.decode("latin-1").split("\r\n")
        headers = {name.strip().lower(): value.strip() for name, value in (line.split(":", 1) for line in lines)}
        length = int(headers.get("content-length", "0"))
        while len(self._buffer) < length:
            self._buffer += self._receive()
        content, self._buffer = self._buffer[:length], self._buffer[length:]
        return int(status_line.split()[1]), headers, content

    def _receive(self) -> bytes:
        chunk = self._sock.recv(1 << 20)
        if not chunk:
            raise RuntimeError("the server closed the connection")
        return chunk


def run_pass(
    client: KeepAliveClient, other: httpx.Client | None, path: str, label: str, texts: list[str], top_k: int
) -> Pass:
    """One pass over `texts`: per query the floor (`GET /healthz`) and the search, from the lean client; with
    `other` (repeated passes only, whose requests are all hits) the same search once more from httpx."""
    latencies: list[float] = []
    floors: list[float] = []
    httpx_latencies: list[float] = []
    states: dict[str, int] = {}
    for text in texts:
        start = time.perf_counter()
        status, _, _ = client.request("GET", "/healthz")
        floors.append(time.perf_counter() - start)
        if status != 200:
            raise RuntimeError(f"/healthz returned {status}")
        body = json.dumps({"query": text, "top_k": top_k}).encode()
        start = time.perf_counter()
        status, headers, content = client.request("POST", path, body)
        latencies.append(time.perf_counter() - start)
        if status != 200 or not content:
            raise RuntimeError(f"search returned {status}: {content[:300]!r}")
        state = headers.get("x-glassbox-cache", "absent")
        states[state] = states.get(state, 0) + 1
        if other is not None:
            start = time.perf_counter()
            response = other.post(path, content=body, headers={"Content-Type": "application/json"})
            _ = response.content
            httpx_latencies.append(time.perf_counter() - start)
            if response.headers.get("X-Glassbox-Cache") != state:
                raise RuntimeError(f"httpx saw {response.headers.get('X-Glassbox-Cache')}, the lean client {state}")
    return Pass(label, latencies, floors, states, httpx_latencies)


def measure(url: str, collection: str, name: str, texts: list[str], repeats: int, top_k: int) -> list[Pass]:
    path = f"/v1/collections/{collection}/search"
    client = KeepAliveClient(url)
    try:
        with httpx.Client(base_url=url, timeout=120) as other:
            other.post(path, json={"query": "warm-up request, not measured", "top_k": top_k}).raise_for_status()
            passes = [run_pass(client, None, path, f"{name}: first request" if repeats else name, texts, top_k)]
            for repeat in range(repeats):
                passes.append(run_pass(client, other, path, f"{name}: repeated (pass {repeat + 1})", texts, top_k))
    finally:
        client.close()
    return passes


def main(argv: list[str] | None = None) -> int:
    parser = argument_parser(__doc__)
    default_home = os.environ.get("GLASSBOX_HOME", "/work/benchhome")
    parser.add_argument("--source-home", type=Path, default=Path(default_home), help="home holding the collection")
    parser.add_argument("--collection", default="scifact", help="collection name (default scifact)")
    parser.add_argument("--dataset", default=str(data_dir() / "beir" / "scifact"), help="BEIR dir of the queries")
    parser.add_argument("--split", default="test", help="queries with qrels in this split (default test)")
    parser.add_argument("--queries", type=int, default=200, help="distinct queries (default 200)")
    parser.add_argument("--repeats", type=int, default=3, help="repeated passes per cache (default 3)")
    parser.add_argument("--top-k", type=int, default=10, help="results per query (default 10)")
    parser.add_argument("--redis-url", default=None, help="use this Redis instead of a private redis-server")
    args = parser.parse_args(argv)
    if args.queries < 2 or args.repeats < 1 or args.top_k < 1:
        parser.error("--queries must be >= 2, --repeats and --top-k >= 1")
    if not (args.source_home / "collections" / args.collection / "documents.sqlite").is_file():
        raise SystemExit(f"error: no collection {args.collection!r} under {args.source_home}")
    dataset = BeirDataset(resolve_dataset(args.dataset))
    qrels = dataset.split(args.split).qrels
    texts = [text for query_id, text in dataset.queries().items() if query_id in qrels][: args.queries]

    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="glassbox-cache-bench-") as scratch:
        root = Path(scratch)
        home = root / "home"
        shutil.copytree(args.source_home, home, ignore=shutil.ignore_patterns("*.lock", "lock"))
        with contextlib.ExitStack() as stack:
            redis_url = args.redis_url or stack.enter_context(redis_server(root))
            prefix = f"glassbox-bench-{uuid.uuid4().hex[:8]}"
            configs = {
                "off": {"GLASSBOX_CACHE__ENABLED": "false"},
                "redis": {"GLASSBOX_REDIS_URL": redis_url, "GLASSBOX_CACHE__KEY_PREFIX": prefix},
                "memory": {"GLASSBOX_REDIS_URL": "", "GLASSBOX_CACHE__MAX_ENTRIES": "100000"},
            }
            passes: list[Pass] = []
            for name, env in configs.items():
                print(f"measuring {name} ...", file=sys.stderr, flush=True)
                with running_server(home, env, root / f"server-{name}.log") as url:
                    repeats = 0 if name == "off" else args.repeats
                    passes += measure(url, args.collection, name, texts, repeats, args.top_k)
    load_after = os.getloadavg()

    baseline = passes[0].p(50)
    rows = [
        [
            p.label,
            len(p.latencies),
            ", ".join(f"{k} {v}" for k, v in sorted(p.states.items())) or "-",
            f"{p.p(50):.2f}",
            f"{p.p(95):.2f}",
            f"{p.p(99):.2f}",
            f"{percentile_ms(p.floors, 50):.2f}",
            f"{p.above_floor():.2f}",
            f"{p.p(50) / baseline:.3f}",
            f"{percentile_ms(p.httpx_latencies, 50):.2f}" if p.httpx_latencies else "-",
        ]
        for p in passes
    ]
    headers = [
        "pass",
        "requests",
        "X-Glassbox-Cache",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "floor p50 ms",
        "above floor ms",
        "p50 / off p50",
        "httpx client p50 ms",
    ]
    print(f"# Cache benchmark ({started})\n")
    print(machine_line())
    print(f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}; nproc {os.cpu_count()}")
    print(
        f"{len(texts)} SciFact {args.split} queries, top_k {args.top_k}, collection {args.collection!r} "
        f"(copy of {args.source_home}); one sequential keep-alive client (raw socket; hit passes also from httpx)\n"
    )
    print(markdown_table(headers, rows))
    hits = [p for p in passes if p.label.startswith("redis: repeated")]
    pooled = Pass(
        "redis hits",
        [s for p in hits for s in p.latencies],
        [f for p in hits for f in p.floors],
        {},
        [s for p in hits for s in p.httpx_latencies],
    )
    verdict = "meets" if pooled.p(50) <= TARGET_HIT_P50_MS else "misses"
    print(
        f"\nRedis hits, all repeated passes pooled: p50 {pooled.p(50):.2f} ms, p95 {pooled.p(95):.2f} ms "
        f"({verdict} the target p50 <= {TARGET_HIT_P50_MS:.0f} ms); {baseline / pooled.p(50):.0f}x faster than "
        f"the uncached p50. The paired GET /healthz floor: p50 {percentile_ms(pooled.floors, 50):.2f} ms; a hit "
        f"costs {pooled.above_floor():.2f} ms (median) above it. The same hits sent from httpx: p50 "
        f"{percentile_ms(pooled.httpx_latencies, 50):.2f} ms (the difference is httpx's own cost per request)."
    )
    unexpected = [p.label for p in passes if "repeated" in p.label and set(p.states) != {"hit"}]
    if unexpected:
        print(f"\nWARNING: passes with requests not served from the cache: {unexpected}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
