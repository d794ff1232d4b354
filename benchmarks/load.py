"""Load benchmark: QPS and latency of `POST /v1/collections/{c}/search` with and without micro-batching, or a soak.

Run:  HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/load.py [--home /work/benchhome]
          [--clients 1,4,16,32] [--seconds 20] [--warmup 3] [--rounds 1]
      HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1 .venv/bin/python benchmarks/load.py --soak 300 --clients 32

1. Copies `--home` (a GLASSBOX_HOME holding the collection `--collection`, default `scifact`) into a temporary
   directory per server, so the benchmark never writes into it, and starts `glassbox serve` on a free loopback
   port over each copy: one with micro-batching (the defaults) and one with GLASSBOX_BATCHING__ENABLED=false.
   Both serve the default pipeline (hybrid first stage, then the `cosine` stage) with the response and
   query-embedding cache off (GLASSBOX_CACHE__ENABLED=false), so every request encodes and searches.
2. For each client count, the two servers take turns (with batching first, then without; `--rounds` repeats
   the whole sequence): c clients each hold one keep-alive HTTP/1.1 connection and send searches back to back
   for `--warmup` seconds (not counted) and then `--seconds` seconds. Request bodies are the dataset's test
   queries (ids in qrels/test.tsv), {"query": text, "top_k": 10}; client i starts at query i * n / c, so
   concurrent requests carry different queries.
3. Prints Markdown: per run, requests, errors, QPS, p50/p95/p99 latency, CPU cores used by the server process
   and by this load generator, and what the server's /metrics say (mean searches per encode batch, mean
   server-side encode and total ms); then, per client count, the ratios with / without batching.

`--soak SECONDS` instead runs only the batching server at `--clients` (one count) for that long after the
warm-up, and reports errors, QPS, latency and the server's resident memory (VmRSS) when ready, when the measured
run starts, at its end, and the maximum (sampled every second).

The load generator is asyncio with raw sockets: one coroutine per client writes a prebuilt request and reads the
status line, headers and a Content-Length body. It parses nothing else, so it stays cheap beside the server on
the same cores; its CPU use is reported with every run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from _common import argument_parser, machine_line, markdown_table, percentile_ms, resolve_dataset

READY_TIMEOUT_S = 300.0
REQUEST_TIMEOUT_S = 60.0
TICKS = os.sysconf("SC_CLK_TCK")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument("--home", type=Path, default=Path("/work/benchhome"), help="GLASSBOX_HOME to copy")
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--dataset", default="scifact", help="BEIR directory or name under $GLASSBOX_DATA/beir")
    parser.add_argument("--clients", default="1,4,16,32", help="comma-separated concurrent client counts")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds of load before each run")
    parser.add_argument("--rounds", type=int, default=1, help="times the whole with/without sequence is repeated")
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--soak", type=float, default=0.0, help="soak mode: seconds at one client count")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for both servers (e.g. GLASSBOX_BATCHING__MAX_WAIT_MS=5); repeatable",
    )
    return parser.parse_args(argv)


def query_texts(dataset: Path) -> list[str]:
    """The texts of the queries judged in qrels/test.tsv, in file order."""
    ids: dict[str, None] = {}
    for line in (dataset / "qrels" / "test.tsv").read_text().splitlines()[1:]:
        if line.strip():
            ids.setdefault(line.split("\t")[0].strip(), None)
    texts: dict[str, str] = {}
    with (dataset / "queries.jsonl").open() as handle:
        for line in handle:
            row = json.loads(line)
            texts[str(row["_id"])] = row["text"]
    return [texts[i] for i in ids if i in texts]


def request_bytes(path: str, payload: dict[str, object]) -> bytes:
    """A complete keep-alive HTTP/1.1 POST of `payload` as JSON."""
    body = json.dumps(payload).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _raise_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # so that `finally` blocks stop the servers


# --- the server ------------------------------------------------------------------------------------------------


@dataclass
class Server:
    """`glassbox serve` as a child process over its own copy of the home."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        return 0

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime, all threads

    def metrics(self) -> dict[str, float]:
        """The server's /metrics samples, keyed by the sample line's name and labels."""
        text = http_get(self.port, "/metrics")
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                series, value = line.rsplit(" ", 1)
                samples[series] = float(value)
        return samples


