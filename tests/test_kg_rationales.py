"""Shared-concept rationales, path-ranking penalties and gene-symbol case on tiny hand-made graphs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes import Document
from kg import KnowledgeGraph, PathOptions, PathRationale, TriplesFile, build_graph
from kg.builder import GraphBuilder
from kg.embedding_linking import EmbeddingLinker, EmbeddingOptions
from kg.linking import symbol_case_matches
from kg.paths import PathSearch
from service.kg_stage import KgPathStage, unfaithful
from service.stages import Candidate, QueryContext

TRIPLES = """\
atorvastatin\ttreats\thypertension
hypertension\tpresents\theadache
atorvastatin\tlowers\tldl cholesterol
"""


@pytest.fixture
def graph(tmp_path: Path) -> KnowledgeGraph:
    path = tmp_path / "tiny.tsv"
    path.write_text(TRIPLES)
    return KnowledgeGraph(build_graph(tmp_path, [], [TriplesFile(path)]))


def test_shared_concept_is_a_zero_edge_rationale_ranked_first(graph: KnowledgeGraph) -> None:
    query = graph.link_query("Atorvastatin and hypertension")
    paths = graph.explain(query, graph.link("Hypertension causes headache."))
    assert paths[0] == PathRationale((), 1.0, "hypertension", "hypertension")
    assert paths[0].shared and paths[0].source == paths[0].target == "hypertension"
    assert paths[0].render() == "hypertension (in query and document)"
    assert [p.render() for p in paths[1:]] == ["hypertension —presents→ headache"]
    assert all(p.score < paths[0].score for p in paths[1:])


def test_shared_concepts_can_be_turned_off(tmp_path: Path, graph: KnowledgeGraph) -> None:
    off = KnowledgeGraph(graph.graph, paths=PathOptions(shared_concepts=False))
    paths = off.explain(off.link_query("hypertension"), off.link("Hypertension causes headache."))
    assert [p.render() for p in paths] == ["hypertension —presents→ headache"]


def test_shared_concepts_share_the_per_result_limit(graph: KnowledgeGraph) -> None:
    one = KnowledgeGraph(graph.graph, paths=PathOptions(max_paths=1))
    paths = one.explain(one.link_query("hypertension"), one.link("Hypertension causes headache."))
    assert [p.render() for p in paths] == ["hypertension (in query and document)"]


def test_stage_reports_a_faithful_shared_concept(graph: KnowledgeGraph) -> None:
    stage = KgPathStage(graph, None)
    doc = Document("d", "Blood pressure", "Hypertension causes headache.")
    query = "Is hypertension harmful?"
    result = stage.apply(
        QueryContext(query, np.zeros(4, "f4")), [Candidate(doc, np.zeros(4, "f4"), 1.0, 1)], np.ones(1, "f4")
    )
    explanation: dict[str, Any] = dict(result.candidate_explanations[0])
    shared = explanation["paths"][0]
    assert shared["shared"] and shared["nodes"] == ["hypertension"] and shared["edges"] == []
    assert shared["rendered"] == "hypertension (in query and document)"
    assert [c["text"] for c in explanation["query_concepts"]] == ["hypertension"]
    assert {c["text"] for c in explanation["document_concepts"]} >= {"Hypertension"}
    info = result.query_explanation
    assert unfaithful(graph.graph, query, doc.title, doc.text, info, explanation) == []
    # a shared concept whose document span is gone, or that claims edges it lacks, is flagged
    moved = {
        **explanation,
        "document_concepts": [{**c, "start": c["start"] + 1} for c in explanation["document_concepts"]],
    }
    assert unfaithful(graph.graph, query, doc.title, doc.text, info, moved)
    not_shared = {**explanation, "paths": [{**shared, "shared": False}]}
    assert unfaithful(graph.graph, query, doc.title, doc.text, info, not_shared)
    not_in_query = {**explanation, "query_concepts": []}
    assert unfaithful(graph.graph, query, doc.title, doc.text, info, not_in_query)


def _detour_graph() -> GraphBuilder:
    b = GraphBuilder()
    for node, name, kind in [
        ("Q", "query disease", "Disease"),
        ("G", "GENE1", "Gene"),
        ("A", "some anatomy", "Anatomy"),
        ("T", "target disease", "Disease"),
    ]:
        b.add_node(node, name, kind)
    b.add_edge("Q", "associates", "G")
    b.add_edge("G", "associates", "T")
    b.add_edge("Q", "localizes", "A")
    b.add_edge("A", "localizes", "T")
    b.add_edge("A", "localizes", "Q")  # A has a higher degree than G: without a gene penalty, G wins
    return b


def test_gene_detours_are_penalised_unless_the_query_names_a_gene() -> None:
    g = _detour_graph().build()
    plain = PathSearch(g, PathOptions(kind_penalty=0.0)).paths(["Q"], ["T"], 2)
    assert [e.end for e in plain[0].edges] == ["G", "T"]
    penalised = PathSearch(g, PathOptions(kind_penalty=2.0)).paths(["Q"], ["T"], 2)
    assert [e.end for e in penalised[0].edges] == ["A", "T"]
    with_gene = PathSearch(g, PathOptions(kind_penalty=2.0)).paths(["Q", "G"], ["T"], 2)
    assert with_gene[0].source == "G"  # a query gene: one edge, no penalty
    with pytest.raises(ValueError, match="penalties must be non-negative"):
        PathOptions(end_penalty=-1.0)


def test_end_penalty_lowers_generic_end_points() -> None:
    b = GraphBuilder()
    for node, kind in [("Q", "Disease"), ("HUB", "Pathway"), ("S", "Disease")]:
        b.add_node(node, node.lower(), kind)
    b.add_edge("Q", "participates", "HUB")
    b.add_edge("Q", "resembles", "S")
    for i in range(50):
        b.add_node(f"N{i}", f"n{i}", "Gene")
        b.add_edge(f"N{i}", "participates", "HUB")
    g = b.build()
    plain = PathSearch(g, PathOptions(end_penalty=0.0)).paths(["Q"], ["HUB", "S"], 1)
    assert plain[0].score == plain[1].score
    ranked = PathSearch(g, PathOptions(end_penalty=0.5)).paths(["Q"], ["HUB", "S"], 1)
    assert ranked[0].target == "S" and ranked[0].score > ranked[1].score


def test_gene_symbols_match_only_when_written_as_symbols() -> None:
    b = GraphBuilder()
    b.add_node("Gene::1", "POLI", "Gene")
    b.add_node("Gene::2", "BCL2", "Gene")
    b.add_node("D", "apoptosis", "Disease")
    b.add_edge("Gene::1", "participates", "D")
    b.add_edge("Gene::2", "participates", "D")
    kg = KnowledgeGraph(b.build())
    assert [m.concept_id for m in kg.link("Mice lacking polI; POLI and Bcl2 and BCL2")] == [
        "Gene::1",
        "Gene::2",
        "Gene::2",
    ]
    assert symbol_case_matches("Poli", "POLI")  # mouse style is accepted


def test_embedding_path_is_a_fallback_and_caches_phrases(graph: KnowledgeGraph) -> None:
    calls: list[list[str]] = []
    axes = {"hypertension": [1.0, 0.0], "high blood pressure": [0.96, 0.28]}

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        return np.asarray([axes.get(t.lower(), [0.0, 1.0]) for t in texts], "f4")

    linker = EmbeddingLinker(["hypertension"], np.asarray([[1.0, 0.0]], "f4"), encode, EmbeddingOptions())
    kg = KnowledgeGraph(graph.graph, linker=graph.linker, embedding_linker=linker)
    assert [m.method for m in kg.link_query("high blood pressure")] == ["embedding"]
    assert len(calls) == 1
    assert [m.method for m in kg.link_query("high blood pressure")] == ["embedding"]
    assert len(calls) == 1  # every phrase came from the cache
    assert [m.method for m in kg.link_query("atorvastatin and high blood pressure")] == ["exact"]
    assert len(calls) == 1  # exact links found: the embedding path did not run
    always = EmbeddingLinker(linker.labels, linker.vectors, encode, EmbeddingOptions(fallback_only=False))
    both = KnowledgeGraph(graph.graph, linker=graph.linker, embedding_linker=always)
    assert [m.method for m in both.link_query("atorvastatin and high blood pressure")] == ["exact", "embedding"]
