"""KG query linking beyond exact + stem: link rate with the embedding path at several cosine thresholds on SciFact
and NFCorpus test queries, its per-query cost, and seeded samples to check by hand of what the default settings
link: embedding links, adjective (WordNet pertainym) links, last-resort frequent-label links and gene symbols with
separators or Greek letters (queries), and stemmed and symbol document mentions.

Labels (and stemmed keys) in more than 5 % of a corpus's documents are dropped first, as the KG stage does per
collection. Concept-name and word embeddings are read from (or written to) GLASSBOX_HOME/kg, as the service does.
`--encoder-phrases` embeds query phrases with the encoder instead of the static word vectors (the old path).
`--precise` links as `GLASSBOX_KG__PRECISE_LINKING=true` does (embedding links must match the concept name
word by word; no HPO term that is not a phenotype).

    OMP_NUM_THREADS=1 GLASSBOX_HOME=/work/evalhome .venv/bin/python benchmarks/kg_embedding_linking.py
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from kg_data import corpus, test_queries

from kg import KnowledgeGraph
from kg.embedding_linking import EmbeddingOptions
from kg.linking import LinkingOptions
from service.encoder_factory import load_encoder
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[0.65, 0.7, 0.75, 0.8, 0.85])
    parser.add_argument("--sample", type=int, default=30)
    parser.add_argument("--encoder-phrases", action="store_true")
    parser.add_argument("--precise", action="store_true")
    args = parser.parse_args()
    settings = Settings()
    encoder = load_encoder(settings)
    identity = encoder.identity
    name = f"{identity.name}@{identity.revision}/{identity.backend}"
    linking = LinkingOptions(precise=args.precise)
    base = KnowledgeGraph.load(settings.data / "kg", ["biomedical"], cache_dir=settings.home / "kg", linking=linking)
    start = time.perf_counter()
    options = EmbeddingOptions(
        threshold=settings.kg.embedding_threshold or 0.7,
        static=not args.encoder_phrases,
        require_lexical_match=args.precise,
    )
    base = base.with_embedding_linker(lambda texts: encoder.encode(texts), name, settings.home / "kg", options)
    linker = base.embedding_linker
    assert linker is not None
    print(f"concept names embedded: {len(linker.labels)} ({time.perf_counter() - start:.1f} s, cached after once)")
    print(f"threshold {options.threshold}, static phrases: {options.static}, precise: {args.precise}")
    print("| dataset | queries | exact+stem | " + " | ".join(f"+emb >= {t}" for t in args.thresholds) + " | default |")
    print("|---|---|---|" + "---|" * len(args.thresholds) + "---|")
    pools: dict[str, list[tuple[str, str, str, str, str]]] = {
        kind: [] for kind in ("embedding", "pertainym", "frequent", "symbol", "document stem", "document symbol")
    }
    costs: list[float] = []
    rng = random.Random(0)
    for dataset in args.datasets:
        texts = corpus(dataset)
        kg = base.without_frequent_labels(texts.values())
        table = kg.linker.table
        queries = test_queries(dataset)
        linked_base = linked_default = 0
        linked = dict.fromkeys(args.thresholds, 0)
        for query_id, text in sorted(queries.items()):
            mentions = kg.link_query(text)
            linked_default += bool(mentions)
            without = [m for m in mentions if m.method in ("exact", "stem")]  # the columns: exact + stem + embedding
            linked_base += bool(without)
            taken = [(m.start, m.end) for m in without]
            begin = time.perf_counter()
            found = linker.candidates(text, taken)
            costs.append((time.perf_counter() - begin) * 1000.0)
            for threshold in args.thresholds:
                hit = any(score >= threshold and label in table.entries for _, label, score in found)
                linked[threshold] += bool(without) or hit
            for method in ("embedding", "pertainym", "frequent", "symbol"):
                first = next((m for m in mentions if m.method == method), None)
                if first is not None:  # one per query: its first link of that kind
                    pools[method].append(
                        (dataset, query_id, first.label, first.concept_id, kg.node_name(first.concept_id))
                    )
        for doc_id in rng.sample(sorted(texts), 200):
            found = kg.link(texts[doc_id])
            for method in ("stem", "symbol"):
                of_method = [m for m in found if m.method == method]
                if of_method:  # one per document
                    m = rng.choice(of_method)
                    row = (dataset, doc_id, m.label, m.concept_id, kg.node_name(m.concept_id))
                    pools[f"document {method}"].append(row)
        n = len(queries)
        cells = " | ".join(f"{linked[t] / n:.1%}" for t in args.thresholds)
        print(f"| {dataset} | {n} | {linked_base / n:.1%} | {cells} | {linked_default / n:.1%} |")
    print(f"\nembedding path per query: p50 {np.percentile(costs, 50):.2f} ms, p95 {np.percentile(costs, 95):.2f} ms")
    print("(default = the stage's query linking: exact, symbol, stem, pertainym, embedding fallback, frequent)")
    for method, pool in pools.items():
        sample = random.Random(0).sample(pool, min(args.sample, len(pool)))
        print(f"\nSample of {len(sample)} of {len(pool)} {method} links (random.Random(0)):")
        print("| # | dataset | query / document | span | concept | concept name |")
        print("|---|---|---|---|---|---|")
        for number, (dataset, item, span, concept, concept_name) in enumerate(sample, start=1):
            print(f"| {number} | {dataset} | {item} | {span} | {concept} | {concept_name} |")


if __name__ == "__main__":
    main()
