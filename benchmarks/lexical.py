"""Glassbox's BM25 index against the bm25s reference on BEIR test queries: nDCG@10, indexing time, query time.

Both use the same analysis (words of 2+ characters, lowercased, Lucene's English stopwords, Snowball English
stemming) and Lucene BM25 with k1 = 1.5, b = 0.75. Glassbox's numbers are for its in-memory index (what a search
reads); the durable copy is the term counts in the document store, written with each document.

    python benchmarks/lexical.py --datasets scifact nfcorpus
"""

from __future__ import annotations

import statistics
import time

import numpy as np
from _common import argument_parser, machine_line, markdown_table, resolve_dataset

from evaluation.beir import BeirDataset
from evaluation.metrics import score_ranking
from indexes import Analyzer, Bm25Index, lexical_text


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--datasets", nargs="+", default=["scifact", "nfcorpus"])
    parser.add_argument("--split", default="test")
    args = parser.parse_args()

    import bm25s
    import Stemmer

    print(machine_line())
    rows = []
    for spec in args.datasets:
        dataset = BeirDataset(resolve_dataset(spec))
        documents = dataset.documents()
        qrels = dataset.split(args.split).qrels
        texts = dataset.queries()
        query_ids = sorted(q for q in qrels if q in texts)
        corpus = [lexical_text(doc) for doc in documents]
        ids = [doc.id for doc in documents]

        analyzer = Analyzer()
        start = time.perf_counter()
        counts = [analyzer.term_counts(text) for text in corpus]
        analyse_s = time.perf_counter() - start
        index = Bm25Index()
        start = time.perf_counter()
        index.upsert(ids, counts)
        index_s = time.perf_counter() - start
        ours: dict[str, list[str]] = {}
        ours_ms = []
        for query_id in query_ids:
            start = time.perf_counter()
            _, found = index.search(analyzer.terms(texts[query_id]), 100)
            ours_ms.append((time.perf_counter() - start) * 1000)
            ours[query_id] = found

        stemmer = Stemmer.Stemmer("english")
        start = time.perf_counter()
        tokens = bm25s.tokenize(corpus, stopwords="en", stemmer=stemmer, show_progress=False)
        reference = bm25s.BM25(k1=1.5, b=0.75)
        reference.index(tokens, show_progress=False)
        reference_index_s = time.perf_counter() - start
        theirs: dict[str, list[str]] = {}
        theirs_ms = []
        for query_id in query_ids:
            start = time.perf_counter()
            query_tokens = bm25s.tokenize([texts[query_id]], stopwords="en", stemmer=stemmer, show_progress=False)
            found_rows, _ = reference.retrieve(query_tokens, k=100, show_progress=False, n_threads=1)
            theirs_ms.append((time.perf_counter() - start) * 1000)
            theirs[query_id] = [ids[int(row)] for row in np.asarray(found_rows)[0]]

        ndcg_ours = score_ranking(qrels, ours).means["ndcg@10"]
        ndcg_theirs = score_ranking(qrels, theirs).means["ndcg@10"]
        rows.append(
            [
                dataset.name,
                len(documents),
                len(query_ids),
                f"{ndcg_ours:.4f}",
                f"{ndcg_theirs:.4f}",
                f"{ndcg_ours - ndcg_theirs:+.4f}",
                f"{analyse_s:.2f} + {index_s:.2f}",
                f"{reference_index_s:.2f}",
                f"{statistics.median(ours_ms):.3f}",
                f"{statistics.median(theirs_ms):.3f}",
            ]
        )
    print(
        markdown_table(
            [
                "dataset",
                "docs",
                "queries",
                "nDCG@10 glassbox",
                "nDCG@10 bm25s",
                "difference",
                "glassbox analyse + index s",
                "bm25s tokenize + index s",
                "glassbox query p50 ms",
                "bm25s query p50 ms",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
