"""Per-query overhead of the IMRNN stage for K = 100 candidates, against the same ranking without it.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/imrnn_stage.py [--adapter DIR] [--queries 500] [--docs 5000]

A Flat collection of `--docs` random unit vectors (384-d, MiniLM's width) is built in a temporary directory. For
each of `--queries` random query vectors the first stage (top-100) runs once; then `Pipeline.rank` runs on that
same first stage without stages (the baseline), with the IMRNN stage re-scoring only (no token explanations), and
with re-scoring plus tokens (query shift, and the best `--explained` results), in turn, and all are timed. The
overhead per query is the difference to the baseline; `ImrnnAdapter.modulate` alone is timed too. The word table
is the bundled MiniLM's input embeddings restricted to the served word list (the same words, so the same size and
cost as the encoded table the service builds, without loading the encoder). The adapter comes from `--adapter` (a
trained artifact) or is freshly initialised: its cost depends on its shape, not its weights. The stage limits
numpy's BLAS to `--blas-threads` (default 1, the service's default). Prints Markdown.
"""

from __future__ import annotations

import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import cast

import numpy as np
from _common import argument_parser, machine_line, markdown_table, percentile_ms, set_threads
from threadpoolctl import ThreadpoolController

from adapters import EncoderSignature, ImrnnAdapter, ShiftExplainer
from indexes import Document
from service.encoder import Encoder, EncoderIdentity
from service.imrnn_stage import ImrnnStage
from service.pipeline import Pipeline, SearchQuery
from service.registry import CollectionRegistry
from service.settings import DEFAULT_MODEL, Settings
from service.token_vocabulary import input_vocabulary


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--adapter", type=Path, help="a trained IMRNN folder (default: untrained)")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--explained", type=int, default=10, help="results that get tokens (the default top_k)")
    parser.add_argument("--threads", type=int, default=0, help="torch/FAISS threads (0: leave the defaults)")
    parser.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads in the stage (0: no limit)")
    args = parser.parse_args()
    set_threads(args.threads)

    settings = Settings()
    dimension = 384
    identity = EncoderIdentity(DEFAULT_MODEL, "benchmark", dimension)
    signature = EncoderSignature(identity.name, dimension)
    adapter = ImrnnAdapter.load(args.adapter, signature) if args.adapter else ImrnnAdapter(dimension, blend=0.5)
    started = time.perf_counter()
    vocabulary = input_vocabulary(settings.encoder.model)
    explainer = ShiftExplainer(adapter, vocabulary, top=settings.imrnn.words, pool=settings.imrnn.word_pool)
    load_ms = (time.perf_counter() - started) * 1000.0
    rng = np.random.default_rng(0)

    def unit(n: int) -> np.ndarray:
        x = rng.standard_normal((n, dimension)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    threads = args.blas_threads or None
    encoder = cast(Encoder, object())  # Pipeline.rank never encodes: the queries are vectors already
    with tempfile.TemporaryDirectory() as scratch:
        registry = CollectionRegistry(Path(scratch), identity, settings.index)
        collection = registry.create("bench")
        collection.upsert([Document(f"d{i}", f"title {i}", f"text {i}") for i in range(args.docs)], unit(args.docs))
        pipelines = {
            "baseline": Pipeline(encoder, registry, settings.search),
            "rescore": Pipeline(encoder, registry, settings.search, [ImrnnStage(adapter, blas_threads=threads)]),
            "explain": Pipeline(
                encoder,
                registry,
                settings.search,
                [ImrnnStage(adapter, explainer, explained_results=args.explained, blas_threads=threads)],
            ),
        }
        seconds: dict[str, list[float]] = {name: [] for name in pipelines}
        stage_ms: dict[str, list[float]] = {"rescore": [], "explain": []}
        modulate_s: list[float] = []
        for query in unit(args.queries):
            first = pipelines["baseline"].retrieve(collection, SearchQuery("q", top_k=10), query)
            for name, pipeline in pipelines.items():
                start = time.perf_counter()
                outcome = pipeline.rank(collection, first, 0.0)
                seconds[name].append(time.perf_counter() - start)
                if name in stage_ms:
                    stage_ms[name].append(outcome.timings_ms["imrnn"])
            documents = collection.vectors([m.document.id for m in first.matches])
            with ThreadpoolController().limit(limits=threads, user_api="blas") if threads else nullcontext():
                start = time.perf_counter()
                adapter.modulate(query, documents)
                modulate_s.append(time.perf_counter() - start)
        registry.close_all()

    def overhead(name: str) -> list[float]:
        return [s - b for s, b in zip(seconds[name], seconds["baseline"], strict=True)]

    rows = [
        ["ImrnnAdapter.modulate alone (K = 100)", *(f"{percentile_ms(modulate_s, q):.3f}" for q in (50, 95))],
        ["Pipeline.rank, no stages (baseline)", *(f"{percentile_ms(seconds['baseline'], q):.3f}" for q in (50, 95))],
        ["Pipeline.rank + IMRNN, re-scoring only", *(f"{percentile_ms(seconds['rescore'], q):.3f}" for q in (50, 95))],
        ["overhead, re-scoring only", *(f"{percentile_ms(overhead('rescore'), q):.3f}" for q in (50, 95))],
        ["IMRNN stage alone, re-scoring only", *(f"{np.percentile(stage_ms['rescore'], q):.3f}" for q in (50, 95))],
        [
            f"Pipeline.rank + IMRNN, re-scoring + tokens (query, top {args.explained})",
            *(f"{percentile_ms(seconds['explain'], q):.3f}" for q in (50, 95)),
        ],
        ["overhead, re-scoring + tokens", *(f"{percentile_ms(overhead('explain'), q):.3f}" for q in (50, 95))],
        ["IMRNN stage alone, re-scoring + tokens", *(f"{np.percentile(stage_ms['explain'], q):.3f}" for q in (50, 95))],
    ]
    print(f"# IMRNN stage overhead: K = 100 candidates, {args.queries} queries, {args.docs} documents\n")
    print(machine_line() + "\n")
    print(
        f"adapter: {'trained, ' + str(args.adapter) if args.adapter else 'untrained'} (λ {adapter.blend}); "
        f"word table: {len(vocabulary.tokens)} words, pool {settings.imrnn.word_pool}, {settings.imrnn.words} per "
        f"side, loaded in {load_ms:.0f} ms; numpy BLAS threads in the stage: {threads or 'process default'}\n"
    )
    print(markdown_table(["measure", "p50 ms", "p95 ms"], rows))


if __name__ == "__main__":
    main()
