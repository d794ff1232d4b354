"""Where the KG stage's coverage comes from: query link rate and top-10 coverage under several query-linking
settings on one BEIR split (default: SciFact *train*, the split settings are chosen on), and how many unlinked
queries name a concept that the graph holds but cannot reach because it has no edges.

Every row runs the real stage (`KgPathStage.from_settings` with the row's settings) on the hybrid first stage's
top 10, as `glassbox evaluate --variants kg` does. Rows:

- default settings;
- embedding threshold 0.65 and 0.75 (more or fewer embedding links);
- `GLASSBOX_KG__PRECISE_LINKING=true` (embedding links must match the concept name word by word; no HPO term
  that is not a phenotype in queries or documents);
- embedding path off; adjective (WordNet pertainym) path off; frequent-label last resort off.

    OMP_NUM_THREADS=1 GLASSBOX_ENCODER__THREADS=1 HF_HUB_OFFLINE=1 GLASSBOX_HOME=/work/evalhome \\
        .venv/bin/python benchmarks/kg_coverage.py --dataset scifact --split train
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import Any

from kg_data import data_dir

from evaluation.beir import BeirDataset
from evaluation.corpus import CorpusIndex
from evaluation.variants import VariantContext, hybrid_retriever
from kg.linking import EntityLinker, LabelTable
from kg.stopwords import STOPWORDS
from kg.text import normalise
from service.encoder_factory import load_encoder
from service.kg_stage import KgPathStage, collection_texts
from service.settings import Settings

ROWS: dict[str, dict[str, Any]] = {
    "default": {},
    "embedding threshold 0.65": {"embedding_threshold": 0.65},
    "embedding threshold 0.75": {"embedding_threshold": 0.75},
    "precise linking": {"precise_linking": True},
    "embedding path off": {"embedding_threshold": None},
    "adjective (pertainym) path off": {"query_pertainyms": False},
    "frequent-label last resort off": {"frequent_query_fallback": False},
}
PRECISE_METHODS = frozenset({"exact", "stem", "symbol", "pertainym"})


def edgeless_linker(stage: KgPathStage, texts: list[str], max_document_frequency: float) -> EntityLinker:
    """A linker for the names of the graph's nodes that have no edge (gene symbols left out), less the labels too
    short, stop words and labels in more than `max_document_frequency` of `texts`, as the stage filters its own."""
    graph = stage.graph.graph
    entries: dict[str, tuple[str, tuple[str, ...]]] = {}
    for index in range(graph.num_nodes):
        if graph.degree[index] or graph.kinds[index] == "Gene":
            continue
        for label in (graph.names[index], *graph.synonyms[index]):
            key = normalise(label)
            if len(key) >= 3 and key not in STOPWORDS and any(char.isalpha() for char in key):
                found = entries.setdefault(key, (label, ()))
                entries[key] = (found[0], (*found[1], graph.node_ids[index]))
    return EntityLinker(LabelTable(entries)).without_frequent_labels(texts, max_document_frequency)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="scifact")
    parser.add_argument("--split", default="train", help="train (less the seeded dev share), dev or test")
    args = parser.parse_args()
    settings = Settings()
    encoder = load_encoder(settings)
    dataset = BeirDataset(data_dir() / "beir" / args.dataset)
    split = dataset.split(args.split)
    texts = dataset.queries()
    queries = {q: texts[q] for q in sorted(split.qrels) if q in texts}
    retriever = hybrid_retriever(VariantContext(settings.adapters_dir, encoder.identity, settings, encoder))
    stages = {
        name: KgPathStage.from_settings(
            settings.model_copy(update={"kg": settings.kg.model_copy(update=update)}), encoder
        )
        for name, update in ROWS.items()
    }
    print(f"{args.dataset} {args.split}: {len(queries)} queries, hybrid top 10, biomedical graphs")
    print("| query linking | query link rate | coverage | coverage without shared | mean rationales |")
    print("|---|---|---|---|---|")
    unlinked: list[str] = []
    with CorpusIndex(dataset, settings, encoder, 100, progress=False) as corpus:
        collection = corpus.require_collection()
        first_stages = {q: corpus.first_stage(text, 10, retriever) for q, text in queries.items()}
        for name, stage in stages.items():
            pipeline = corpus.pipeline((stage,), retriever)
            linked = covered = by_edges = rationales = results = 0
            for query_id, (first_stage, encode_ms) in first_stages.items():
                outcome = pipeline.rank(collection, first_stage, encode_ms)
                concepts = outcome.query["kg"]["linked_concepts"]
                linked += bool(concepts)
                if name == "default" and not any(c["method"] in PRECISE_METHODS for c in concepts):
                    unlinked.append(query_id)
                for result in outcome.results[:10]:
                    paths = result.breakdown["kg"]["paths"]
                    results += 1
                    covered += bool(paths)
                    by_edges += any(path["edges"] for path in paths)
                    rationales += len(paths)
            print(
                f"| {name} | {linked / len(queries):.1%} | {covered / results:.1%} | {by_edges / results:.1%} "
                f"| {rationales / results:.2f} |"
            )
        documents = collection_texts(collection)
    linker = edgeless_linker(stages["default"], documents, settings.kg.max_document_frequency)
    graph = stages["default"].graph.graph
    naming: dict[str, list[tuple[str, str]]] = {}  # query id -> (label, kind) of each edge-less concept it names
    for query_id in unlinked:
        found = linker.link(queries[query_id])
        if found:
            naming[query_id] = list(
                dict.fromkeys((m.label, graph.kinds[graph.node_index(m.concept_id)]) for m in found)
            )
    kinds = Counter(kind for names in naming.values() for kind in {kind for _label, kind in names})
    print(
        f"\n{len(unlinked)} queries have no exact, stem, symbol or pertainym link; {len(naming)} of them "
        f"({len(naming) / len(queries):.1%} of all queries) name a concept that is in the graph but has no edge"
    )
    print("queries per kind of such concept: " + ", ".join(f"{kind} {count}" for kind, count in kinds.most_common()))
    for query_id, names in list(naming.items())[:15]:
        shown = ", ".join(f"{label} ({kind})" for label, kind in names[:3])
        print(f"- {query_id}: {queries[query_id][:90]} → {shown}")


if __name__ == "__main__":
    main()
