"""KG linking benchmark: query link rate (exact vs exact + second path) on SciFact and NFCorpus test queries, and
coverage (share of results with >= 1 path); prints a seeded sample of second-path links to check by hand.

Results are a proxy for the dense top-10: each query's qrels-relevant documents plus seeded random documents.
Labels found in more than 5 % of a corpus's documents are dropped (the document-frequency filter), as at ingest.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/kg_linking.py [--datasets scifact nfcorpus] [--sample 30]
"""

from __future__ import annotations

import argparse
import random
import tempfile
from pathlib import Path

from kg_data import corpus, data_dir, proxy_results, test_qrels, test_queries

from kg import KnowledgeGraph, Mention, StemmedLinker, snowball_key


def linked(mentions: list[Mention]) -> bool:
    return bool(mentions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--cache-dir", type=Path, default=Path(tempfile.gettempdir()) / "glassbox-kg-cache")
    args = parser.parse_args()
    base = KnowledgeGraph.load(data_dir() / "kg", ["biomedical"], cache_dir=args.cache_dir)
    rows, sample_pool = [], []
    for dataset in args.datasets:
        docs = corpus(dataset)
        for filtered in (False, True):
            kg = base.without_frequent_labels(docs.values()) if filtered else base
            snowball = StemmedLinker(kg.linker.table, snowball_key)
            queries = test_queries(dataset)
            exact = second = with_snowball = 0
            for query_id, text in sorted(queries.items()):
                exact_mentions = kg.link(text)
                full = kg.link_query(text)
                spans = [(m.start, m.end) for m in exact_mentions]
                extra = [m for m in snowball.link(text) if all(m.end <= a or m.start >= b for a, b in spans)]
                exact += linked(exact_mentions)
                second += linked(full)
                with_snowball += linked(exact_mentions + extra)
                if filtered:
                    sample_pool += [(dataset, query_id, text, m) for m in full if m.method == "stem"]
            coverage = {}
            if filtered:
                results = proxy_results(test_qrels(dataset), sorted(docs))
                stored = {d: kg.link(docs[d]) for ids in results.values() for d in ids}
                for name, link in (("exact", kg.link), ("exact+inflection", kg.link_query)):
                    hits = total = 0
                    for query_id, doc_ids in results.items():
                        explained = kg.explain_many(link(queries[query_id]), [stored[d] for d in doc_ids])
                        hits += sum(1 for paths in explained if paths)
                        total += len(doc_ids)
                    coverage[name] = hits / total
            n = len(queries)
            rows.append((dataset, filtered, n, exact / n, second / n, with_snowball / n, coverage))
    print("Query link rate (share of test queries with >= 1 linked concept that has edges):")
    print("| dataset | DF filter | queries | exact | exact + inflection (default) | exact + snowball |")
    print("|---|---|---|---|---|---|")
    for dataset, filtered, n, a, b, c, _coverage in rows:
        print(f"| {dataset} | {'<= 5 %' if filtered else 'off'} | {n} | {a:.1%} | {b:.1%} | {c:.1%} |")
    print()
    print("Coverage (share of 10 proxy results per query with >= 1 path; DF filter on):")
    print("| dataset | exact query links | exact + inflection |")
    print("|---|---|---|")
    for dataset, filtered, _n, _a, _b, _c, coverage in rows:
        if filtered:
            print(f"| {dataset} | {coverage['exact']:.1%} | {coverage['exact+inflection']:.1%} |")
    print()
    print(f"Seeded sample of {args.sample} second-path (inflection) links, of {len(sample_pool)}:")
    print("| dataset | query | span | concept | concept name |")
    print("|---|---|---|---|---|")
    for dataset, query_id, _text, mention in random.Random(0).sample(sample_pool, min(args.sample, len(sample_pool))):
        name = base.node_name(mention.concept_id)
        print(f"| {dataset} | {query_id} | {mention.label} | {mention.concept_id} | {name} |")


if __name__ == "__main__":
    main()