def http_get(port: int, path: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        chunks = []
        while chunk := sock.recv(1 << 16):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"GET {path}: {head.splitlines()[0]!r}")
    return body.decode()


@contextlib.contextmanager
def running_server(name: str, source_home: Path, workdir: Path, env_extra: dict[str, str]) -> Iterator[Server]:
    home = workdir / f"home-{name}"
    shutil.copytree(source_home, home, ignore=shutil.ignore_patterns("*.lock"))
    port = free_port()
    log = workdir / f"server-{name}.log"
    env = {
        **os.environ,
        "GLASSBOX_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "GLASSBOX_CACHE__ENABLED": "false",
        **env_extra,
    }
    command = [sys.executable, "-m", "service", "serve", "--port", str(port)]
    with log.open("wb") as handle:
        process = subprocess.Popen(command, env=env, stdout=handle, stderr=subprocess.STDOUT)
    server = Server(name, process, port, log)
    try:
        wait_ready(server)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SystemExit(f"error: server {server.name} exited; see {server.log}:\n{server.log.read_text()[-3000:]}")
        with contextlib.suppress(OSError, RuntimeError):
            http_get(server.port, "/readyz")
            return
        time.sleep(0.5)
    raise SystemExit(f"error: server {server.name} not ready in {READY_TIMEOUT_S:.0f} s; see {server.log}")


# --- the load generator ----------------------------------------------------------------------------------------


@dataclass
class Run:
    """One measured run: latencies (s) of requests started in the window, errors, wall time, CPU use."""

    server: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    wall: float = 0.0
    server_cpu: float = 0.0
    client_cpu: float = 0.0
    batch_calls: float = float("nan")
    encode_ms: float = float("nan")
    total_ms: float = float("nan")

    @property
    def qps(self) -> float:
        return len(self.latencies) / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU time per request: what a request costs, whatever share of the cores the server got."""
        return 1000.0 * self.server_cpu / self.qps if self.qps else float("nan")

    def p(self, q: float) -> float:
        return percentile_ms(self.latencies, q) if self.latencies else float("nan")

    def error(self, kind: str) -> None:
        self.errors += 1
        self.error_kinds[kind] = self.error_kinds.get(kind, 0) + 1


async def read_response(reader: asyncio.StreamReader) -> int:
    """Read one HTTP/1.1 response; its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    for line in lines[1:]:
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":", 1)[1]))
            return status
    raise ValueError(f"response without Content-Length: {lines[0]!r}")


async def client(port: int, requests: Sequence[bytes], first: int, start: float, stop: float, run: Run) -> None:
    """Send requests back to back on one keep-alive connection until `stop`; record those started after `start`."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = first
    try:
        while (began := time.perf_counter()) < stop:
            writer.write(requests[i % len(requests)])
            i += 1
            try:
                status = await asyncio.wait_for(read_response(reader), REQUEST_TIMEOUT_S)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                if began >= start:
                    run.error(type(exc).__name__)
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                continue
            if began < start:
                continue
            run.latencies.append(time.perf_counter() - began)
            if status != 200:
                run.error(f"HTTP {status}")
    finally:
        writer.close()


async def load(
    port: int,
    requests: Sequence[bytes],
    clients: int,
    warmup: float,
    seconds: float,
    run: Run,
    at_start: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """`clients` connections under load for warmup + seconds; `at_start` runs when the measured window opens."""
    start = time.perf_counter() + warmup
    stop = start + seconds

    async def mark() -> None:
        await asyncio.sleep(max(start - time.perf_counter(), 0.0))
        if at_start is not None:
            await at_start()

    tasks = [client(port, requests, c * len(requests) // clients, start, stop, run) for c in range(clients)]
    await asyncio.gather(mark(), *tasks)


def measure(server: Server, requests: Sequence[bytes], clients: int, warmup: float, seconds: float) -> Run:
    """One run; CPU use and the server's /metrics are read when the measured window opens and after it."""
    run = Run(server.name, clients)
    marks: dict[str, float] = {}
    before: dict[str, float] = {}

    async def at_start() -> None:
        marks.update(server=server.cpu_seconds(), client=time.process_time(), wall=time.perf_counter())
        before.update(await asyncio.to_thread(server.metrics))  # in a thread: the clients keep going meanwhile

    asyncio.run(load(server.port, requests, clients, warmup, seconds, run, at_start))
    wall = time.perf_counter() - marks["wall"]
    run.wall = seconds  # requests are counted when they start inside the measured window
    run.server_cpu = (server.cpu_seconds() - marks["server"]) / wall
    run.client_cpu = (time.process_time() - marks["client"]) / wall
    read_server_metrics(run, before, server.metrics())
    return run


