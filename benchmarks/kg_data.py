"""Helpers for the kg benchmarks: the data folder, BEIR test queries, qrels and corpora, a proxy result list.

Not a benchmark itself; `python benchmarks/kg_build.py` puts this folder on `sys.path`.
"""

from __future__ import annotations

import json
import os
import random
import resource
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """`$GLASSBOX_DATA`, default `../shared/data` relative to the project root."""
    path = Path(os.environ.get("GLASSBOX_DATA", "../shared/data"))
    return path if path.is_absolute() else (PROJECT_ROOT / path).resolve()


def test_queries(dataset: str) -> dict[str, str]:
    """Query id → text for the queries that have test qrels."""
    root = data_dir() / "beir" / dataset
    with (root / "qrels" / "test.tsv").open() as handle:
        ids = {line.split("\t")[0] for line in handle if line.strip() and not line.startswith("query-id")}
    with (root / "queries.jsonl").open() as handle:
        rows = [json.loads(line) for line in handle]
    return {row["_id"]: row["text"] for row in rows if row["_id"] in ids}


def test_qrels(dataset: str) -> dict[str, list[str]]:
    """Query id → relevant doc ids (grade > 0) of the test split."""
    relevant: dict[str, list[str]] = {}
    with (data_dir() / "beir" / dataset / "qrels" / "test.tsv").open() as handle:
        for line in handle:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) == 3 and fields[0] != "query-id" and int(fields[2]) > 0:
                relevant.setdefault(fields[0], []).append(fields[1])
    return relevant


def corpus(dataset: str) -> dict[str, str]:
    """Doc id → `title + " " + text`."""
    with (data_dir() / "beir" / dataset / "corpus.jsonl").open() as handle:
        rows = [json.loads(line) for line in handle]
    return {row["_id"]: f"{row.get('title', '')} {row['text']}".strip() for row in rows}


def proxy_results(qrels: dict[str, list[str]], doc_ids: list[str], k: int = 10, seed: int = 0) -> dict[str, list[str]]:
    """A stand-in for each query's top-k: its relevant docs, then seeded random docs up to k."""
    rng = random.Random(seed)
    results = {}
    for query_id, relevant in sorted(qrels.items()):
        chosen = list(dict.fromkeys(relevant))[:k]
        while len(chosen) < k:
            candidate = rng.choice(doc_ids)
            if candidate not in chosen:
                chosen.append(candidate)
        results[query_id] = chosen
    return results


def resident_mib() -> float:
    """Current resident memory of this process in MiB (from /proc; peak from getrusage elsewhere)."""
    try:
        with open("/proc/self/statm") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank) of values."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]
