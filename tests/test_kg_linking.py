"""Entity linking: faithful spans, whole words only, longest matches, and the label filters."""

from __future__ import annotations

from kg import (
    CompactGraph,
    EntityLinker,
    GraphBuilder,
    KnowledgeGraph,
    LabelTable,
    LinkingOptions,
    Mention,
    StemmedLinker,
)


def small_graph() -> CompactGraph:
    builder = GraphBuilder()
    builder.add_node("D1", "hypertension", "Disease", ["HTN", "high blood pressure"])
    builder.add_node("D2", "type 2 diabetes mellitus", "Disease", ["type 2 diabetes"])
    builder.add_node("D3", "diabetes mellitus", "Disease")
    builder.add_node("G1", "CAT", "Gene")
    builder.add_node("G2", "HMGCR", "Gene")
    builder.add_node("C1", "statin", "Compound")
    builder.add_node("C2", "Café au lait spots", "Phenotype")
    builder.add_node("X1", "isolated", "Compound")  # no edges: never linked
    for tail in ("D1", "D2", "D3", "G1", "G2", "C2"):
        builder.add_edge("C1", "relates", tail)
    return builder.build()


TEXT = "Statins lower HIGH Blood-Pressure (HTN) in Type-2  Diabetes; hypertensions; CAT and HMGCR; café au lait spots."


def test_spans_are_faithful_and_whole_words() -> None:
    mentions = EntityLinker(LabelTable.from_graph(small_graph(), LinkingOptions())).link(TEXT)
    assert mentions, "expected mentions"
    for mention in mentions:
        assert mention.is_faithful_to(TEXT), mention
    found = {(m.concept_id, TEXT[m.start : m.end]) for m in mentions}
    assert ("D1", "HIGH Blood-Pressure") in found and ("D1", "HTN") in found
    assert ("D2", "Type-2  Diabetes") in found  # longest match wins over "diabetes mellitus"'s shorter forms
    assert ("C2", "café au lait spots") in found
    assert all(m.concept_id != "D1" or TEXT[m.start : m.end] != "hypertension" for m in mentions)  # not in a word
    assert not any(m.concept_id == "C1" for m in mentions)  # "Statins" is no exact match


def test_longest_non_overlapping_match_is_preferred() -> None:
    linker = EntityLinker(LabelTable.from_graph(small_graph(), LinkingOptions()))
    text = "type 2 diabetes mellitus"
    assert [(m.concept_id, m.start, m.end) for m in linker.link(text)] == [("D2", 0, 24)]


def test_filters_drop_short_common_ambiguous_and_edgeless_labels() -> None:
    table = LabelTable.from_graph(small_graph(), LinkingOptions())
    assert "cat" not in table.entries  # a gene symbol that is a common word
    assert "hmgcr" in table.entries
    assert "isolated" not in table.entries  # no edges
    assert "htn" in table.entries
    assert "htn" not in LabelTable.from_graph(small_graph(), LinkingOptions(min_label_chars=4)).entries
    builder = GraphBuilder()
    for i in range(3):
        builder.add_node(f"N{i}", "cold", "Concept")
        builder.add_edge(f"N{i}", "r", "Z")
    ambiguous = builder.build()
    assert "cold" in LabelTable.from_graph(ambiguous, LinkingOptions(max_concepts_per_label=3)).entries
    assert "cold" not in LabelTable.from_graph(ambiguous, LinkingOptions(max_concepts_per_label=2)).entries


def test_document_frequency_filter_drops_frequent_labels() -> None:
    linker = EntityLinker(LabelTable.from_graph(small_graph(), LinkingOptions()))
    texts = ["HMGCR and hypertension", "hypertension again", "hypertension", "statin use"]
    counts, total = linker.document_frequency(texts)
    assert counts["hypertension"] == 3 and counts["hmgcr"] == 1 and total == 4
    filtered = linker.without_frequent_labels(texts, 0.5)
    assert [m.concept_id for m in filtered.link("hypertension and HMGCR")] == ["G2"]


def test_stemmed_second_path_finds_plurals_with_faithful_spans() -> None:
    table = LabelTable.from_graph(small_graph(), LinkingOptions())
    text = "Statins, and hypertensions; high blood pressures"
    mentions = StemmedLinker(table).link(text)
    assert {(m.concept_id, m.label) for m in mentions} == {
        ("C1", "Statins"),
        ("D1", "hypertensions"),
        ("D1", "high blood pressures"),
    }
    assert all(m.method == "stem" and m.is_faithful_to(text, normalise=False) for m in mentions)
    assert StemmedLinker(table).link("high, blood pressures") == []  # words of a label are not split by commas
    assert StemmedLinker(table).link("HMGCRs") == []  # gene symbols match exactly only


def test_link_query_adds_second_path_only_where_exact_found_nothing() -> None:
    kg = KnowledgeGraph(small_graph())
    mentions = kg.link_query("statins for hypertension")
    assert [(m.concept_id, m.method) for m in mentions] == [("C1", "stem"), ("D1", "exact")]
    assert kg.link("statins for hypertension") == [Mention("C1", "statins", 0, 7, "stem"), mentions[1]]
    exact_only = KnowledgeGraph(small_graph(), LinkingOptions(document_stems=False))
    assert exact_only.link("statins for hypertension") == [Mention("D1", "hypertension", 12, 24)]


def test_frequent_stemmed_keys_are_dropped_and_stored_mentions_rechecked() -> None:
    kg = KnowledgeGraph(small_graph())
    documents = ["Statins work.", "statin trial", "hypertension", "other"]
    stem = kg.link("Statins work.")[0]
    assert stem.method == "stem" and kg.keeps(stem)
    filtered = kg.without_frequent_labels(documents, 0.4)  # 'statin' key in 2 of 4 documents (exact in 1)
    assert not filtered.keeps(stem) and filtered.link("Statins work.") == []
    assert filtered.keeps(kg.link("hypertension")[0])


def test_is_faithful_to_stays_strict() -> None:
    assert Mention("D2", "type 2 diabetes", 0, 15).is_faithful_to("Type\u20132 Diabetes")
    assert not Mention("D2", "type 2 diabetes", 0, 14).is_faithful_to("type 2 diabete")
    assert not Mention("D1", "htn", 0, 4).is_faithful_to(" HTN")