def read_server_metrics(run: Run, before: dict[str, float], after: dict[str, float]) -> None:
    """Mean searches per encode batch and mean server-side encode and total ms between two /metrics reads."""

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    if delta("glassbox_encode_batch_calls_count"):
        run.batch_calls = delta("glassbox_encode_batch_calls_sum") / delta("glassbox_encode_batch_calls_count")
    for stage, attribute in (("encode", "encode_ms"), ("total", "total_ms")):
        count = delta(f'glassbox_search_stage_duration_seconds_count{{stage="{stage}"}}')
        if count:
            total = delta(f'glassbox_search_stage_duration_seconds_sum{{stage="{stage}"}}')
            setattr(run, attribute, 1000.0 * total / count)


# --- reports ---------------------------------------------------------------------------------------------------


def _f(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"  # NaN shows as "-"


def runs_table(runs: Sequence[Run]) -> str:
    header = [
        "server",
        "clients",
        "requests",
        "errors",
        "QPS",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "server CPU",
        "server CPU ms / req",
        "client CPU",
        "searches / encode",
        "server encode ms",
        "server total ms",
    ]
    rows = [
        [
            run.server,
            str(run.clients),
            str(len(run.latencies)),
            str(run.errors),
            _f(run.qps),
            _f(run.p(50)),
            _f(run.p(95)),
            _f(run.p(99)),
            _f(run.server_cpu, 2),
            _f(run.cpu_ms_per_request),
            _f(run.client_cpu, 2),
            _f(run.batch_calls, 2),
            _f(run.encode_ms),
            _f(run.total_ms),
        ]
        for run in runs
    ]
    return markdown_table(header, rows)


def ratio_table(runs: Sequence[Run], client_counts: Sequence[int]) -> str:
    """Per client count, pooled over rounds: QPS with / without, and latency without / with (> 1: better)."""
    header = ["clients", "QPS with / without", "p50 without / with", "p95 without / with", "p99 without / with"]
    rows = []
    for clients in client_counts:
        pooled = {}
        for name in ("batching", "no-batching"):
            chosen = [r for r in runs if r.server == name and r.clients == clients]
            merged = Run(name, clients, [x for r in chosen for x in r.latencies], wall=sum(r.wall for r in chosen))
            pooled[name] = merged
        on, off = pooled["batching"], pooled["no-batching"]
        rows.append(
            [
                str(clients),
                f"{on.qps / off.qps:.2f}x",
                f"{off.p(50) / on.p(50):.2f}x",
                f"{off.p(95) / on.p(95):.2f}x",
                f"{off.p(99) / on.p(99):.2f}x",
            ]
        )
    return markdown_table(header, rows)


def load_note() -> str:
    one, five, fifteen = os.getloadavg()
    return f"nproc {os.cpu_count()}, load average {one:.2f} / {five:.2f} / {fifteen:.2f}"


# --- modes -----------------------------------------------------------------------------------------------------


def compare(args: argparse.Namespace, requests: list[bytes], workdir: Path, env_extra: dict[str, str]) -> None:
    client_counts = [int(c) for c in args.clients.split(",")]
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# Load: `{args.collection}`, {len(requests)} distinct test queries, top_k {args.top_k}, cache off\n")
    print(f"{machine_line()}\n\nstarted {started}; at start {load_note()}\n")
    runs: list[Run] = []
    with (
        running_server("batching", args.home, workdir, env_extra) as batching,
        running_server(
            "no-batching", args.home, workdir, {**env_extra, "GLASSBOX_BATCHING__ENABLED": "false"}
        ) as plain,
    ):
        for _ in range(args.rounds):
            for clients in client_counts:
                for server in (batching, plain):
                    runs.append(measure(server, requests, clients, args.warmup, args.seconds))
                    print(f"done: {server.name} c={clients}", file=sys.stderr, flush=True)
    print(runs_table(runs))
    print(f"\nEach run: {args.warmup:g} s warm-up, then {args.seconds:g} s measured; rounds: {args.rounds}.")
    print("CPU columns: cores used (CPU seconds / wall seconds) by the server process and by the load generator.\n")
    print(ratio_table(runs, client_counts))
    print(f"\nat end {load_note()}")
    kinds = {f"{r.server} c={r.clients}": r.error_kinds for r in runs if r.errors}
    if kinds:
        print(f"\nerrors by kind: {kinds}")


def soak(args: argparse.Namespace, requests: list[bytes], workdir: Path, env_extra: dict[str, str]) -> None:
    clients = int(args.clients.split(",")[0])
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"# Soak: `{args.collection}`, {clients} clients for {args.soak:g} s, micro-batching on, cache off\n")
    print(f"{machine_line()}\n\nstarted {started}; at start {load_note()}\n")
    run = Run("batching", clients)
    with running_server("batching", args.home, workdir, env_extra) as server:
        ready_rss = server.rss_kib()
        marks: dict[str, float] = {}
        before: dict[str, float] = {}
        samples: list[int] = []  # VmRSS (KiB) once a second through the measured run

        async def at_start() -> None:
            marks.update(server=server.cpu_seconds(), client=time.process_time(), wall=time.perf_counter())
            before.update(await asyncio.to_thread(server.metrics))
            while time.perf_counter() < marks["wall"] + args.soak:
                samples.append(server.rss_kib())
                await asyncio.sleep(1.0)

        asyncio.run(load(server.port, requests, clients, args.warmup, args.soak, run, at_start))
        run.wall = args.soak
        wall = time.perf_counter() - marks["wall"]
        run.server_cpu = (server.cpu_seconds() - marks["server"]) / wall
        run.client_cpu = (time.process_time() - marks["client"]) / wall
        end_rss = server.rss_kib()
        read_server_metrics(run, before, server.metrics())
    print(runs_table([run]))
    start_rss, mib = samples[0], 1024.0
    print(
        f"\nserver VmRSS: ready {ready_rss / mib:.1f} MiB; measured run start {start_rss / mib:.1f} MiB, end "
        f"{end_rss / mib:.1f} MiB, max {max([*samples, end_rss]) / mib:.1f} MiB; growth over the run "
        f"{(end_rss - start_rss) / mib:+.1f} MiB ({len(samples)} samples, one per second)"
    )
    minutes = ", ".join(f"{i // 60} min {samples[i] / mib:.1f}" for i in range(0, len(samples), 60))
    print(f"VmRSS (MiB) each minute: {minutes}; end {end_rss / mib:.1f}")
    print(f"errors: {run.errors} of {len(run.latencies)} requests {run.error_kinds or ''}")
    print(f"\nat end {load_note()}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _raise_on_sigterm)
    if not (args.home / "collections" / args.collection).is_dir():
        raise SystemExit(f"error: {args.home} holds no collection {args.collection!r}")
    env_extra = dict(item.split("=", 1) for item in args.server_env)
    texts = query_texts(resolve_dataset(args.dataset))
    path = f"/v1/collections/{args.collection}/search"
    requests = [request_bytes(path, {"query": text, "top_k": args.top_k}) for text in texts]
    with tempfile.TemporaryDirectory(prefix="glassbox-load-") as workdir:
        if args.soak:
            soak(args, requests, Path(workdir), env_extra)
        else:
            compare(args, requests, Path(workdir), env_extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
