"""BM25 arm: analyser, scores against the formula and against bm25s, consistency with the document store."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter
from pathlib import Path

import bm25s
import numpy as np
import pytest
import Stemmer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexes import (
    Analyzer,
    Bm25Index,
    Bm25Parameters,
    Collection,
    CollectionConfig,
    Document,
    InvalidInputError,
    lexical_text,
)
from tests.conftest import clustered_vectors

D = 8
WORDS = ["statin", "cholesterol", "heart", "vaccine", "antibody", "tumour", "gene", "protein", "diet", "sleep"]


def random_corpus(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(1, 25)))) for _ in range(n)]


def brute_force(corpus: list[dict[str, int]], query: list[str], k1: float = 1.5, b: float = 0.75) -> np.ndarray:
    """Lucene BM25 written out term by term."""
    n = len(corpus)
    lengths = [sum(doc.values()) for doc in corpus]
    mean = sum(lengths) / n
    scores = np.zeros(n)
    for term in query:
        df = sum(1 for doc in corpus if term in doc)
        if not df:
            continue
        idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
        for i, doc in enumerate(corpus):
            tf = doc.get(term, 0)
            scores[i] += idf * tf / (tf + k1 * (1 - b + b * lengths[i] / mean))
    return scores


def test_analyzer_options_and_errors() -> None:
    text = "The Running dogs, and the cats!"
    assert Analyzer().terms(text) == ["run", "dog", "cat"]
    assert Analyzer("none", "english").terms(text) == ["running", "dogs", "cats"]
    assert Analyzer("none", "none").terms(text) == ["the", "running", "dogs", "and", "the", "cats"]
    assert Analyzer().term_counts("cat cats CAT dog") == {"cat": 3, "dog": 1}
    with pytest.raises(InvalidInputError, match="'porter'"):
        Analyzer(stemmer="porter")
    with pytest.raises(InvalidInputError, match="k1"):
        Bm25Parameters(k1=-1)


def test_scores_match_the_formula() -> None:
    analyzer = Analyzer()
    texts = random_corpus(60, seed=1)
    counts = [analyzer.term_counts(t) for t in texts]
    index = Bm25Index()
    index.upsert([f"d{i}" for i in range(60)], counts)
    query = analyzer.terms("statin heart heart gene")
    expected = brute_force(counts, query)
    got = index.score(query, [f"d{i}" for i in range(60)])
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    scores, ids = index.search(query, 5)
    assert ids == [f"d{i}" for i in np.argsort(-expected, kind="stable")[:5]]
    np.testing.assert_allclose(scores, np.sort(expected)[::-1][:5], rtol=1e-5)


def test_agrees_with_bm25s_reference() -> None:
    """Same analysis and parameters as bm25s' defaults: the same top-10 with the same scores."""
    rng = np.random.default_rng(7)
    vocabulary = [f"term{i}" for i in range(300)] + ["the", "and", "running", "runs"]
    texts = [" ".join(rng.choice(vocabulary, size=int(rng.integers(5, 60)))) for _ in range(400)]
    queries = [" ".join(rng.choice(vocabulary, size=4)) for _ in range(20)]
    analyzer = Analyzer()
    index = Bm25Index()
    index.upsert([str(i) for i in range(len(texts))], [analyzer.term_counts(t) for t in texts])
    stemmer = Stemmer.Stemmer("english")
    reference = bm25s.BM25(k1=1.5, b=0.75)
    reference.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    for query in queries:
        tokens = bm25s.tokenize([query], stopwords="en", stemmer=stemmer, show_progress=False)
        rows, expected = reference.retrieve(tokens, k=10, show_progress=False)
        scores, ids = index.search(analyzer.terms(query), 10)
        np.testing.assert_allclose(scores, expected[0], rtol=1e-4)
        # equal scores may be ordered differently; compare the sets above the 10th score
        cut = expected[0][-1] + 1e-4
        assert {i for i, s in zip(ids, scores, strict=True) if s > cut} == {
            str(r) for r, s in zip(rows[0], expected[0], strict=True) if s > cut
        }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["upsert", "delete"]), st.integers(0, 14), st.integers(0, 99)), max_size=60))
