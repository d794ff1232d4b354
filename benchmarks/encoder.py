"""Encoder backends side by side: single-query latency and batched docs/s for torch, onnx and onnx-int8.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/encoder.py [--queries 200] [--docs 500] [--repeats 2]

All three backends are loaded first (the ONNX exports are cached under `--home`, default a temporary folder).
Then, `--repeats` times, each backend in turn encodes the same SciFact claims one at a time (single-query
latency) and the same SciFact documents in batches of 32 (throughput), so load drift hits every backend alike.
Ratios are against torch in the same run. Prints Markdown.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import data_dir, machine_line, markdown_table, median, percentile_ms

from service.encoder import Encoder, document_text
from service.encoder_factory import load_encoder
from service.settings import EncoderSettings, Settings

BACKENDS = ("torch", "onnx", "onnx-int8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--home", type=Path, help="GLASSBOX_HOME holding cached exports (default: temporary)")
    args = parser.parse_args()

    scifact = data_dir() / "beir" / "scifact"
    with (scifact / "queries.jsonl").open() as handle:
        claims = [json.loads(line)["text"] for line, _ in zip(handle, range(args.queries), strict=False)]
    with (scifact / "corpus.jsonl").open() as handle:
        records = [json.loads(line) for line, _ in zip(handle, range(args.docs), strict=False)]
    docs = [document_text(r["title"], r["text"]) for r in records]

    with tempfile.TemporaryDirectory() as scratch:
        home = args.home or Path(scratch)
        encoders: dict[str, Encoder] = {
            b: load_encoder(Settings(home=home, encoder=EncoderSettings(backend=b))) for b in BACKENDS
        }
        for encoder in encoders.values():
            encoder.encode(claims[:5])  # warm-up
        single: dict[str, list[float]] = {b: [] for b in BACKENDS}
        throughput: dict[str, list[float]] = {b: [] for b in BACKENDS}
        for _ in range(args.repeats):
            for backend, encoder in encoders.items():
                for claim in claims:
                    start = time.perf_counter()
                    encoder.encode([claim])
                    single[backend].append(time.perf_counter() - start)
                start = time.perf_counter()
                encoder.encode(docs)
                throughput[backend].append(len(docs) / (time.perf_counter() - start))
        reference = encoders["torch"].encode(docs[:200])
        agreement = {b: (reference * encoders[b].encode(docs[:200])).sum(axis=1) for b in BACKENDS}

    torch_p50, torch_rate = percentile_ms(single["torch"], 50), median(throughput["torch"])
    rows = []
    for backend in BACKENDS:
        p50, rate = percentile_ms(single[backend], 50), median(throughput[backend])
        rows.append(
            [
                backend,
                f"{p50:.2f}",
                f"{percentile_ms(single[backend], 95):.2f}",
                f"{torch_p50 / p50:.2f}x",
                f"{rate:.1f}",
                f"{rate / torch_rate:.2f}x",
                f"{float(np.min(agreement[backend])):.5f} / {float(np.mean(agreement[backend])):.5f}",
            ]
        )
    print(f"# Encoder backends: {len(claims)} single queries and {len(docs)} documents x {args.repeats} repeats\n")
    print(machine_line() + "\n")
    header = ["backend", "query p50 ms", "query p95 ms", "speed-up", "docs/s", "docs/s vs torch", "cos min / mean"]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
