"""The harness's `kg` block (`evaluation/kg_report.py`) and the `kg` variant, on a tiny graph and dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evaluation import EvaluationConfig, build_variants, run_evaluation
from evaluation.kg_report import KgCollector
from indexes import Document
from kg import KnowledgeGraph, TriplesFile, build_graph
from service.encoder import SentenceTransformerEncoder
from service.kg_stage import KgPathStage
from service.pipeline import ResultItem, SearchOutcome
from service.settings import KgSettings, Settings
from service.stages import Candidate, QueryContext

TRIPLES = """\
atorvastatin\ttreats\thypertension
hypertension\tpresents\theadache
atorvastatin\tlowers\tldl cholesterol
"""
DOCS = {
    "statin": ("Statins", "Atorvastatin lowers LDL cholesterol."),
    "headache": ("Headache", "Hypertension may cause headache."),
    "vaccine": ("Vaccines", "mRNA vaccines induce antibodies."),
}
QUERIES = {"q1": "Does atorvastatin treat hypertension?", "q2": "How do vaccines work?"}


@pytest.fixture
def triples(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.tsv"
    path.write_text(TRIPLES)
    return path


def outcome_for(stage: KgPathStage, query: str, docs: dict[str, tuple[str, str]] = DOCS) -> SearchOutcome:
    """One query through the stage alone, shaped as the pipeline returns it."""
    documents = [Document(i, t, x) for i, (t, x) in docs.items()]
    candidates = [Candidate(d, np.zeros(4, "f4"), 1.0, n + 1) for n, d in enumerate(documents)]
    result = stage.apply(QueryContext(query, np.zeros(4, "f4")), candidates, np.ones(len(documents), "f4"))
    items = [
        ResultItem(d.id, d.title, d.text, {}, 1.0, None, True, {"kg": dict(e)}, None)
        for d, e in zip(documents, result.candidate_explanations, strict=True)
    ]
    info = {"text": query, "kg": dict(result.query_explanation)}
    return SearchOutcome(items, info, {"kg": float(result.query_explanation["latency_ms"])}, "hybrid+kg")


def test_collector_counts_coverage_with_and_without_shared_concepts(triples: Path) -> None:
    stage = KgPathStage(KnowledgeGraph(build_graph(triples.parent, [], [TriplesFile(triples)])), None)
    collector = KgCollector(stage)
    collector.add(outcome_for(stage, QUERIES["q1"]))  # statin: shared atorvastatin; headache: shared + a path
    collector.add(outcome_for(stage, QUERIES["q2"]))  # nothing linked
    report = collector.report()
    assert report["results"] == 6
    assert report["coverage"] == pytest.approx(2 / 6)
    assert report["coverage_without_shared"] == pytest.approx(2 / 6)  # both also have a path with edges
    assert report["faithfulness"] == 1.0 and report["unfaithful_examples"] == []
    assert report["query_link_rate"] == 0.5
    assert set(report["latency_ms"]) == {"p50", "p95"} and report["mean_paths"] > 0


def test_collector_separates_shared_only_results(triples: Path) -> None:
    stage = KgPathStage(KnowledgeGraph(build_graph(triples.parent, [], [TriplesFile(triples)])), None)
    collector = KgCollector(stage)
    docs = {**DOCS, "headache": ("Headache", "Headache is common.")}
    collector.add(outcome_for(stage, "Is headache common?", docs))  # headache: shared only; statin: a 2-edge path
    report = collector.report()
    assert report["coverage"] == pytest.approx(2 / 3)
    assert report["coverage_without_shared"] == pytest.approx(1 / 3)


def test_collector_flags_unfaithful_results(triples: Path) -> None:
    stage = KgPathStage(KnowledgeGraph(build_graph(triples.parent, [], [TriplesFile(triples)])), None)
    outcome = outcome_for(stage, QUERIES["q1"])
    kg: dict[str, Any] = outcome.results[0].breakdown["kg"]
    kg["paths"] = [{**kg["paths"][0], "edges": [{"head": "atorvastatin", "relation": "cures", "tail": "x"}]}]
    collector = KgCollector(stage)
    collector.add(outcome)
    assert collector.report()["faithfulness"] < 1.0 and collector.report()["unfaithful_examples"]


@pytest.mark.slow
def test_kg_variant_and_harness_block(
    tmp_path: Path, triples: Path, settings: Settings, encoder: SentenceTransformerEncoder
) -> None:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    corpus = "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items())
    (root / "corpus.jsonl").write_text(corpus)
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tstatin\t1\nq2\tvaccine\t1\n")
    kg = KgSettings(graphs=[], triples=[triples], max_document_frequency=1.0, embedding_threshold=None)
    settings = settings.model_copy(update={"kg": kg})
    variants = build_variants(["kg"], tmp_path / "adapters", encoder.identity, settings, encoder)
    assert [v.name for v in variants] == ["dense", "kg"]  # the baseline always runs
    assert isinstance(variants[1].stages[0], KgPathStage) and variants[1].retriever.mode == "hybrid"
    config = EvaluationConfig(dataset=root, variants=["kg"])
    report = run_evaluation(config, settings, encoder, progress=False).report
    block = report["variants"]["kg"]["kg"]
    assert "kg" not in report["variants"]["dense"]
    assert block["results"] == 6  # 2 queries x 3 documents
    assert block["faithfulness"] == 1.0
    assert block["query_link_rate"] == 0.5
    assert block["coverage"] == pytest.approx(2 / 6)
    assert 0.0 <= block["coverage_without_shared"] <= block["coverage"]
    assert report["variants"]["kg"]["first_stage"] == "hybrid"
