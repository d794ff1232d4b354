"""The built-graph cache: save → load gives an equal graph; a changed source file rebuilds."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from kg import CompactGraph, GraphBuilder, KgError, KnowledgeGraph, TriplesFile, cache_key, cached_graph
from kg.cache import load_graph, save_graph


def graph_from(path: Path) -> CompactGraph:
    builder = GraphBuilder()
    for line in path.read_text().splitlines():
        head, relation, tail = line.split("\t")
        builder.add_edge(head, relation, tail)
    builder.add_node("a", "Ä name", "Kind", ["syn"])
    return builder.build()


def test_save_load_round_trip(tmp_path: Path) -> None:
    source = tmp_path / "g.tsv"
    source.write_text("a\tr\tb\nb\ts\tc\n")
    graph = graph_from(source)
    save_graph(graph, tmp_path / "cache" / "g")
    loaded = load_graph(tmp_path / "cache" / "g")
    assert loaded == graph and loaded.synonyms == (("syn",), (), ())
    assert np.array_equal(loaded.degree, graph.degree)
    with pytest.raises(KgError, match="no readable graph cache"):
        load_graph(tmp_path / "missing")


def test_cache_hit_then_rebuild_when_a_source_changes(tmp_path: Path) -> None:
    source = tmp_path / "g.tsv"
    source.write_text("a\tr\tb\n")
    builds = []

    def build() -> CompactGraph:
        builds.append(1)
        return graph_from(source)

    first, hit_first = cached_graph(tmp_path / "cache", "mine", [source], build)
    second, hit_second = cached_graph(tmp_path / "cache", "mine", [source], build)
    assert (hit_first, hit_second, len(builds)) == (False, True, 1) and first == second
    key = cache_key([source], "mine")
    source.write_text("a\tr\tb\nb\tr\tc\n")
    os.utime(source, ns=(1, 1))
    assert cache_key([source], "mine") != key
    third, hit_third = cached_graph(tmp_path / "cache", "mine", [source], build)
    assert not hit_third and third.num_edges == 2 and len(builds) == 2


def test_facade_load_uses_the_cache_directory(tmp_path: Path) -> None:
    triples = tmp_path / "t.tsv"
    triples.write_text("smoking\tcauses\tlung cancer\n")
    extra = [TriplesFile(triples)]
    built = KnowledgeGraph.load(tmp_path, [], cache_dir=tmp_path / "cache", triples=extra)
    assert len(list((tmp_path / "cache").iterdir())) == 1
    loaded = KnowledgeGraph.load(tmp_path, [], cache_dir=tmp_path / "cache", triples=extra)
    assert loaded.graph == built.graph
    assert [p.render() for p in loaded.explain(loaded.link("smoking"), loaded.link("lung cancer"))] == [
        "smoking —causes→ lung cancer"
    ]