def test_updates_equal_a_fresh_build(operations: list[tuple[str, int, int]]) -> None:
    """After any interleaving of upserts, replacements and deletes (with compactions), scores equal a fresh index."""
    analyzer = Analyzer()
    texts = random_corpus(100, seed=3)
    index = Bm25Index()
    live: dict[str, dict[str, int]] = {}
    for operation, doc, text in operations:
        doc_id = f"d{doc}"
        if operation == "upsert":
            live[doc_id] = analyzer.term_counts(texts[text])
            index.upsert([doc_id], [live[doc_id]])
        else:
            live.pop(doc_id, None)
            index.delete([doc_id])
        index.search(analyzer.terms("statin heart"), 3)  # fills the per-term cache that writes must invalidate
    fresh = Bm25Index()
    fresh.upsert(list(live), list(live.values()))
    query = analyzer.terms("statin heart gene diet")
    assert sorted(index.doc_ids()) == sorted(live)
    np.testing.assert_allclose(index.score(query, list(live)), fresh.score(query, list(live)), rtol=1e-5)
    assert index.statistics() == pytest.approx(fresh.statistics())


def collection_config() -> CollectionConfig:
    return CollectionConfig(name="c", dimension=D, encoder="test-encoder", encoder_revision="r1")


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(st.sampled_from(["upsert", "delete"]), st.lists(st.integers(0, 19), min_size=1, max_size=4)),
        min_size=1,
        max_size=12,
    )
)
def test_three_stores_agree_through_writes_and_a_crash(tmp_path_factory: pytest.TempPathFactory, ops: list) -> None:
    """Every document is in the SQLite store, FAISS and BM25, or in none: live, and after a crash and reopen."""
    directory = tmp_path_factory.mktemp("c") / "c"
    vectors = clustered_vectors(20, D, seed=5, clusters=4)
    texts = random_corpus(20, seed=5)
    collection = Collection.create(directory, collection_config(), snapshot_every=7)
    expected: dict[str, str] = {}
    for operation, numbers in ops:
        ids = list(dict.fromkeys(f"d{n}" for n in numbers))
        if operation == "upsert":
            collection.upsert([Document(i, "", texts[int(i[1:])]) for i in ids], vectors[[int(i[1:]) for i in ids]])
            expected.update({i: texts[int(i[1:])] for i in ids})
        else:
            collection.delete(ids)
            for i in ids:
                expected.pop(i, None)
        assert collection.verify() == (set(), set())
    collection._lock_file.close()  # type: ignore[union-attr]  # crash: no closing snapshot
    collection._store.close()
    reopened = Collection.open(directory)
    try:
        assert reopened.verify() == (set(), set())
        assert set(reopened.lexical.doc_ids()) == set(expected)
        analyzer = reopened.analyzer
        fresh = Bm25Index()
        fresh.upsert(list(expected), [analyzer.term_counts(t) for t in expected.values()])
        query = "statin heart gene"
        np.testing.assert_allclose(
            reopened.lexical_scores(query).of(list(expected)), fresh.score(analyzer.terms(query), list(expected))
        )
    finally:
        reopened.close()


def test_lexical_search_with_metadata_filter(tmp_path: Path) -> None:
    collection = Collection.create(tmp_path / "c", collection_config())
    vectors = clustered_vectors(300, D, seed=2, clusters=5)
    documents = [Document(f"d{i}", "statin", f"trial {i}", {"rare": i == 250}) for i in range(300)]
    collection.upsert(documents, vectors)
    scores = collection.lexical_scores("statin trial")
    assert len(collection.lexical_search(scores, 10)) == 10
    filtered = collection.lexical_search(scores, 10, {"rare": True})
    assert [m.document.id for m in filtered] == ["d250"]
    assert collection.lexical_search(collection.lexical_scores("unrelated words"), 10) == []
    collection.close()


def test_store_without_terms_is_backfilled(tmp_path: Path) -> None:
    """A collection written before BM25 terms were stored gets them analysed and stored when opened."""
    collection = Collection.create(tmp_path / "c", collection_config())
    collection.upsert(
        [Document("a", "Statins", "lower cholesterol"), Document("b", "", "sleep")], np.eye(2, D, dtype="f4")
    )
    collection.close()
    db = sqlite3.connect(tmp_path / "c" / "documents.sqlite")
    db.execute("ALTER TABLE documents DROP COLUMN terms")
    db.commit()
    db.close()
    reopened = Collection.open(tmp_path / "c")
    assert reopened.verify() == (set(), set())
    assert [m.document.id for m in reopened.lexical_search(reopened.lexical_scores("cholesterol"), 5)] == ["a"]
    stored = dict(reopened._store.term_counts())
    assert stored["a"] == Counter(Analyzer().terms(lexical_text(Document("a", "Statins", "lower cholesterol"))))
    reopened.close()
