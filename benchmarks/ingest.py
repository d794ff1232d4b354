"""Ingest throughput: Glassbox's `ingest_documents` against a plain `SentenceTransformer.encode`, same run.

Run:  HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/ingest.py [--docs 1000] [--repeats 2] [--dataset DIR]

Both sides embed the same texts (title + " " + text, as `document_text` builds them) with the same loaded
model object. The baseline is `model.encode(texts, batch_size=32, normalize_embeddings=True)` in one call. The
Glassbox side creates a fresh Flat collection in a temporary GLASSBOX home and times create +
`ingest_documents` (length sort, 512-document chunks, SQLite + in-memory FAISS writes) + close (the FAISS
snapshot written to disk). The two are measured alternately (baseline, glassbox, baseline, glassbox, ...)
after one warm-up encode, and the ratio of the medians glassbox/baseline is reported (target >= 0.9). Then, as
`glassbox ingest` runs, through the embedding cache: once into a first collection (cold: every text encoded and
cached) and once into a second one (warm: every embedding reused).
Prints Markdown to stdout. `--threads N` pins torch's and FAISS's threads (both sides run in this process).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    argument_parser,
    data_dir,
    load_documents,
    machine_line,
    markdown_table,
    median,
    resolve_dataset,
    set_threads,
)

from indexes import Document
from service.embedding_cache import CachingEncoder, embedding_cache_path
from service.encoder import Encoder, SentenceTransformerEncoder, document_text
from service.ingest import ingest_documents
from service.registry import CollectionRegistry
from service.settings import Settings

TARGET_RATIO = 0.9
CACHE_RUNS = [("cold: a first collection (fills the cache)", "cache-cold"), ("warm: a second collection", "cache-warm")]
WARMUP_TEXTS = 16


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argument_parser(__doc__)
    parser.add_argument(
        "--dataset",
        default=str(data_dir() / "beir" / "scifact"),
        help="BEIR directory (or a name under $GLASSBOX_DATA/beir); default SciFact",
    )
    parser.add_argument("--docs", type=int, default=1000, help="first N corpus documents (default 1000)")
    parser.add_argument("--repeats", type=int, default=2, help="baseline/glassbox pairs (default 2)")
    parser.add_argument("--batch-size", type=int, default=32, help="encoder batch size (default 32)")
    parser.add_argument("--threads", type=int, default=0, help="torch and FAISS threads (0: library default)")
    args = parser.parse_args(argv)
    if args.docs < 1 or args.repeats < 1 or args.batch_size < 1 or args.threads < 0:
        parser.error("--docs, --repeats and --batch-size must be >= 1, --threads >= 0")
    return args


def time_baseline(model: Any, texts: list[str], batch_size: int) -> float:
    """Seconds for one plain sentence-transformers encode of all texts."""
    start = time.perf_counter()
    model.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return time.perf_counter() - start


def time_glassbox(settings: Settings, encoder: Encoder, documents: list[Document], name: str) -> tuple[float, float]:
    """Into a new collection: (seconds for create + ingest + close, seconds inside `ingest_documents`)."""
    start = time.perf_counter()
    registry = CollectionRegistry(settings.collections_dir, encoder.identity, settings.index)
    try:
        collection = registry.create(name, "Flat")
        report = ingest_documents(collection, encoder, documents, progress=False)
        if report.written != len(documents):
            raise RuntimeError(f"ingest wrote {report.written} of {len(documents)} documents")
    finally:
        registry.close_all()
    return time.perf_counter() - start, report.seconds


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dataset = resolve_dataset(args.dataset)
    documents = load_documents(dataset, args.docs)
    texts = [document_text(doc.title, doc.text) for doc in documents]
    count = len(documents)
    set_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="glassbox-bench-ingest-") as home:
        settings = Settings(home=Path(home))
        encoder_settings = settings.encoder.model_copy(update={"batch_size": args.batch_size})
        encoder = SentenceTransformerEncoder(encoder_settings)
        model = encoder.model
        time_baseline(model, texts[:WARMUP_TEXTS], args.batch_size)  # warm-up: first-call allocations
        rows: list[list[object]] = []
        baseline_rates: list[float] = []
        glassbox_rates: list[float] = []
        for repeat in range(1, args.repeats + 1):
            seconds = time_baseline(model, texts, args.batch_size)
            baseline_rates.append(count / seconds)
            rows.append(
                [
                    repeat,
                    "baseline: SentenceTransformer.encode",
                    f"{seconds:.2f}",
                    "",
                    f"{count / seconds:.1f}",
                ]
            )
            seconds, inside = time_glassbox(settings, encoder, documents, f"bench-{repeat}")
            glassbox_rates.append(count / seconds)
            rows.append(
                [
                    repeat,
                    "glassbox: create + ingest_documents + close",
                    f"{seconds:.2f}",
                    f"{inside:.2f}",
                    f"{count / seconds:.1f}",
                ]
            )
        # as `glassbox ingest` runs: through the embedding cache; a first collection fills it, a second reuses it
        cache = CachingEncoder(encoder, embedding_cache_path(settings.home))
        cached = [(label, time_glassbox(settings, cache, documents, name)[0]) for label, name in CACHE_RUNS]
        cache.close()
    baseline, glassbox = median(baseline_rates), median(glassbox_rates)
    ratio = glassbox / baseline
    verdict = "meets" if ratio >= TARGET_RATIO else "BELOW"
    print(f"# Ingest throughput: {count} documents of {dataset.name}, batch size {args.batch_size}\n")
    print(machine_line() + "\n")
    headers = ["repeat", "method", "seconds", "of which ingest_documents s", "docs/s"]
    print(markdown_table(headers, rows, "rlrrr"))
    print()
    print(
        markdown_table(
            ["method", "median docs/s", "ratio to baseline"],
            [
                ["baseline: SentenceTransformer.encode", f"{baseline:.1f}", "1.00"],
                ["glassbox: ingest end-to-end", f"{glassbox:.1f}", f"{ratio:.2f}"],
            ],
        )
    )
    print(f"\nratio glassbox/baseline = {ratio:.3f} ({verdict} the target >= {TARGET_RATIO})\n")
    cache_rows = [
        [label, f"{seconds:.2f}", f"{count / seconds:.1f}", f"{count / seconds / baseline:.2f}"]
        for label, seconds in cached
    ]
    print(markdown_table(["through the embedding cache", "seconds", "docs/s", "ratio to baseline"], cache_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
