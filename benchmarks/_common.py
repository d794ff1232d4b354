"""Helpers shared by the benchmark scripts here: data paths, BEIR queries and qrels, collections, tables.

Not a benchmark itself; the scripts import it as a sibling module (`python benchmarks/NAME.py` puts this
folder on `sys.path`).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np

from indexes import Collection, Document
from service.encoder import Encoder
from service.encoder_factory import load_encoder
from service.errors import CollectionNotFoundError
from service.ingest import IngestReport, ingest_documents
from service.registry import CollectionRegistry
from service.settings import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The read-only data folder: `$GLASSBOX_DATA`, default `../shared/data` relative to the project root."""
    path = Path(os.environ.get("GLASSBOX_DATA", "../shared/data"))
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def resolve_dataset(spec: str) -> Path:
    """A BEIR directory: `spec` itself when it is a directory, else `<data>/beir/<spec>` (e.g. 'nfcorpus')."""
    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    candidate = data_dir() / "beir" / spec
    if candidate.is_dir():
        return candidate
    raise SystemExit(f"error: dataset {spec!r} is neither a directory nor under {data_dir() / 'beir'}")


def argument_parser(description: str | None) -> argparse.ArgumentParser:
    """An argument parser whose --help shows the script's docstring as written."""
    formatter = argparse.RawDescriptionHelpFormatter
    return argparse.ArgumentParser(description=description, formatter_class=formatter)


def load_documents(dataset: Path, limit: int | None = None) -> list[Document]:
    """The first `limit` documents of a BEIR corpus (all when None), via the service's own reader."""
    from service.datasets import read_documents

    return list(islice(read_documents(dataset), limit))


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads and FAISS's OpenMP threads in this process (0 leaves both as they are).

    FAISS bundles its own OpenMP runtime, so `torch.set_num_threads` alone does not reach it.
    """
    if threads:
        import faiss
        import torch

        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)


def make_encoder(settings: Settings) -> Encoder:
    """The service's encoder (backend and model from GLASSBOX_ENCODER__*), as the server would load it."""
    return load_encoder(settings)


@dataclass(frozen=True)
class CollectionState:
    """How `ensure_collection` left a collection: its size and the ingest it ran (None when reused)."""

    documents: int
    ingest: IngestReport | None


def _is_complete(collection: Collection, documents: Sequence[Document]) -> bool:
    stored = collection.content_hashes([doc.id for doc in documents])
    return all(stored.get(doc.id) == doc.content_hash for doc in documents)


def ensure_collection(
    settings: Settings,
    encoder: Encoder,
    name: str,
    documents: Sequence[Document],
    factory: str | None = None,
) -> CollectionState:
    """Make `name` under `settings.home` hold `documents` unchanged: reuse it when it does, else ingest.

    The check opens the collection read-only, so it works while another process (a server) holds it. Ingest
    resumes a partial collection (unchanged documents are skipped). With `factory`, a reused collection must
    have been built with it.
    """
    root = settings.collections_dir
    probe = CollectionRegistry(root, encoder.identity, settings.index, read_only=True)
    try:
        existing = probe.get(name)
    except CollectionNotFoundError:
        existing = None
    try:
        if existing is not None:
            if factory is not None and existing.config.factory != factory:
                raise SystemExit(
                    f"error: collection {name!r} in {settings.home} uses index {existing.config.factory!r}, "
                    f"not {factory!r}; pick another --home"
                )
            if _is_complete(existing, documents):
                return CollectionState(len(existing), None)
    finally:
        probe.close_all()
    registry = CollectionRegistry(root, encoder.identity, settings.index)
    try:
        collection = registry.get_or_create(name, factory)
        report = ingest_documents(collection, encoder, documents, progress=True)
        count = len(collection)
    finally:
        registry.close_all()
    return CollectionState(count, report)


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation) of durations given in seconds, in milliseconds."""
    return float(np.percentile(np.asarray(seconds) * 1000.0, q))


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def machine_line() -> str:
    """One line naming the machine: cores, CPU model, Python, torch and FAISS (OpenMP) threads."""
    import faiss
    import torch

    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"machine: {os.cpu_count()} cores ({model}), CPU only, Python {platform.python_version()}, "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, "
        f"faiss {faiss.__version__} with {faiss.omp_get_max_threads()} OpenMP threads"
    )


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]], align: str = "") -> str:
    """A Markdown table; `align` holds one of 'l'/'r' per column (default: first left, the rest right)."""
    spec = align or "l" + "r" * (len(headers) - 1)
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(h)), *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        triples = zip(values, widths, spec, strict=True)
        padded = [v.ljust(w) if a == "l" else v.rjust(w) for v, w, a in triples]
        return "| " + " | ".join(padded) + " |"

    rule = ["-" * (w - 1) + ":" if a == "r" else "-" * w for w, a in zip(widths, spec, strict=True)]
    return "\n".join([line([str(h) for h in headers]), "| " + " | ".join(rule) + " |", *map(line, cells)])


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM a server started by a benchmark, SIGKILL it if it has not exited after 30 s."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
