"""First-stage latency per query: dense (FAISS + document fetch) against BM25 and the fused hybrid, same run.

The corpus is ingested into a temporary collection through the embedding cache (GLASSBOX_HOME/cache), the test
queries are encoded once up front, and then each first stage is timed on every query, the three interleaved
query by query so that machine noise hits them alike. Encoding is excluded: it is the same for all three.
The "added" column is the hybrid's p50 minus the dense p50 — what turning the lexical arm and fusion on costs.

    python benchmarks/first_stage.py --dataset scifact --rounds 3
"""

from __future__ import annotations

import time

from _common import argument_parser, machine_line, markdown_table, percentile_ms, resolve_dataset, set_threads

from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from service.encoder_factory import load_encoder
from service.first_stage import DenseRetriever, FirstStageRetriever, HybridRetriever, LexicalRetriever
from service.settings import Settings


def main() -> None:
    parser = argument_parser(__doc__)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--split", default="test")
    parser.add_argument("--rounds", type=int, default=3, help="passes over the queries")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)
    settings = Settings()
    encoder = load_encoder(settings)
    dataset = BeirDataset(resolve_dataset(args.dataset))
    texts = dataset.queries()
    query_ids = sorted(q for q in dataset.split(args.split).qrels if q in texts)
    k = settings.search.candidates
    retrievers: dict[str, FirstStageRetriever] = {
        "dense": DenseRetriever(),
        "bm25": LexicalRetriever(),
        "hybrid (convex)": HybridRetriever("convex", 0.5),
        "hybrid (rrf)": HybridRetriever("rrf"),
    }
    seconds: dict[str, list[float]] = {name: [] for name in retrievers}
    with CorpusIndex(dataset, settings, encoder, k, progress=False) as corpus:
        collection = corpus.require_collection()
        embeddings = corpus.cache.encode([texts[q] for q in query_ids])
        for _ in range(args.rounds):
            for query_id, embedding in zip(query_ids, embeddings, strict=True):
                for name, retriever in retrievers.items():
                    start = time.perf_counter()
                    retriever.retrieve(collection, texts[query_id], embedding, k, {}, 1)
                    seconds[name].append(time.perf_counter() - start)
        documents = len(collection)
    print(machine_line())
    queries = f"{len(query_ids)} {args.split} queries x {args.rounds} rounds"
    print(f"{dataset.name}: {documents} documents, {queries}, K = {k}")
    dense_p50 = percentile_ms(seconds["dense"], 50)
    rows = [
        [
            name,
            f"{percentile_ms(values, 50):.3f}",
            f"{percentile_ms(values, 95):.3f}",
            f"{percentile_ms(values, 50) - dense_p50:+.3f}",
            f"{percentile_ms(values, 50) / dense_p50:.2f}x",
        ]
        for name, values in seconds.items()
    ]
    print(markdown_table(["first stage", "p50 ms", "p95 ms", "added vs dense (p50 ms)", "ratio to dense"], rows))


if __name__ == "__main__":
    main()
