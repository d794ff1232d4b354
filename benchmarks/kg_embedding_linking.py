"""KG query linking, third path: link rate of exact + stem + embedding (nearest concept name) at several cosine
thresholds on SciFact and NFCorpus test queries, the path's per-query cost, and a seeded sample to check by hand.

Labels in more than 5 % of a corpus's documents are dropped first (as the KG stage does per collection).
Concept-name embeddings are read from (or written to) GLASSBOX_HOME/kg, as the service does.

    OMP_NUM_THREADS=1 GLASSBOX_HOME=/work/evalhome .venv/bin/python benchmarks/kg_embedding_linking.py
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from kg_data import corpus, test_queries

from kg import KnowledgeGraph
from service.encoder_factory import load_encoder
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.7, 0.75, 0.8, 0.85, 0.9])
    parser.add_argument("--sample-threshold", type=float, default=0.8)
    parser.add_argument("--sample", type=int, default=30)
    args = parser.parse_args()
    settings = Settings()
    encoder = load_encoder(settings)
    identity = encoder.identity
    name = f"{identity.name}@{identity.revision}/{identity.backend}"
    base = KnowledgeGraph.load(settings.data / "kg", ["biomedical"], cache_dir=settings.home / "kg")
    start = time.perf_counter()
    base = base.with_embedding_linker(lambda texts: encoder.encode(texts), name, settings.home / "kg")
    linker = base.embedding_linker
    assert linker is not None
    print(f"concept names embedded: {len(linker.labels)} ({time.perf_counter() - start:.1f} s, cached after once)")
    print("| dataset | queries | exact+stem | " + " | ".join(f"+emb >= {t}" for t in args.thresholds) + " |")
    print("|---|---|---|" + "---|" * len(args.thresholds))
    pool = []
    costs: list[float] = []
    for dataset in args.datasets:
        kg = base.without_frequent_labels(corpus(dataset).values())
        table = kg.linker.table
        queries = test_queries(dataset)
        linked_base = 0
        linked = dict.fromkeys(args.thresholds, 0)
        for query_id, text in sorted(queries.items()):
            without = [m for m in kg.link_query(text) if m.method != "embedding"]
            linked_base += bool(without)
            taken = [(m.start, m.end) for m in without]
            begin = time.perf_counter()
            found = linker.candidates(text, taken)
            costs.append((time.perf_counter() - begin) * 1000.0)
            for threshold in args.thresholds:
                hit = any(score >= threshold and label in table.entries for _, label, score in found)
                linked[threshold] += bool(without) or hit
            for phrase, label, score in found:
                if score >= args.sample_threshold and label in table.entries:
                    pool.append((dataset, query_id, phrase.text, label, round(score, 3)))
                    break  # the best phrase of the query
        n = len(queries)
        cells = " | ".join(f"{linked[t] / n:.1%}" for t in args.thresholds)
        print(f"| {dataset} | {n} | {linked_base / n:.1%} | {cells} |")
    print(f"\nembedding path per query: p50 {np.percentile(costs, 50):.1f} ms, p95 {np.percentile(costs, 95):.1f} ms")
    sample = random.Random(0).sample(pool, min(args.sample, len(pool)))
    print(f"\nSample of best embedding links at >= {args.sample_threshold} (of {len(pool)}):")
    print("| # | dataset | query | phrase | concept name | cosine |")
    print("|---|---|---|---|---|---|")
    for number, (dataset, query_id, phrase, label, score) in enumerate(sample, start=1):
        print(f"| {number} | {dataset} | {query_id} | {phrase} | {label} | {score} |")


if __name__ == "__main__":
    main()
