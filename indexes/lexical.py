"""BM25 over analysed terms: the analyser (split, lowercase, stopwords, stem) and an in-memory inverted index.

The durable copy of every document's term counts lives in the document store's row for that document (written in
the same SQLite transaction as the document and its embedding), so the lexical index can never disagree with the
store: it is rebuilt from those rows when a collection opens and updated after each committed write, exactly as
the FAISS index is.

Scoring is Lucene's BM25 (as in bm25s' default): ``idf = ln(1 + (N - df + 0.5) / (df + 0.5))`` and
``tf / (tf + k1 · (1 - b + b · len / avg_len))``, summed over the query's terms.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from indexes.errors import InvalidInputError

# Lucene's classic English stop set, the default of Lucene's StandardAnalyzer and of bm25s.
ENGLISH_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    ]
)
STOPWORD_LISTS: dict[str, frozenset[str]] = {"english": ENGLISH_STOPWORDS, "none": frozenset()}
STEMMERS = ("english", "none")
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
_COMPACT_WHEN_DEAD = 0.5  # rebuild the postings once half of the slots belong to deleted documents
_CONTRIBUTION_CACHE_TERMS = 50_000  # per-term score arrays kept between writes (a read-mostly index)

TermCounts = Mapping[str, int]
IntArray = npt.NDArray[np.int64]
ScoreArray = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Analyzer:
    """Turns text into index terms: words of 2+ characters, lowercased, stopwords dropped, then stemmed.

    Args:
        stemmer: "english" (Snowball, via PyStemmer) or "none".
        stopwords: "english" (Lucene's 33-word list) or "none".

    >>> Analyzer().terms("The statins are lowering cholesterol in 2 of 3 patients")
    ['statin', 'lower', 'cholesterol', 'patient']
    """

    stemmer: str = "english"
    stopwords: str = "english"

    def __post_init__(self) -> None:
        if self.stemmer not in STEMMERS:
            raise InvalidInputError(f"stemmer must be one of {STEMMERS}, got {self.stemmer!r}")
        if self.stopwords not in STOPWORD_LISTS:
            raise InvalidInputError(f"stopwords must be one of {tuple(STOPWORD_LISTS)}, got {self.stopwords!r}")

    def terms(self, text: str) -> list[str]:
        """The text's terms in order, repeats kept."""
        stop = STOPWORD_LISTS[self.stopwords]
        words = [word for word in _TOKEN.findall(text.lower()) if word not in stop]
        return _stem_words(self.stemmer)(words)

    def term_counts(self, text: str) -> dict[str, int]:
        """Each distinct term of the text with its count."""
        return dict(Counter(self.terms(text)))


_STEMMER_LOCK = threading.Lock()
_STEMMER_CACHE: dict[str, Callable[[list[str]], list[str]]] = {}


def _stem_words(name: str) -> Callable[[list[str]], list[str]]:
    if name == "none":
        return list
    with _STEMMER_LOCK:
        if name not in _STEMMER_CACHE:
            import Stemmer  # PyStemmer: Snowball stemmers in C; imported on first use, not at import time

            stemmer = Stemmer.Stemmer(name)
            lock = threading.Lock()  # a PyStemmer object is not safe to share between threads

            def stem(words: list[str]) -> list[str]:
                with lock:
                    return list(stemmer.stemWords(words))

            _STEMMER_CACHE[name] = stem
        return _STEMMER_CACHE[name]


@dataclass(frozen=True)
class Bm25Parameters:
    """BM25's term-frequency saturation `k1` and length normalisation `b`."""

    k1: float = 1.5
    b: float = 0.75

    def __post_init__(self) -> None:
        if self.k1 < 0:
            raise InvalidInputError(f"k1 must be >= 0, got {self.k1}")
        if not 0.0 <= self.b <= 1.0:
            raise InvalidInputError(f"b must be in [0, 1], got {self.b}")


class _Postings:
    """One term's postings: document slots and term counts, growable, in insertion order."""

    __slots__ = ("_count", "slots", "tfs")

    def __init__(self) -> None:
        self.slots = np.empty(4, dtype=np.int64)
        self.tfs = np.empty(4, dtype=np.float32)
        self._count = 0

    def append(self, slot: int, tf: int) -> None:
        if self._count == self.slots.size:
            self.slots = np.resize(self.slots, self._count * 2)
            self.tfs = np.resize(self.tfs, self._count * 2)
        self.slots[self._count] = slot
        self.tfs[self._count] = tf
        self._count += 1

    def view(self) -> tuple[IntArray, ScoreArray]:
        return self.slots[: self._count], self.tfs[: self._count]


@dataclass(frozen=True)
class Bm25Scores:
    """One query's BM25 scores over every slot of the index, as they were when computed."""

    values: npt.NDArray[np.float64]
    slot_ids: list[str]
    slot_of: dict[str, int]

    def top(self, k: int) -> tuple[ScoreArray, list[str]]:
        """(scores (n,), ids) of the best n ≤ k documents with a positive score, best first (ties by slot)."""
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        matched = np.flatnonzero(self.values > 0)
        if matched.size > k:
            matched = matched[np.argpartition(-self.values[matched], k - 1)[:k]]
        order = matched[np.lexsort((matched, -self.values[matched]))]
        return self.values[order].astype(np.float32), [self.slot_ids[slot] for slot in order]

    def ranked(self) -> tuple[ScoreArray, list[str]]:
        """Every document with a positive score, best first."""
        return self.top(max(len(self.slot_ids), 1))

    def of(self, doc_ids: Sequence[str]) -> ScoreArray:
        """(n,) scores of the given documents (0 for ids not in the index)."""
        slots = [self.slot_of.get(doc_id, -1) for doc_id in doc_ids]
        return np.asarray([self.values[s] if 0 <= s < self.values.size else 0.0 for s in slots], dtype=np.float32)


class Bm25Index:
    """An in-memory BM25 inverted index keyed by string document ids; thread-safe.

    Deletes and replacements mark the old slot dead; the postings are rebuilt once half of the slots are dead.

    >>> index = Bm25Index()
    >>> index.upsert(["a", "b"], [{"statin": 2, "heart": 1}, {"heart": 1}])
    >>> scores, ids = index.search(["statin"], 5)
    >>> ids, len(index)
    (['a'], 2)
    """

    def __init__(self, parameters: Bm25Parameters | None = None) -> None:
        self.parameters = parameters or Bm25Parameters()
        self._lock = threading.RLock()
        self._reset()

    def _reset(self) -> None:
        self._postings: dict[str, _Postings] = {}
        self._slot_of: dict[str, int] = {}
        self._ids: list[str] = []
        self._terms_of: list[tuple[str, ...]] = []
        self._lengths = np.zeros(16, dtype=np.float32)
        self._alive = np.zeros(16, dtype=bool)
        self._total_length = 0.0
        self._contribution_cache: dict[str, tuple[IntArray, npt.NDArray[np.float64]] | None] = {}

    def __len__(self) -> int:
        return len(self._slot_of)

    def __contains__(self, doc_id: object) -> bool:
        return doc_id in self._slot_of

    def doc_ids(self) -> list[str]:
        with self._lock:
            return list(self._slot_of)

    # ------------------------------------------------------------------ writes

    def upsert(self, doc_ids: Sequence[str], term_counts: Sequence[TermCounts]) -> None:
        """Add or replace documents given their term counts (as from `Analyzer.term_counts`)."""
        if len(doc_ids) != len(term_counts):
            raise InvalidInputError(f"got {len(doc_ids)} ids but {len(term_counts)} term-count maps")
        with self._lock:
            self._contribution_cache.clear()  # N, df and the mean length change with every write
            self._remove(doc_ids)
            for doc_id, counts in zip(doc_ids, term_counts, strict=True):
                self._add(doc_id, counts)

    def delete(self, doc_ids: Iterable[str]) -> None:
        """Remove documents; unknown ids are ignored."""
        with self._lock:
            self._contribution_cache.clear()
            self._remove(doc_ids)
            if len(self._ids) and len(self._slot_of) < (1 - _COMPACT_WHEN_DEAD) * len(self._ids):
                self._compact()

    # ------------------------------------------------------------------ reads

    def statistics(self) -> tuple[int, float]:
        """(live documents, their mean length in terms)."""
        with self._lock:
            live = len(self._slot_of)
            return live, (self._total_length / live if live else 0.0)

    def scores(self, query_terms: Sequence[str]) -> Bm25Scores:
        """Every document's BM25 score for the query, computed once; read top-k and given ids from it."""
        with self._lock:
            # No copies: slot ids are append-only (compaction builds new containers) and a concurrent write
            # can at worst make `of` see a document's newer slot, whose score is then 0.
            return Bm25Scores(self._score_all(query_terms), self._ids, self._slot_of)

    def search(self, query_terms: Sequence[str], k: int) -> tuple[ScoreArray, list[str]]:
        """(scores (n,), ids) of the best n ≤ k documents sharing a term with the query, best first."""
        return self.scores(query_terms).top(k)

    def score(self, query_terms: Sequence[str], doc_ids: Sequence[str]) -> ScoreArray:
        """(n,) BM25 scores of the given documents (0 for unknown ids or no shared term)."""
        return self.scores(query_terms).of(doc_ids)

    # ------------------------------------------------------------------ internals

    def _score_all(self, query_terms: Sequence[str]) -> npt.NDArray[np.float64]:
        scores = np.zeros(len(self._ids), dtype=np.float64)
        if not self._slot_of:
            return scores
        for term, repeats in Counter(query_terms).items():
            contribution = self._contributions(term)
            if contribution is not None:
                slots, values = contribution
                scores[slots] += repeats * values
        return scores

    def _contributions(self, term: str) -> tuple[IntArray, npt.NDArray[np.float64]] | None:
        """(live slots, their BM25 contribution) for one term; cached until the next write changes N or lengths."""
        cached = self._contribution_cache.get(term)
        if cached is not None or term in self._contribution_cache:
            return cached
        postings = self._postings.get(term)
        result = None
        if postings is not None:
            slots, tfs = postings.view()
            alive = self._alive[slots]
            slots, tfs = slots[alive], tfs[alive].astype(np.float64)
            if slots.size:
                live = len(self._slot_of)
                mean_length = self._total_length / live or 1.0
                k1, b = self.parameters.k1, self.parameters.b
                idf = np.log1p((live - slots.size + 0.5) / (slots.size + 0.5))
                norm = k1 * (1.0 - b + b * self._lengths[slots] / mean_length)
                result = (slots, idf * tfs / (tfs + norm))
        if len(self._contribution_cache) >= _CONTRIBUTION_CACHE_TERMS:
            self._contribution_cache.clear()
        self._contribution_cache[term] = result
        return result

    def _add(self, doc_id: str, counts: TermCounts) -> None:
        slot = len(self._ids)
        if slot == self._lengths.size:
            self._lengths = np.resize(self._lengths, slot * 2)
            self._alive = np.resize(self._alive, slot * 2)
        length = float(sum(counts.values()))
        self._ids.append(doc_id)
        self._terms_of.append(tuple(counts))
        self._lengths[slot] = length
        self._alive[slot] = True
        self._slot_of[doc_id] = slot
        self._total_length += length
        for term, tf in counts.items():
            if tf < 1:
                raise InvalidInputError(f"term {term!r} of document {doc_id!r} has count {tf}; counts must be >= 1")
            postings = self._postings.get(term)
            if postings is None:
                postings = self._postings[term] = _Postings()
            postings.append(slot, tf)

    def _remove(self, doc_ids: Iterable[str]) -> None:
        for doc_id in doc_ids:
            slot = self._slot_of.pop(doc_id, None)
            if slot is not None:
                self._alive[slot] = False
                self._total_length -= float(self._lengths[slot])

    def _compact(self) -> None:
        live = [(doc_id, slot) for doc_id, slot in sorted(self._slot_of.items(), key=lambda item: item[1])]
        old_postings, old_terms = self._postings, self._terms_of
        counts_of: list[dict[str, int]] = [{} for _ in live]
        index_of = {slot: i for i, (_, slot) in enumerate(live)}
        for term in {t for _, slot in live for t in old_terms[slot]}:
            slots, tfs = old_postings[term].view()
            for slot, tf in zip(slots.tolist(), tfs.tolist(), strict=True):
                if slot in index_of:
                    counts_of[index_of[slot]][term] = int(tf)
        self._reset()
        for (doc_id, _), counts in zip(live, counts_of, strict=True):
            self._add(doc_id, counts)
