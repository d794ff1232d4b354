"""Search latency and throughput over HTTP against the in-process floor (encode + FAISS), in one run.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/search_latency.py [--home /tmp/gbhome] [--requests 200]
          [--concurrency 1,4,16] [--docs N] [--dataset DIR]

1. Makes sure GLASSBOX_HOME (`--home`, default a temporary directory) holds a collection (`--collection`,
   default `scifact`) with the dataset's documents (the first `--docs`, default all), ingesting only when it
   does not; a complete collection is reused as it is.
2. Starts the real server (`glassbox serve --port <free port>`) as a subprocess with GLASSBOX_HOME set, waits
   for GET /readyz, and always stops it at the end, on errors too.
3. Floor: in this process, the same model encodes one query at a time and the collection's own FaissIndex
   (opened read-only from the same home) returns its top_k, sequentially, for the same `--requests` query
   texts: the first half before the HTTP levels, the second half after them, pooled, so drift during the run
   shows up in the floor as well.
4. HTTP: for each concurrency level c, `--requests` POST /v1/collections/{name}/search requests ({"query",
   "top_k"}; the API's defaults for the rest) are shared by c client threads, each with its own keep-alive
   connection opened (and warmed by one request) before the clock starts. Query texts are the split's
   queries, cycled.

Prints Markdown: p50/p95/p99 latency, QPS, and their ratios to the floor; then the mean per-stage
`timings_ms` the server reported. Client and server share the machine's cores, so at high concurrency the
client's own CPU use is part of what is measured. `--threads N` pins torch's intra-op threads and FAISS's
OpenMP threads in both this process and the server (OMP_NUM_THREADS/MKL_NUM_THREADS); by default both keep
the libraries' defaults (one thread per core).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from _common import (
    argument_parser,
    data_dir,
    ensure_collection,
    load_documents,
    machine_line,
    make_encoder,
    markdown_table,
    percentile_ms,
    resolve_dataset,
    set_threads,
    stop_process,
)

from evaluation import BeirDataset
from indexes import Collection
from service.encoder import Encoder
from service.registry import CollectionRegistry
from service.settings import Settings

READY_TIMEOUT_S = 180.0
REQUEST_TIMEOUT_S = 300.0


@dataclass
class Measurement:
    """Per-request latencies (seconds), the wall-clock time of the whole level, and server timings."""

    latencies: list[float]
    wall: float
    server_timings: list[dict[str, float]] = field(default_factory=list)

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.wall

    def p(self, q: float) -> float:
        return percentile_ms(self.latencies, q)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument(
        "--dataset",
        default=str(data_dir() / "beir" / "scifact"),
        help="BEIR directory (or a name under $GLASSBOX_DATA/beir); default SciFact",
    )
    parser.add_argument("--split", default="test", help="qrels split of the queries sent (default test)")
    parser.add_argument("--docs", type=int, default=None, help="only the first N documents (default all)")
    parser.add_argument(
        "--home",
        type=Path,
        default=None,
        help="GLASSBOX_HOME to use; a complete collection there is reused (default: a new temporary dir)",
    )
    parser.add_argument("--collection", default="scifact", help="collection name (default scifact)")
    parser.add_argument("--requests", type=int, default=200, help="requests per level (default 200)")
    parser.add_argument("--concurrency", default="1,4,16", help="client counts (default 1,4,16)")
    parser.add_argument("--top-k", type=int, default=10, help="results per query (default 10)")
    parser.add_argument("--warmup", type=int, default=10, help="unmeasured requests first (default 10)")
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch and FAISS threads in the floor and the server (default 0: the libraries' defaults)",
    )
    args = parser.parse_args(argv)
    try:
        args.levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error(f"--concurrency must be comma-separated integers, got {args.concurrency!r}")
    if not args.levels or min(args.levels) < 1 or args.requests < 2 or args.top_k < 1:
        parser.error("--concurrency levels and --top-k must be >= 1, --requests >= 2")
    if args.warmup < 0 or args.threads < 0:
        parser.error("--warmup and --threads must be >= 0")
    return args


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def glassbox_command() -> str:
    """The `glassbox` console script installed beside this interpreter."""
    candidate = Path(sys.executable).parent / "glassbox"
    if not candidate.is_file():
        raise SystemExit(f"error: {candidate} not found; run with the project's .venv/bin/python")
    return str(candidate)


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def running_server(home: Path, log_path: Path, threads: int) -> Iterator[str]:
    """Start `glassbox serve` on a free port with GLASSBOX_HOME=home; yield its base URL; always stop it."""
    port = free_port()
    env = {**os.environ, "GLASSBOX_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    command = [glassbox_command(), "serve", "--host", "127.0.0.1", "--port", str(port)]
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process, log_path)
            yield url
        finally:
            stop_process(process)
            signal.signal(signal.SIGTERM, previous)


def wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"server exited with {process.returncode} before ready:\n{tail}")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{url}/readyz").status_code == 200:
                    return
            time.sleep(0.5)
    raise RuntimeError(f"server not ready after {READY_TIMEOUT_S:.0f} s (log: {log_path})")


def measure_floor(encoder: Encoder, collection: Collection, texts: list[str], top_k: int) -> Measurement:
    """Sequential in-process encode of one query + FaissIndex.search(k=top_k) of the same index."""
    latencies = []
    start = time.perf_counter()
    for text in texts:
        t0 = time.perf_counter()
        vector = encoder.encode([text])
        collection.index.search(vector, top_k)
        latencies.append(time.perf_counter() - t0)
    return Measurement(latencies, time.perf_counter() - start)


def post_search(client: httpx.Client, url: str, payload: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """(seconds until the whole response arrived, the parsed body)."""
    start = time.perf_counter()
    response = client.post(url, json=payload)
    elapsed = time.perf_counter() - start
    if response.status_code != 200:
        raise RuntimeError(f"search returned {response.status_code}: {response.text[:500]}")
    body: dict[str, Any] = response.json()
    return elapsed, body


def measure_http(url: str, payloads: list[dict[str, Any]], concurrency: int) -> Measurement:
    """`len(payloads)` requests shared by `concurrency` threads, each with its own already-open connection."""
    total = len(payloads)
    latencies = [0.0] * total
    timings: list[dict[str, float]] = [{} for _ in range(total)]
    next_index = iter(range(total))
    index_lock = threading.Lock()
    clients = [httpx.Client(timeout=REQUEST_TIMEOUT_S) for _ in range(concurrency)]

    def worker(client: httpx.Client) -> None:
        while True:
            with index_lock:
                i = next(next_index, None)
            if i is None:
                return
            latencies[i], body = post_search(client, url, payloads[i])
            timings[i] = body["timings_ms"]

    try:
        for client in clients:  # open and warm each connection outside the clock
            post_search(client, url, payloads[0])
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            start = time.perf_counter()
            futures = [pool.submit(worker, client) for client in clients]
            for future in futures:
                future.result()
            wall = time.perf_counter() - start
    finally:
        for client in clients:
            client.close()
    return Measurement(latencies, wall, timings)


def query_texts(dataset: Path, split: str) -> list[str]:
    qrels = BeirDataset(dataset).split(split).qrels
    texts = BeirDataset(dataset).queries()
    chosen = [text for query_id, text in texts.items() if query_id in qrels]
    if not chosen:
        raise SystemExit(f"error: no queries of {dataset.name} have {split} qrels")
    return chosen


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dataset = resolve_dataset(args.dataset)
    texts = query_texts(dataset, args.split)
    cycled = [texts[i % len(texts)] for i in range(args.requests)]
    set_threads(args.threads)
    with contextlib.ExitStack() as stack:
        home = args.home or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="glassbox-bench-")))
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="glassbox-bench-log-")))
        settings = Settings(home=home)
        encoder = make_encoder(settings)
        state = ensure_collection(settings, encoder, args.collection, load_documents(dataset, args.docs))
        root = settings.collections_dir
        reader = CollectionRegistry(root, encoder.identity, settings.index, read_only=True)
        stack.callback(reader.close_all)
        collection = reader.get(args.collection)
        factory = collection.config.factory
        url = stack.enter_context(running_server(home, scratch / "server.log", args.threads))
        search_url = f"{url}/v1/collections/{args.collection}/search"
        payloads = [{"query": text, "top_k": args.top_k} for text in cycled]
        for text in texts[: args.warmup]:
            encoder.encode([text])
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            for payload in payloads[: args.warmup]:
                post_search(client, search_url, payload)
        half = len(cycled) // 2
        floor_before = measure_floor(encoder, collection, cycled[:half], args.top_k)
        levels = {c: measure_http(search_url, payloads, c) for c in args.levels}
        floor_after = measure_floor(encoder, collection, cycled[half:], args.top_k)
    floor = Measurement(floor_before.latencies + floor_after.latencies, floor_before.wall + floor_after.wall)
    source = "ingested in this run" if state.ingest is not None else "reused"
    title = (
        f"# Search latency: {dataset.name} collection `{args.collection}` ({state.documents} documents, "
        f"{factory} index, {source}), {args.requests} requests per level, top_k {args.top_k}; torch/FAISS "
        f"threads in the server and the floor: {args.threads or 'library defaults'}"
    )
    print_report(title, floor, floor_before, floor_after, levels)
    return 0


def print_report(
    title: str,
    floor: Measurement,
    floor_before: Measurement,
    floor_after: Measurement,
    levels: dict[int, Measurement],
) -> None:
    print(title + "\n")
    print(machine_line() + "\n")
    floor_p50 = floor.p(50)
    rows: list[list[object]] = [
        [
            f"floor: encode + FAISS in-process ({len(floor.latencies)} queries)",
            f"{floor_p50:.1f}",
            f"{floor.p(95):.1f}",
            f"{floor.p(99):.1f}",
            f"{floor.qps:.1f}",
            "1.00",
            "1.00",
        ]
    ]
    for concurrency, level in levels.items():
        rows.append(
            [
                f"http c={concurrency}",
                f"{level.p(50):.1f}",
                f"{level.p(95):.1f}",
                f"{level.p(99):.1f}",
                f"{level.qps:.1f}",
                f"{level.p(50) / floor_p50:.2f}",
                f"{level.qps / floor.qps:.2f}",
            ]
        )
    headers = ["run", "p50 ms", "p95 ms", "p99 ms", "QPS", "p50 / floor p50", "QPS / floor QPS"]
    print(markdown_table(headers, rows))
    print(
        f"\nfloor p50 before the HTTP runs {floor_before.p(50):.1f} ms, after {floor_after.p(50):.1f} ms; "
        "the floor's QPS is 1 / its mean latency (one query at a time).\n"
    )
    stages = sorted({key for level in levels.values() for t in level.server_timings for key in t})
    stage_rows = []
    for concurrency, level in levels.items():
        served = level.server_timings
        means = {key: sum(t.get(key, 0.0) for t in served) / len(served) for key in stages}
        client_mean = 1000.0 * sum(level.latencies) / len(level.latencies)
        outside = client_mean - means.get("total", 0.0)
        stage_rows.append(
            [
                f"http c={concurrency}",
                *(f"{means[key]:.1f}" for key in stages),
                f"{client_mean:.1f}",
                f"{outside:.1f}",
            ]
        )
    headers = ["run", *(f"server {key} ms" for key in stages), "client mean ms", "client - server total ms"]
    print("Mean per-stage `timings_ms` reported by the server:\n")
    print(markdown_table(headers, stage_rows))


if __name__ == "__main__":
    sys.exit(main())
