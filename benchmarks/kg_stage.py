"""KG stage latency on real top-10 lists, against the same pipeline without the stage, in the same run; and a
seeded sample of real results with their best path, to check by hand.

The corpus is ingested into a temporary collection (embeddings from GLASSBOX_HOME's cache), the first stage is the
configured hybrid one, K = 100 candidates, top_k = 10. A first pass over the queries links (and stores) the
documents the stage explains, as ingest-time linking would, and fills both stages' in-memory caches alike; the
timed pass then finds the same documents warm for both. The stage is timed with the embedding path on (the
default) and off.

    OMP_NUM_THREADS=1 GLASSBOX_HOME=/work/evalhome .venv/bin/python benchmarks/kg_stage.py --dataset scifact
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np
from kg_data import data_dir, test_queries

from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from evaluation.variants import VariantContext, hybrid_retriever
from service.encoder_factory import load_encoder
from service.kg_stage import KgPathStage
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--sample", type=int, default=30)
    args = parser.parse_args()
    settings = Settings()
    encoder = load_encoder(settings)
    dataset = BeirDataset(data_dir() / "beir" / args.dataset)
    queries = test_queries(args.dataset)
    retriever = hybrid_retriever(VariantContext(settings.adapters_dir, encoder.identity, settings, encoder))
    start = time.perf_counter()
    with_embedding = KgPathStage.from_settings(settings, encoder)
    print(f"stage load (graph + concept-name embeddings, cached): {time.perf_counter() - start:.1f} s")
    without_embedding = KgPathStage.from_settings(
        settings.model_copy(update={"kg": settings.kg.model_copy(update={"embedding_threshold": None})}), encoder
    )
    with CorpusIndex(dataset, settings, encoder, 100, progress=False) as corpus:
        collection = corpus.require_collection()
        for stage in (with_embedding, without_embedding):
            start = time.perf_counter()
            stage.prepare(collection)
            print(f"document-frequency filter for {len(collection)} documents: {time.perf_counter() - start:.1f} s")
        baseline = corpus.pipeline((), retriever)
        pipelines = {"embedding on": corpus.pipeline((with_embedding,), retriever)}
        pipelines["embedding off"] = corpus.pipeline((without_embedding,), retriever)
        first_stages = {q: corpus.first_stage(text, 10, retriever) for q, text in sorted(queries.items())}
        start = time.perf_counter()
        for first_stage, encode_ms in first_stages.values():  # warm-up: links and stores the explained documents
            for pipeline in pipelines.values():
                pipeline.rank(collection, first_stage, encode_ms)
        print(f"warm-up pass (linking documents on first sight): {time.perf_counter() - start:.1f} s")
        base_ms, stage_ms = [], {name: [] for name in pipelines}  # type: list[float], dict[str, list[float]]
        outcomes = {}
        for query_id, (first_stage, encode_ms) in first_stages.items():
            begin = time.perf_counter()
            baseline.rank(collection, first_stage, encode_ms)
            base_ms.append((time.perf_counter() - begin) * 1000.0)
            for name, pipeline in pipelines.items():
                outcome = pipeline.rank(collection, first_stage, encode_ms)
                stage_ms[name].append(outcome.timings_ms["kg"])
                if name == "embedding on":
                    outcomes[query_id] = outcome
    print(f"\n{args.dataset}: {len(queries)} test queries, K = 100 candidates, 10 results explained per query")
    print("| pipeline | rank p50 ms | rank p95 ms | KG stage p50 ms | KG stage p95 ms | coverage (top 10) |")
    print("|---|---|---|---|---|---|")
    print(f"| hybrid (no stage) | {np.percentile(base_ms, 50):.2f} | {np.percentile(base_ms, 95):.2f} | - | - | - |")
    for name, values in stage_ms.items():
        covered = by_edges = total = 0
        if name == "embedding on":
            for outcome in outcomes.values():
                covered += sum(bool(r.breakdown["kg"]["paths"]) for r in outcome.results[:10])
                by_edges += sum(any(p["edges"] for p in r.breakdown["kg"]["paths"]) for r in outcome.results[:10])
                total += len(outcome.results[:10])
        cell = f"{covered / total:.1%} ({by_edges / total:.1%} without shared concepts)" if total else "see evaluate"
        p50, p95 = np.percentile(values, 50), np.percentile(values, 95)
        print(f"| hybrid + kg, {name} | - | - | {p50:.2f} | {p95:.2f} | {cell} |")
    pool = [
        (query_id, rank, result)
        for query_id, outcome in outcomes.items()
        for rank, result in enumerate(outcome.results[:10], start=1)
        if any(path["edges"] for path in result.breakdown["kg"]["paths"])
    ]
    print(f"\nSample of {args.sample} of the {len(pool)} top-10 results with a path of >= 1 edge (random.Random(0)):")
    print("| # | query | claim | rank | document | best path | query span → document span |")
    print("|---|---|---|---|---|---|---|")
    for number, (query_id, rank, result) in enumerate(random.Random(0).sample(pool, args.sample), start=1):
        kg = result.breakdown["kg"]
        best = next(path for path in kg["paths"] if path["edges"])  # the best path with edges
        source = next(c for c in kg["query_concepts"] if c["id"] == best["nodes"][0])
        target = next(c for c in kg["document_concepts"] if c["id"] == best["nodes"][-1])
        claim = queries[query_id].replace("|", "/")
        print(
            f"| {number} | {query_id} | {claim} | {rank} | {result.title[:60]} | {best['rendered']} "
            f"| '{source['text']}' → '{target['text']}' |"
        )


if __name__ == "__main__":
    main()
