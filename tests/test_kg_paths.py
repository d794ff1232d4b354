"""Path search on a small canonical graph: bounded length, hub penalty, faithful edges, reversed rendering."""

from __future__ import annotations

import pytest

from kg import CompactGraph, GraphBuilder, KnowledgeGraph, Mention, PathOptions, PathSearch


def canonical_graph() -> CompactGraph:
    """q reaches d through a hub in 2 edges, or through low-degree x and y in 3 (the last edge points d → y)."""
    builder = GraphBuilder()
    for node, name in [("q", "Query"), ("d", "Doc"), ("hub", "Hub"), ("x", "X"), ("y", "Y"), ("far", "Far")]:
        builder.add_node(node, name)
    builder.add_edge("q", "touches", "hub")
    builder.add_edge("hub", "touches", "d")
    for leaf in range(30):
        builder.add_edge("hub", "touches", f"leaf{leaf}")
    builder.add_edge("q", "a", "x")
    builder.add_edge("x", "b", "y")
    builder.add_edge("d", "c", "y")
    builder.add_edge("d", "e", "n1")
    builder.add_edge("n1", "e", "n2")
    builder.add_edge("n2", "e", "n3")
    builder.add_edge("n3", "e", "far")
    return builder.build()


def test_hub_penalty_changes_the_best_path() -> None:
    graph = canonical_graph()
    penalised = PathSearch(graph, PathOptions(hub_penalty=1.0)).paths(["q"], ["d"], 3)
    assert penalised[0].render() == "Query —a→ X —b→ Y ←c— Doc"
    plain = PathSearch(graph, PathOptions(hub_penalty=0.0)).paths(["q"], ["d"], 3)
    assert plain[0].render() == "Query —touches→ Hub —touches→ Doc"
    assert [p.score for p in penalised] == sorted((p.score for p in penalised), reverse=True)


def test_paths_are_bounded_and_every_edge_exists() -> None:
    graph = canonical_graph()
    nx_graph = graph.to_networkx()
    search = PathSearch(graph, PathOptions(max_paths=5))
    assert search.paths(["q"], ["far"], 3) == []  # 5 edges away
    assert all(len(p.edges) <= 2 for p in search.paths(["q"], ["d"], 2))
    found = search.paths(["q"], ["d", "y"], 3)
    assert found
    for path in found:
        assert 1 <= len(path.edges) <= 3
        assert path.source == "q" and path.target in {"d", "y"}
        for edge, following in zip(path.edges, path.edges[1:], strict=False):
            assert edge.end == following.start
        for edge in path.edges:
            assert graph.has_edge(edge.head, edge.relation, edge.tail)
            assert nx_graph.has_edge(edge.head, edge.tail, key=edge.relation)
            assert nx_graph.nodes[edge.head]["name"] == edge.head_name


def test_reversed_edges_render_in_their_true_direction() -> None:
    (path, *_rest) = PathSearch(canonical_graph()).paths(["d"], ["q"], 3)
    assert path.render() == "Doc —c→ Y ←b— X ←a— Query"
    assert [edge.reversed for edge in path.edges] == [False, True, True]


def test_shared_concepts_are_zero_edge_rationales_and_unknown_concepts_give_no_paths() -> None:
    search = PathSearch(canonical_graph())
    shared = search.paths(["q"], ["q"], 3)
    assert len(shared) == 1 and shared[0].shared and shared[0].edges == () and shared[0].concept == "q"
    assert PathSearch(canonical_graph(), PathOptions(shared_concepts=False)).paths(["q"], ["q"], 3) == []
    assert search.paths(["nowhere"], ["d"], 3) == []


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="max_length must be 1, 2 or 3, got 4"):
        PathOptions(max_length=4)
    with pytest.raises(ValueError, match="penalties must be non-negative, got -1"):
        PathOptions(hub_penalty=-1)


def test_facade_explains_many_documents_with_one_query_expansion() -> None:
    kg = KnowledgeGraph(canonical_graph())
    query = [Mention("q", "Query", 0, 5)]
    docs = [[Mention("d", "Doc", 0, 3)], [], [Mention("far", "Far", 0, 3)]]
    explained = kg.explain_many(query, docs)
    assert [len(paths) for paths in explained] == [2, 0, 0]  # through the hub, or through x and y
    assert explained[0] == kg.explain(query, docs[0])
    assert kg.node_name("hub") == "Hub" and kg.num_nodes == 39
