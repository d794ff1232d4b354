"""KG build and path-search benchmark: cold build, cached load, size and memory per graph set; path latency.

Each graph set is measured in a fresh subprocess (so memory is that set's alone). Path latency uses SciFact test
queries, each with 10 "results" linked at ingest: as a proxy for the dense top-10, a query's qrels-relevant documents
plus seeded random documents (the service will pass its real top-10).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kg_build.py [--sets biomedical general] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kg_data import corpus, data_dir, percentile, proxy_results, resident_mib, test_qrels, test_queries

from kg import KnowledgeGraph


def measure_set(name: str, cache_dir: Path, latency: bool) -> dict[str, float | str]:
    """Cold build (into an empty cache), cached load, counts, memory; path latency on SciFact when asked."""
    kg_dir = data_dir() / "kg"
    base = resident_mib()
    start = time.perf_counter()
    KnowledgeGraph.load(kg_dir, [name], cache_dir=cache_dir)
    cold = time.perf_counter() - start
    start = time.perf_counter()
    kg = KnowledgeGraph.load(kg_dir, [name], cache_dir=cache_dir)
    cached = time.perf_counter() - start
    row: dict[str, float | str] = {
        "set": name,
        "cold_build_s": cold,
        "cached_load_s": cached,
        "nodes": kg.num_nodes,
        "edges": kg.num_edges,
        "labels": kg.num_labels,
        "rss_mib": resident_mib() - base,
    }
    if latency:
        row.update(path_latency(kg))
    return row


def path_latency(kg: KnowledgeGraph, dataset: str = "scifact") -> dict[str, float]:
    """Per-query link_query and explain_many (10 results) time over the dataset's test queries."""
    docs = corpus(dataset)
    kg = kg.without_frequent_labels(docs.values())
    queries, qrels = test_queries(dataset), test_qrels(dataset)
    results = proxy_results(qrels, sorted(docs))
    stored = {doc_id: kg.link(docs[doc_id]) for ids in results.values() for doc_id in ids}
    link_ms, explain_ms, covered, total = [], [], 0, 0
    for query_id, doc_ids in results.items():
        start = time.perf_counter()
        mentions = kg.link_query(queries[query_id])
        middle = time.perf_counter()
        explained = kg.explain_many(mentions, [stored[d] for d in doc_ids])
        end = time.perf_counter()
        link_ms.append((middle - start) * 1000)
        explain_ms.append((end - middle) * 1000)
        covered += sum(1 for paths in explained if paths)
        total += len(doc_ids)
    both = [a + b for a, b in zip(link_ms, explain_ms, strict=True)]
    return {
        "queries": len(results),
        "link_query_p50_ms": percentile(link_ms, 50),
        "explain10_p50_ms": percentile(explain_ms, 50),
        "explain10_p95_ms": percentile(explain_ms, 95),
        "stage_p50_ms": percentile(both, 50),
        "stage_p95_ms": percentile(both, 95),
        "coverage": covered / total,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="+", default=["biomedical", "general"])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_set(args.one, args.cache_dir, latency=args.one == "biomedical")))
        return
    rows = []
    for name in args.sets:
        with tempfile.TemporaryDirectory(prefix="kg-cache-") as cache_dir:
            command = [sys.executable, __file__, "--one", name, "--cache-dir", cache_dir]
            output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(output.strip().splitlines()[-1]))
    print("| set | cold build s | cached load s | nodes | edges | labels | RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['set']} | {row['cold_build_s']:.1f} | {row['cached_load_s']:.1f} | {row['nodes']:,} | "
            f"{row['edges']:,} | {row['labels']:,} | {row['rss_mib']:.0f} |"
        )
    for row in rows:
        if "queries" in row:
            print()
            print(f"Path search, {row['set']}, SciFact test queries ({row['queries']}), 10 proxy results each:")
            print(
                "| link_query p50 ms | explain 10 p50 ms | explain 10 p95 ms | stage p50 ms | stage p95 ms | coverage |"
            )
            print("|---|---|---|---|---|---|")
            print(
                f"| {row['link_query_p50_ms']:.2f} | {row['explain10_p50_ms']:.2f} | {row['explain10_p95_ms']:.2f} | "
                f"{row['stage_p50_ms']:.2f} | {row['stage_p95_ms']:.2f} | {row['coverage']:.1%} |"
            )


if __name__ == "__main__":
    main()
