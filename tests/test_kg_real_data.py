"""The real biomedical graph from the shared data: builds (or loads from a cache), holds known facts, explains."""

from __future__ import annotations

from pathlib import Path

import pytest

from kg import KnowledgeGraph


@pytest.fixture(scope="module")
def biomedical(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> KnowledgeGraph:
    return KnowledgeGraph.load(data_dir / "kg", ["biomedical"], cache_dir=tmp_path_factory.mktemp("kg-cache"))


@pytest.mark.slow
def test_biomedical_graph_holds_known_facts(biomedical: KnowledgeGraph) -> None:
    graph = biomedical.graph
    assert graph.num_nodes > 80_000 and graph.num_edges > 1_300_000
    assert graph.has_edge("Compound::DB01076", "treats", "Disease::DOID:10763")
    assert biomedical.node_name("Compound::DB01076") == "Atorvastatin"
    assert "DOID:10763" not in graph.index  # the DO term is merged into Hetionet's disease
    text = "Atorvastatin lowers blood pressure in patients with hypertension."
    mentions = biomedical.link(text)
    assert all(m.is_faithful_to(text) for m in mentions)
    query = biomedical.link_query("Does atorvastatin help?")
    document = [m for m in mentions if m.concept_id == "Disease::DOID:10763"]
    assert document, mentions
    paths = biomedical.explain(query, document)
    assert paths[0].render() == "Atorvastatin —treats→ hypertension"
    for path in paths:
        for edge in path.edges:
            assert graph.has_edge(edge.head, edge.relation, edge.tail)
