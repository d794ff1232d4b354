"""The KG path stage on a tiny hand-made graph: explanations, faithfulness, the mention store, and the API."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from indexes import Document
from kg import KnowledgeGraph, Mention, TriplesFile, build_graph
from kg.embedding_linking import EmbeddingLinker, query_phrases
from service.api import create_app
from service.encoder import SentenceTransformerEncoder
from service.kg_stage import KgPathStage, unfaithful
from service.mention_store import FieldMention, MentionStore
from service.settings import Settings
from service.stages import Candidate, QueryContext

TRIPLES = """\
atorvastatin\ttreats\thypertension
hypertension\tpresents\theadache
atorvastatin\tlowers\tldl cholesterol
ldl cholesterol\tassociated with\tatherosclerosis
aspirin\ttreats\tfever
aspirin\ttreats\tpain
"""
DOCS = [
    Document("statin", "Statins", "Atorvastatin lowers LDL cholesterol."),
    Document("fever", "Aspirin", "Aspirin reduces fever and pain."),
    Document("none", "Vaccines", "mRNA vaccines induce antibodies."),
]


@pytest.fixture
def triples(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.tsv"
    path.write_text(TRIPLES)
    return path


def candidates(documents: list[Document]) -> list[Candidate]:
    return [Candidate(doc, np.zeros(4, "f4"), 1.0 - i / 10, i + 1) for i, doc in enumerate(documents)]


def stage_for(triples: Path, explain_top: int = 10) -> KgPathStage:
    graph = KnowledgeGraph(build_graph(triples.parent, [], [TriplesFile(triples)]))
    return KgPathStage(graph, None, graphs=["tiny"], explain_top=explain_top)


def test_stage_explains_with_paths_and_keeps_scores(triples: Path) -> None:
    stage = stage_for(triples)
    scores = np.asarray([0.9, 0.5, 0.1], "f4")
    query = "Does hypertension respond to drugs?"
    result = stage.apply(QueryContext(query, np.zeros(4, "f4")), candidates(DOCS), scores)
    assert np.array_equal(result.scores, scores) and result.keep.all()
    linked = result.query_explanation["linked_concepts"]
    assert [(c["id"], c["text"], c["method"]) for c in linked] == [("hypertension", "hypertension", "exact")]
    statin, fever, none = result.candidate_explanations
    assert statin["explained"] and statin["paths"][0]["rendered"] == "hypertension ←treats— atorvastatin"
    assert result.summaries[0] == {"rationales": [p["rendered"] for p in statin["paths"]]}  # the words a reader checks
    assert [bool(s) for s in result.summaries] == [bool(e.get("paths")) for e in result.candidate_explanations]
    assert statin["paths"][0]["edges"] == [{"head": "atorvastatin", "relation": "treats", "tail": "hypertension"}]
    assert statin["paths"][0]["nodes"] == ["hypertension", "atorvastatin"]
    assert statin["document_concepts"][0] == {
        "id": "atorvastatin",
        "name": "atorvastatin",
        "field": "text",
        "start": 0,
        "end": 12,
        "text": "Atorvastatin",
    }
    assert statin["query_concepts"] == [
        {"id": "hypertension", "name": "hypertension", "start": 5, "end": 17, "text": "hypertension"}
    ]
    assert fever["paths"] == [] and none["paths"] == []  # aspirin's part of the graph is not connected
    for doc, explanation in zip(DOCS, result.candidate_explanations, strict=True):
        graph = stage.graph.graph
        assert unfaithful(graph, query, doc.title, doc.text, result.query_explanation, explanation) == []


def test_only_the_best_candidates_are_explained(triples: Path) -> None:
    stage = stage_for(triples, explain_top=1)
    scores = np.asarray([0.1, 0.5, 0.9], "f4")  # the vaccine document is best by score now
    result = stage.apply(QueryContext("hypertension", np.zeros(4, "f4")), candidates(DOCS), scores)
    assert [e["explained"] for e in result.candidate_explanations] == [False, False, True]
    assert result.query_explanation["explained"] == 1


def test_unfaithful_flags_invented_edges_and_moved_spans(triples: Path) -> None:
    stage = stage_for(triples)
    query = "hypertension"
    result = stage.apply(QueryContext(query, np.zeros(4, "f4")), candidates(DOCS[:1]), np.ones(1, "f4"))
    explanation: dict[str, Any] = dict(result.candidate_explanations[0])
    doc = DOCS[0]
    bad_edge = {**explanation, "paths": [{**explanation["paths"][0], "edges": [dict(head="atorvastatin",
                relation="cures", tail="hypertension")]}]}  # fmt: skip
    assert unfaithful(stage.graph.graph, query, doc.title, doc.text, result.query_explanation, bad_edge)
    moved = {**explanation, "document_concepts": [{**explanation["document_concepts"][0], "start": 1, "end": 13}]}
    assert unfaithful(stage.graph.graph, query, doc.title, doc.text, result.query_explanation, moved)


def test_mention_store_round_trip_and_changed_content(tmp_path: Path) -> None:
    store = MentionStore(tmp_path / "m.sqlite", "linker-1")
    mentions = [
        FieldMention("text", Mention("C1", "atorvastatin", 0, 12)),
        FieldMention("title", Mention("D", "x", 1, 2)),
    ]
    store.put([("doc", "hash-1", mentions)])
    assert store.get({"doc": "hash-1"}) == {"doc": mentions}
    assert store.get({"doc": "hash-2", "other": "h"}) == {}  # changed content: not read, so it is re-linked
    store.close()
    reopened = MentionStore(tmp_path / "m.sqlite", "linker-1")
    assert len(reopened) == 1
    reopened.close()
    assert len(MentionStore(tmp_path / "m.sqlite", "linker-2")) == 0  # another graph or linker: emptied


def test_query_phrases_keep_to_runs_of_content_words() -> None:
    phrases = query_phrases("Vitamin D deficiency (in adults) raises blood pressure.", 3)
    texts = [p.text for p in phrases]
    assert "blood pressure" in texts and "Vitamin D deficiency" in texts
    assert not any("(" in t or ")" in t or "adults raises" in t for t in texts)
    assert all("Vitamin D deficiency (in adults) raises blood pressure."[p.start : p.end] == p.text for p in phrases)


def test_embedding_linker_respects_threshold_and_taken_spans(triples: Path) -> None:
    kg = KnowledgeGraph(build_graph(triples.parent, [], [TriplesFile(triples)]))
    table = kg.linker.table
    axes = {"hypertension": [1.0, 0.0, 0.0], "high blood pressure": [0.9, 0.43589, 0.0]}

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray([axes.get(t.lower(), [0.0, 0.0, 1.0]) for t in texts], "f4")

    linker = EmbeddingLinker(["hypertension"], encode(["hypertension"]), encode)
    text = "Treating high blood pressure"
    assert [(m.concept_id, m.label, m.method) for m in linker.link(text, table)] == [
        ("hypertension", "high blood pressure", "embedding")
    ]
    assert linker.link(text, table, taken=[(9, 13)]) == []
    strict = EmbeddingLinker(["hypertension"], encode(["hypertension"]), encode, linker.options.__class__(0.95))
    assert strict.link(text, table) == []


@pytest.mark.slow
def test_api_search_with_the_kg_stage(
    tmp_path: Path, triples: Path, encoder: SentenceTransformerEncoder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GLASSBOX_PIPELINE__STAGES", '["kg"]')
    monkeypatch.setenv("GLASSBOX_KG__GRAPHS", "[]")
    monkeypatch.setenv("GLASSBOX_KG__TRIPLES", f'["{triples}"]')
    monkeypatch.setenv("GLASSBOX_KG__MAX_DOCUMENT_FREQUENCY", "1.0")
    settings = Settings(home=tmp_path / "home")
    graph = build_graph(triples.parent, [], [TriplesFile(triples)])
    documents = [{"id": d.id, "title": d.title, "text": d.text} for d in DOCS]
    with TestClient(create_app(settings, encoder=encoder)) as client:
        assert client.post("/v1/collections", json={"name": "papers"}).status_code == 201
        assert client.post("/v1/collections/papers/documents", json={"documents": documents}).status_code == 200
        query = "Which drugs treat hypertension?"
        body = client.post("/v1/collections/papers/search", json={"query": query, "top_k": 3}).json()
        assert body["variant"] == "hybrid+kg"
        assert [c["id"] for c in body["query"]["kg"]["linked_concepts"]] == ["hypertension"]
        by_id = {r["id"]: r for r in body["results"]}
        assert by_id["statin"]["breakdown"]["kg"]["paths"][0]["rendered"] == "hypertension ←treats— atorvastatin"
        for result in body["results"]:
            kg = result["breakdown"]["kg"]
            assert unfaithful(graph, query, result["title"], result["text"], body["query"]["kg"], kg) == []
        assert (settings.home / "kg" / "mentions" / "papers.sqlite").is_file()
        # new content under the same id is linked afresh, not read from the store
        changed = [{"id": "statin", "title": "Statins", "text": "Headache is common."}]
        assert client.post("/v1/collections/papers/documents", json={"documents": changed}).status_code == 200
        body = client.post("/v1/collections/papers/search", json={"query": query, "top_k": 3}).json()
        statin = next(r for r in body["results"] if r["id"] == "statin")["breakdown"]["kg"]
        assert statin["paths"][0]["rendered"] == "hypertension —presents→ headache"
        assert statin["document_concepts"][0]["text"] == "Headache"


def test_query_only_options_change_the_version_but_keep_stored_document_mentions(tmp_path: Path, triples: Path) -> None:
    def stage(**kg: Any) -> KgPathStage:
        config = {"graphs": [], "triples": [triples], "embedding_threshold": None, **kg}
        return KgPathStage.from_settings(Settings(home=tmp_path / "home", kg=config))

    default, precise = stage(), stage(precise_linking=True)
    no_fallback, other_graph = stage(frequent_query_fallback=False), stage(triples=[triples, triples])
    assert len({default.version, precise.version, no_fallback.version}) == 3  # response caches part
    assert default.store_key == precise.store_key == no_fallback.store_key  # stored mentions stay valid
    assert other_graph.store_key != default.store_key  # another graph: documents are linked afresh
