"""What authentication and the request-limits middleware cost per request, against baselines in the same run.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/auth_limits.py [--requests 2000] [--keys 8]

1. Middleware alone: a trivial ASGI app (reads the body, answers 200) driven by hand in one event loop,
   `--requests` times bare and `--requests` times behind `RequestLimitsMiddleware` (alternating blocks of 500).
   The difference is the middleware's own cost: a Content-Length check, a counting `receive`, and a task group
   plus timer for the timeout.
2. The app in-process (Starlette's TestClient, a stub encoder: nothing here encodes), `GET /v1/collections/{c}`
   and a rejected request, with auth off (no keys; the baseline) and on (`--keys` keys configured, the one
   presented last in the list, so every digest is compared): p50/p95 of each and the ratio of p50s.
3. `find_key` alone with 1, 10 and 100 configured keys.

Bounded: about 20 s on 2 cores at the defaults. Prints Markdown.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import numpy as np
from _common import argument_parser, machine_line, markdown_table, percentile_ms
from fastapi.testclient import TestClient

from service.api import create_app
from service.api.limits import RequestLimitsMiddleware
from service.api_keys import find_key, new_key_entry
from service.encoder import EncoderIdentity
from service.settings import LimitsSettings, Settings

BLOCK = 500


class StubEncoder:
    """Satisfies the encoder protocol without a model; the routes timed here never encode."""

    identity = EncoderIdentity("stub", "0", 384, "torch")

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        vectors = np.ones((len(texts), 384), dtype=np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def trivial_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b"{}"})


def time_asgi(app: Any, requests: int) -> list[float]:
    """Seconds per request for `app`, driven directly (no server, no client)."""
    scope = {"type": "http", "method": "POST", "path": "/", "headers": [(b"content-length", b"2")]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def run() -> list[float]:
        times = []
        for _ in range(requests):
            start = time.perf_counter()
            await app(dict(scope), receive, send)
            times.append(time.perf_counter() - start)
        return times

    return anyio.run(run)


def alternate(runs: dict[str, Callable[[int], list[float]]], requests: int) -> dict[str, list[float]]:
    """Each run in blocks of BLOCK, taking turns, so drift in the machine's load hits all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run(50)  # warm-up
    while min(len(t) for t in times.values()) < requests:
        for name, run in runs.items():
            times[name] += run(BLOCK)
    return times


def row(name: str, seconds: list[float], baseline: list[float]) -> list[object]:
    p50, base = percentile_ms(seconds, 50), percentile_ms(baseline, 50)
    return [
        name,
        f"{p50 * 1000:.1f}",
        f"{percentile_ms(seconds, 95) * 1000:.1f}",
        f"{(p50 - base) * 1000:+.1f}",
        f"{p50 / base:.2f}",
    ]


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--requests", type=int, default=2000, help="timed requests per variant")
    parser.add_argument("--keys", type=int, default=8, help="keys configured when auth is on")
    args = parser.parse_args()
    started = datetime.now(UTC)
    headers = ["variant", "p50 µs", "p95 µs", "p50 - baseline µs", "p50 / baseline"]

    limits = LimitsSettings()
    middleware = RequestLimitsMiddleware(trivial_app, limits)
    asgi = alternate(
        {"bare": lambda n: time_asgi(trivial_app, n), "limits": lambda n: time_asgi(middleware, n)}, args.requests
    )

    entries = [new_key_entry(f"key{i}", ["*"], ["*"]) for i in range(args.keys)]
    key = entries[-1][0]
    with tempfile.TemporaryDirectory() as home:
        open_app = create_app(Settings(home=Path(home) / "open"), encoder=StubEncoder())
        keyed_app = create_app(
            Settings(home=Path(home) / "keyed", api_keys=[entry for _, entry in entries]), encoder=StubEncoder()
        )
        with TestClient(open_app) as open_client, TestClient(keyed_app) as keyed_client:
            for client, extra in ((open_client, {}), (keyed_client, {"X-API-Key": key})):
                assert client.post("/v1/collections", json={"name": "papers"}, headers=extra).status_code == 201

            def timed(client: TestClient, url: str, sent: dict[str, str], status: int) -> Callable[[int], list[float]]:
                def run(n: int) -> list[float]:
                    times = []
                    for _ in range(n):
                        start = time.perf_counter()
                        response = client.get(url, headers=sent)
                        times.append(time.perf_counter() - start)
                        assert response.status_code == status, response.text
                    return times

                return run

            http = alternate(
                {
                    "auth off (baseline)": timed(open_client, "/v1/collections/papers", {}, 200),
                    f"auth on, {args.keys} keys, valid key": timed(
                        keyed_client, "/v1/collections/papers", {"X-API-Key": key}, 200
                    ),
                    "auth on, no key (401)": timed(keyed_client, "/v1/collections/papers", {}, 401),
                },
                args.requests,
            )

    lookups = []
    for count in (1, 10, 100):
        stored = [new_key_entry(f"k{i}", ["*"], [])[1] for i in range(count - 1)]
        last_key, last = new_key_entry("last", ["*"], [])
        stored.append(last)
        start = time.perf_counter()
        for _ in range(2000):
            find_key(last_key, stored)
        lookups.append([f"find_key, {count} keys", f"{(time.perf_counter() - start) / 2000 * 1e6:.1f}"])

    print(f"# Auth and request-limits overhead ({started:%Y-%m-%d %H:%M} UTC)\n")
    print(machine_line() + "\n")
    print(f"## Limits middleware on a trivial ASGI app ({args.requests} requests each)\n")
    print(
        markdown_table(
            headers,
            [
                row("bare app (baseline)", asgi["bare"], asgi["bare"]),
                row("behind RequestLimitsMiddleware", asgi["limits"], asgi["bare"]),
            ],
        )
    )
    print(f"\n## `GET /v1/collections/papers` in-process through TestClient ({args.requests} requests each)\n")
    base = http["auth off (baseline)"]
    print(markdown_table(headers, [row(name, times, base) for name, times in http.items()]))
    print("\n## Key lookup alone (2000 lookups each, the matching key last)\n")
    print(markdown_table(["lookup", "µs each"], lookups))


if __name__ == "__main__":
    main()
