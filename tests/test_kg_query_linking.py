"""Query linking beyond exact + stem (static embedding path, filters, frequent-label last resort), document stems
and gene symbols with separators or Greek letters, stored mention methods."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from kg import GraphBuilder, KnowledgeGraph, TriplesFile, build_graph
from kg.embedding_linking import EmbeddingLinker, EmbeddingOptions, WordVectors, label_words
from kg.linking import LabelTable, LinkingOptions

TRIPLES = """\
atorvastatin\ttreats\thypertension
hypertension\tpresents\theadache
heart\tpart of\tcirculatory system
"""

# 4-d toy space: "cardiac" is the heart axis; "high" + "pressure" sum to near the hypertension axis
AXES = {
    "hypertension": [1.0, 0.0, 0.0, 0.0],
    "headache": [0.0, 1.0, 0.0, 0.0],
    "heart": [0.0, 0.0, 1.0, 0.0],
    "cardiac": [0.05, 0.0, 0.99, 0.0],
    "high": [0.8, 0.0, 0.0, 0.6],
    "pressure": [0.8, 0.0, 0.0, -0.6],
}


def _encode(calls: list[list[str]]):  # type: ignore[no-untyped-def]
    def encode(texts: list[str]) -> np.ndarray:
        calls.append(list(texts))
        rows = np.asarray([AXES.get(t.lower(), [0.0, 0.0, 0.0, 0.0]) for t in texts], "f4")
        norms = np.linalg.norm(rows, axis=1, keepdims=True)
        return np.where(norms > 0, rows / np.maximum(norms, 1e-12), rows)

    return encode


@pytest.fixture
def graph(tmp_path: Path) -> KnowledgeGraph:
    path = tmp_path / "tiny.tsv"
    path.write_text(TRIPLES)
    return KnowledgeGraph(build_graph(tmp_path, [], [TriplesFile(path)]))


def test_static_path_links_without_encoder_calls_and_caches_on_disk(graph: KnowledgeGraph, tmp_path: Path) -> None:
    extra = {"cardiac": ("cardiac", ("heart",)), "blood pressure": ("blood pressure", ("hypertension",))}
    table = LabelTable({**graph.linker.table.entries, **extra, "high fever": ("high fever", ("headache",))})
    assert {"cardiac", "system", "high", "pressure"} <= set(label_words(table))  # the vocabulary: label words
    calls: list[list[str]] = []
    options = EmbeddingOptions(threshold=0.9, kinds=frozenset(graph.graph.kinds))
    cache = tmp_path / "cache"
    linker = EmbeddingLinker.for_graph(graph.graph, table, _encode(calls), "toy", cache, options)
    assert linker.words is not None and len(calls) == 2  # concept names, then the label words, once
    kg = KnowledgeGraph(graph.graph, linker=graph.linker, embedding_linker=linker)
    found = kg.link_query("What raises high pressure?")
    assert [(m.concept_id, m.label, m.method) for m in found] == [("hypertension", "high pressure", "embedding")]
    assert len(calls) == 2  # the query cost no encoder call
    assert kg.link_query("Tirasemtiv and pressure?") == []  # 'pressure' alone: cosine 0.8 < 0.9
    again = EmbeddingLinker.for_graph(graph.graph, table, _encode(calls), "toy", cache, options)
    assert len(calls) == 2  # names, words and each word's nearest names were read from the cache
    assert again.words is not None and np.array_equal(again.words.nearest, linker.words.nearest)
    assert len(list(cache.glob("word-nearest-*.npy"))) == 1


def test_static_one_word_phrase_equals_the_encoder_and_unknown_words_are_skipped() -> None:
    calls: list[list[str]] = []
    encode = _encode(calls)
    labels = ["hypertension", "headache", "heart"]
    words = WordVectors.build(["cardiac", "high", "pressure"], encode(labels), encode, ["toy", "x"], None, 2)
    assert words.nearest.shape == (3, 2) and labels[int(words.nearest[0, 0])] == "heart"
    assert words.words_of("Cardiac") == [0] and words.words_of("cardiac arrest") is None
    linker = EmbeddingLinker(labels, encode(labels), encode, EmbeddingOptions(threshold=0.0), words)
    calls.clear()
    found = linker.candidates("cardiac arrest in Cardiac patients")
    assert calls == []
    assert [(p.text, label) for p, label, _score in found] == [("cardiac", "heart"), ("Cardiac", "heart")]
    score = float(encode(["cardiac"])[0] @ encode(["heart"])[0])
    assert found[0][2] == pytest.approx(score, abs=1e-6)  # the same cosine the encoder's vectors give


def test_static_option_off_uses_the_encoder(graph: KnowledgeGraph) -> None:
    calls: list[list[str]] = []
    options = EmbeddingOptions(threshold=0.9, kinds=frozenset(graph.graph.kinds), static=False)
    linker = EmbeddingLinker.for_graph(graph.graph, graph.linker.table, _encode(calls), "toy", None, options)
    assert linker.words is None and len(calls) == 1
    kg = KnowledgeGraph(graph.graph, linker=graph.linker, embedding_linker=linker)
    kg.link_query("What raises high pressure?")
    assert len(calls) == 2
    with pytest.raises(ValueError, match="nearest_per_word"):
        EmbeddingOptions(nearest_per_word=0)


def _toy_linkers(
    vectors: dict[str, list[float]], labels: list[str], *options: EmbeddingOptions
) -> tuple[LabelTable, list[EmbeddingLinker]]:
    """A table of `labels` (ids in capitals) and one linker per options over a hand-made 2-d space (phrases
    encoded by `vectors`, others to [0.7, 0.7])."""

    def encode(texts: list[str]) -> np.ndarray:
        return np.asarray([vectors.get(t.lower(), [0.7, 0.7]) for t in texts], "f4")

    table = LabelTable({label: (label, (label.upper(),)) for label in labels})
    return table, [EmbeddingLinker(labels, encode(labels), encode, option) for option in options]


def test_embedding_links_that_name_a_finding_or_a_disease_of_the_phrase_are_skipped() -> None:
    vectors = {"neutrophils": [1.0, 0.0], "neutrophilia": [0.99, 0.14], "t cells": [0.0, 1.0]}
    vectors["lack of t cell function"] = [0.1, 0.99]
    strict_options, loose_options = EmbeddingOptions(threshold=0.9), EmbeddingOptions(0.9, reject_qualified=False)
    table, (strict, loose) = _toy_linkers(
        vectors, ["neutrophilia", "lack of t cell function"], strict_options, loose_options
    )
    assert strict.link("Neutrophils and T cells", table) == []
    assert [m.label for m in loose.link("Neutrophils and T cells", table)] == ["Neutrophils", "T cells"]


def test_frequent_labels_link_a_query_only_as_a_last_resort(graph: KnowledgeGraph) -> None:
    documents = ["hypertension"] * 3 + ["headache"]
    off = KnowledgeGraph(graph.graph, LinkingOptions(frequent_query_fallback=False), linker=graph.linker)
    assert off.without_frequent_labels(documents, 0.5).link_query("Is hypertension common?") == []  # dropped
    fallback = KnowledgeGraph(graph.graph, LinkingOptions(), linker=graph.linker)  # on by default
    filtered = fallback.without_frequent_labels(documents, 0.5)
    found = filtered.link_query("Is hypertension common?")
    assert [(m.concept_id, m.method, m.start, m.end) for m in found] == [("hypertension", "frequent", 3, 15)]
    mixed = filtered.link_query("Hypertension and headache")
    assert [(m.concept_id, m.method) for m in mixed] == [("headache", "exact")]  # another link: no last resort
    assert filtered.link("hypertension") == []  # documents never use it


def test_mention_store_keeps_the_method(tmp_path: Path) -> None:
    from kg import Mention
    from service.mention_store import FieldMention, MentionStore

    store = MentionStore(tmp_path / "m.sqlite", "key")
    mentions = [
        FieldMention("text", Mention("C1", "statins", 0, 7, "stem")),
        FieldMention("title", Mention("D1", "x", 1, 2)),
    ]
    store.put([("doc", "hash", mentions)])
    assert store.get({"doc": "hash"})["doc"] == mentions
    store.close()


def test_gene_symbols_with_separators_or_greek_letters_link_in_documents_and_queries() -> None:
    builder = GraphBuilder()
    builder.add_node("G1", "IL10", "Gene")
    builder.add_node("G2", "IFNG", "Gene")
    builder.add_node("D1", "colitis", "Disease")
    builder.add_edge("G1", "associates", "D1")
    builder.add_edge("G2", "associates", "D1")
    kg = KnowledgeGraph(builder.build())
    text = "IL-10 and IFN-\u03b3 in colitis; not il-10, Il-10a or pre-IL-10."
    found = [(m.concept_id, m.label, m.method) for m in kg.link(text)]
    assert found == [("G1", "IL-10", "symbol"), ("G2", "IFN-\u03b3", "symbol"), ("D1", "colitis", "exact")]
    assert all(m.is_faithful_to(text, normalise=False) for m in kg.link(text))
    assert [m.method for m in kg.link_query("Does IL-10 protect?")] == ["symbol"]
    symbol = kg.link(text)[0]
    assert kg.keeps(symbol)
    assert not kg.without_frequent_labels(["IL10 here", "IL10 there"], 0.5).keeps(symbol)  # IL10 dropped as frequent


def test_abbreviations_are_not_stemmed() -> None:
    from kg.linking import StemmedLinker

    table = LabelTable({"odd": ("ODD", ("HP:1",)), "statin": ("statin", ("C1",))})
    assert [m.concept_id for m in StemmedLinker(table).link("odds of statins")] == ["C1"]


def test_lexical_match_keeps_embedding_links_a_reader_would_accept() -> None:
    vectors = {"glutamate": [1.0, 0.0], "hydrocortamate": [0.98, 0.2], "myocardial": [0.0, 1.0]}
    vectors["myocardium"] = [0.2, 0.98]
    loose_options = EmbeddingOptions(threshold=0.9, static=False)
    precise_options = EmbeddingOptions(threshold=0.9, static=False, require_lexical_match=True)
    table, (loose, precise) = _toy_linkers(vectors, ["hydrocortamate", "myocardium"], loose_options, precise_options)
    text = "Glutamate in myocardial cells"
    assert [m.concept_id for m in loose.link(text, table)] == ["HYDROCORTAMATE", "MYOCARDIUM"]  # a look-alike too
    assert [(m.concept_id, m.label) for m in precise.link(text, table)] == [("MYOCARDIUM", "myocardial")]


def test_precise_linking_keeps_hpo_terms_that_are_not_phenotypes_out_of_queries_and_documents() -> None:
    builder = GraphBuilder()
    terms = [("HP:0000001", "All"), ("HP:0000118", "Phenotypic abnormality"), ("HP:0001945", "Fever")]
    terms += [("HP:0012823", "Clinical modifier"), ("HP:0012826", "Moderate")]
    for term, name in terms:
        builder.add_node(term, name, "Phenotype")
    for child, parent in [("HP:0000118", "HP:0000001"), ("HP:0001945", "HP:0000118")]:
        builder.add_edge(child, "is a", parent)
    builder.add_edge("HP:0012823", "is a", "HP:0000001")
    builder.add_edge("HP:0012826", "is a", "HP:0012823")
    graph = builder.build()
    query = "Moderate fever"
    assert [m.concept_id for m in KnowledgeGraph(graph).link_query(query)] == ["HP:0012826", "HP:0001945"]
    precise = KnowledgeGraph(graph, LinkingOptions(precise=True))
    assert precise.excluded == {"HP:0000001", "HP:0012823", "HP:0012826"}
    assert [m.concept_id for m in precise.link_query(query)] == ["HP:0001945"]
    stored = precise.link(query)  # stored document mentions do not depend on the setting ...
    assert [m.concept_id for m in stored] == ["HP:0012826", "HP:0001945"]
    assert [m.concept_id for m in stored if precise.keeps(m)] == ["HP:0001945"]  # ... the stage reads them filtered
    assert all(KnowledgeGraph(graph).keeps(m) for m in stored)
    # a query that links only an excluded term falls back to nothing rather than to it
    assert precise.link_query("Moderate") == []
    filtered = precise.without_frequent_labels(["fever", "fever", "moderate"], 0.5)
    assert [(m.concept_id, m.method) for m in filtered.link_query("Moderate fever")] == [("HP:0001945", "frequent")]


PERTAINYM_SYNSETS = (
    "synset_id\tss_type\tlexname\tlemmas\tgloss\n"
    "05385534-n\tn\tnoun.body\theart|pump|ticker\tthe organ\n"
    "05385000-n\tn\tnoun.body\tliver\tan organ\n"
    "05611302-n\tn\tnoun.cognition\tmind|head\tthat which thinks\n"
    "05601758-n\tn\tnoun.body\tchin|mentum\tthe protruding part of the lower jaw\n"
    "02881250-a\ta\tadj.pert\tcardiac\tof the heart\n"
    "02881350-a\ta\tadj.pert\thepatic\tof the liver\n"
    "02881450-a\ta\tadj.pert\tmental\tof the mind; of the chin\n"
    "00118436-r\tr\tadv.all\tmentally\tin the mind\n"
)
PERTAINYM_RELATIONS = (
    "source\trelation\ttarget\tkind\tsource_word\n"
    "02881250-a\tpertainym\t05385534-n\tL\tcardiac\n"
    "02881350-a\tpertainym\t05385000-n\tL\thepatic\n"
    "02881450-a\tpertainym\t05611302-n\tL\tmental\n"
    "02881450-a\tpertainym\t05601758-n\tL\tmental\n"
    "00118436-r\tpertainym\t02881450-a\tL\tmentally\n"
    "05385534-n\thypernym\t05385000-n\tS\t\n"
)


def test_wordnet_pertainyms_map_adjectives_with_one_noun(tmp_path: Path) -> None:
    from kg.errors import KgFormatError
    from kg.loaders.wordnet import pertainyms, read_synset_lemmas

    synsets, relations = tmp_path / "syn.tsv", tmp_path / "rel.tsv"
    synsets.write_text(PERTAINYM_SYNSETS)
    relations.write_text(PERTAINYM_RELATIONS)
    # "mental" pertains to two nouns (mind, chin): left out; adverb → adjective pointers are not adjectives'
    lemmas = read_synset_lemmas(synsets)
    assert pertainyms(lemmas, relations) == {"cardiac": ("heart", "pump", "ticker"), "hepatic": ("liver",)}
    relations.write_text(PERTAINYM_RELATIONS + "02881250-a\tpertainym\t05385534-n\tL\t\n")
    with pytest.raises(KgFormatError, match=r"rel\.tsv:8: a pertainym pointer without its source word"):
        pertainyms(lemmas, relations)
    relations.write_text(PERTAINYM_RELATIONS + "02881250-a\tpertainym\t09999999-n\tL\tcardiac\n")
    with pytest.raises(KgFormatError, match=r"rel\.tsv:8: pointer between unknown synsets"):
        pertainyms(lemmas, relations)


def test_query_adjectives_link_the_concept_their_noun_names(tmp_path: Path) -> None:
    (tmp_path / "wordnet").mkdir()
    (tmp_path / "wordnet" / "wn30-synsets.tsv.gz").write_bytes(gzip.compress(PERTAINYM_SYNSETS.encode()))
    (tmp_path / "wordnet" / "wn30-relations.tsv.gz").write_bytes(gzip.compress(PERTAINYM_RELATIONS.encode()))
    triples = tmp_path / "mine.tsv"
    triples.write_text("heart\tpart of\tcirculatory system\nliver\tmakes\tbile\n")
    kg = KnowledgeGraph.load(tmp_path, [], triples=[TriplesFile(triples)])
    assert kg.pertainym_linker is not None and len(kg.pertainym_linker) == 2
    query = "Cardiac and hepatic, not mental or non-hepatic, failure"
    found = [(m.concept_id, m.label, m.method) for m in kg.link_query(query)]
    assert found == [("heart", "Cardiac", "pertainym"), ("liver", "hepatic", "pertainym")]
    assert all(m.is_faithful_to(query) for m in kg.link_query(query))
    assert [m.method for m in kg.link_query("the heart")] == ["exact"]
    assert kg.link("Cardiac failure") == []  # documents: exact, symbol and stem matches only
    assert kg.without_frequent_labels(["heart", "heart", "liver"], 0.5).link_query("cardiac") == []  # heart dropped
    off = KnowledgeGraph.load(
        tmp_path, [], triples=[TriplesFile(triples)], linking=LinkingOptions(query_pertainyms=False)
    )
    assert off.pertainym_linker is None and off.link_query("Cardiac") == []
