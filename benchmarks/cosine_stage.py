"""Per-query overhead of the Cosine Adapter stage for K = 100 candidates, against the same ranking without it.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/cosine_stage.py [--adapter DIR] [--queries 500] [--docs 5000]

A Flat collection of `--docs` random unit vectors (the encoder's width) is built in a temporary directory. For each
of `--queries` random query vectors the first stage (top-100) runs once; then `Pipeline.rank` runs on that same
first stage without stages (the baseline) and with the Cosine Adapter stage, alternating, and both are timed.
The overhead per query is the difference. The adapter comes from `--adapter` (a trained artifact) or, without
it, is freshly initialised: its cost depends on its shape, not its weights. Prints Markdown.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import machine_line, markdown_table, percentile_ms

from adapters import CosineAdapter, EncoderSignature
from indexes import Document
from service.encoder import SentenceTransformerEncoder
from service.filter_stage import CosineFilterStage
from service.pipeline import Pipeline, SearchQuery
from service.registry import CollectionRegistry
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapter", type=Path, help="a trained Cosine Adapter folder (default: untrained)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--docs", type=int, default=5000)
    args = parser.parse_args()

    settings = Settings()
    encoder = SentenceTransformerEncoder(settings.encoder)
    dimension = encoder.identity.dimension
    signature = EncoderSignature(encoder.identity.name, dimension)
    adapter = CosineAdapter.load(args.adapter, signature) if args.adapter else CosineAdapter(dimension)
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dimension)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    with tempfile.TemporaryDirectory() as scratch:
        registry = CollectionRegistry(Path(scratch), encoder.identity, settings.index)
        collection = registry.create("bench")
        docs = [Document(f"d{i}", f"title {i}", f"text {i}") for i in range(args.docs)]
        collection.upsert(docs, unit(args.docs))
        base = Pipeline(encoder, registry, settings.search)
        staged = Pipeline(encoder, registry, settings.search, [CosineFilterStage(adapter)])
        base_s, staged_s, stage_ms = [], [], []
        for query in unit(args.queries):
            first = base.retrieve(collection, SearchQuery("q", top_k=10), query)
            start = time.perf_counter()
            base.rank(collection, first, 0.0)
            base_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            outcome = staged.rank(collection, first, 0.0)
            staged_s.append(time.perf_counter() - start)
            stage_ms.append(outcome.timings_ms["cosine"])
        registry.close_all()

    overhead = [s - b for s, b in zip(staged_s, base_s, strict=True)]
    rows = [
        ["Pipeline.rank, no stages (baseline)", *(f"{percentile_ms(base_s, q):.3f}" for q in (50, 95))],
        ["Pipeline.rank with the cosine stage", *(f"{percentile_ms(staged_s, q):.3f}" for q in (50, 95))],
        ["overhead (difference, per query)", *(f"{percentile_ms(overhead, q):.3f}" for q in (50, 95))],
        ["cosine stage alone (timings_ms)", *(f"{np.percentile(stage_ms, q):.3f}" for q in (50, 95))],
    ]
    print(f"# Cosine Adapter stage overhead: K = 100 candidates, {args.queries} queries, {args.docs} documents\n")
    print(machine_line() + "\n")
    print(f"adapter: {'trained, ' + str(args.adapter) if args.adapter else 'untrained'} ({adapter.family})\n")
    print(markdown_table(["measure", "p50 ms", "p95 ms"], rows))
    print(f"\noverhead p50 / baseline p50 = {np.median(overhead) / np.median(base_s):.2f}")


if __name__ == "__main__":
    main()
