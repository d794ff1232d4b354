"""The query side's third linking path: query phrases whose embedding is near a concept name's (cosine ≥ threshold).

The encoder is a plain callable (texts → (n, d) unit rows), so `kg` needs no service code. Concept-name embeddings
are computed once and cached on disk, keyed by the encoder's name and the names embedded.

By default (`EmbeddingOptions.static`) queries cost no encoder call: a phrase's vector is the normalised sum of its
words' vectors (`WordVectors`, Model2Vec-style: every word of the concept labels embedded alone by the same encoder,
once, cached on disk), compared with the concept names nearest to its words. A one-word phrase gets exactly the
vector the encoder gives it; longer phrases get an approximation.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from kg.base import Mention
from kg.graph import CompactGraph
from kg.linking import LabelTable, inflection_key
from kg.stopwords import COMMON_WORDS, STOPWORDS
from kg.text import normalise

Encode = Callable[[list[str]], np.ndarray]

_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_TOKEN = re.compile(r"[^\W_]+")  # the words of a normalised phrase or label (as `kg.linking` splits them)
# Only spaces may join the words of one phrase; any other character (punctuation, brackets) ends a phrase.
_JOINER = re.compile(r" +")
# A concept name that adds one of these words to a phrase names a finding about it, not it ("T cells" is not
# "lack of T cell function", "mitosis" not "decreased mitosis"); chosen on SciFact train queries.
QUALIFIERS = frozenset({
    "abnormal", "abnormality", "abnormally", "increased", "decreased", "reduced", "elevated", "lack", "absent",
    "absence", "defective", "deficiency", "deficient", "minimal", "impaired", "loss", "excess", "excessive",
    "inhibition", "triggered",
})  # fmt: skip
# A name whose word looks like the phrase's but adds a disease suffix names a disease of it ("neutrophil" is not
# "neutrophilia", "fibrosis" not "fibroma", "mesenchymal" not "mesenchymoma").
DISEASE_SUFFIXES = ("oma", "ia", "itis", "osis", "pathy", "megaly", "cephaly")
# A name made of all the phrase's words and more names something narrower ("cells" is not "target cells", "stress"
# not "triggered by stress"), unless the extra words are only these heads ("immune" → "immune system").
GENERIC_HEADS = frozenset({"system", "tissue"})
# Users' triples files give kind "Entity".
DEFAULT_KINDS = frozenset({"Disease", "Phenotype", "Compound", "Anatomy", "Pharmacologic Class", "Symptom", "Entity"})


@dataclass(frozen=True)
class EmbeddingOptions:
    """Which phrases are tried and which matches are kept.

    Attributes:
        threshold: least cosine between a phrase and a concept name for a match.
        max_words: longest phrase tried (words).
        max_phrases: at most this many phrases per query are embedded (longest chunks' phrases first).
        kinds: node kinds whose names are embedded (gene symbols and pathway names embed poorly).
        fallback_only: `KnowledgeGraph.link_query` runs this path only when the exact and stemmed paths link
            nothing (the encoder call costs tens of milliseconds, and these links are the least precise).
        cache_size: phrase embeddings kept in memory (least recently used dropped first; 0 keeps none).
        reject_qualified: skip a match whose concept name adds a `QUALIFIERS` word or a look-alike word with a
            `DISEASE_SUFFIXES` ending to the phrase (`changes_meaning`).
        static: phrase vectors from cached per-word vectors (`WordVectors`), no encoder call per query.
        nearest_per_word: with `static`, how many concept names nearest to each word are compared with a phrase.
        require_lexical_match: keep a match only when the phrase and the concept name also agree word by word
            (`lexically_close`): no look-alikes (*glutamate* → *Hydrocortamate*) and no other-word names (*Breast* →
            *nipple*); precise, at a cost in recall.
    """

    threshold: float = 0.7
    max_words: int = 3
    max_phrases: int = 16
    kinds: frozenset[str] = DEFAULT_KINDS
    fallback_only: bool = True
    cache_size: int = 4096
    reject_qualified: bool = True
    static: bool = True
    nearest_per_word: int = 32
    require_lexical_match: bool = False

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine in [-1, 1], got {self.threshold}")
        if self.max_words < 1 or self.max_phrases < 1 or self.nearest_per_word < 1:
            raise ValueError(
                "max_words, max_phrases and nearest_per_word must be at least 1, "
                f"got {self.max_words}, {self.max_phrases}, {self.nearest_per_word}"
            )


@dataclass(frozen=True)
class Phrase:
    """A candidate phrase of a text: characters [start, end) and the text there."""

    start: int
    end: int
    text: str


def query_phrases(text: str, max_words: int = 3, limit: int = 32) -> list[Phrase]:
    """Word n-grams (1 to `max_words`) inside runs of content words; no stop word at either end, no lone common
    or short word; at most `limit`, longer phrases first.

    >>> [p.text for p in query_phrases("Statins reduce the risk of heart attacks.", 2)]
    ['Statins reduce', 'heart attacks', 'Statins', 'reduce', 'risk', 'heart', 'attacks']
    """
    words = list(_WORD.finditer(text))
    runs: list[list[re.Match[str]]] = []
    current: list[re.Match[str]] = []
    for word in words:
        joined = current and _JOINER.fullmatch(text[current[-1].end() : word.start()])
        if word.group().casefold() in STOPWORDS:
            if current:
                runs.append(current)
            current = []
            continue
        if current and not joined:
            runs.append(current)
            current = []
        current.append(word)
    if current:
        runs.append(current)
    found: list[Phrase] = []
    for size in range(max_words, 0, -1):
        for run in runs:
            for first in range(len(run) - size + 1):
                span = run[first : first + size]
                phrase = text[span[0].start() : span[-1].end()]
                key = phrase.casefold()
                if size == 1 and (len(key) < 4 or key in COMMON_WORDS or key.isdigit()):
                    continue
                found.append(Phrase(span[0].start(), span[-1].end(), phrase))
    return found[:limit]


def changes_meaning(phrase: str, label: str) -> bool:
    """True when concept name `label` is a finding about, a disease of, or a narrower thing than `phrase`: it adds a
    `QUALIFIERS` word; or a word sharing the phrase word's first 5 letters with a `DISEASE_SUFFIXES` ending that the
    phrase word lacks; or it holds all the phrase's words (up to `inflection_key`) and more than `GENERIC_HEADS`.

    >>> [changes_meaning(p, l) for p, l in [("T cells", "lack of t cell function"), ("neutrophils", "neutrophilia")]]
    [True, True]
    >>> [changes_meaning(p, l) for p, l in [("cells", "target cells"), ("stress", "triggered by stress")]]
    [True, True]
    >>> [changes_meaning(p, l) for p, l in [("epithelial", "epithelium"), ("immune", "immune system")]]
    [False, False]
    """
    phrase_words = _TOKEN.findall(normalise(phrase))
    label_words = _TOKEN.findall(normalise(label))
    if any(word in QUALIFIERS and word not in phrase_words for word in label_words):
        return True
    phrase_keys = {inflection_key(word) for word in phrase_words}
    label_keys = {inflection_key(word) for word in label_words}
    if phrase_keys < label_keys and not label_keys - phrase_keys <= {inflection_key(w) for w in GENERIC_HEADS}:
        return True
    for word in phrase_words:
        for other in label_words:
            looks_alike = len(word) >= 5 and other[:5] == word[:5] and other != word
            if looks_alike and any(other.endswith(end) and not word.endswith(end) for end in DISEASE_SUFFIXES):
                return True
    return False


def lexically_close(phrase: str, label: str) -> bool:
    """True when every content word of `phrase` and of concept name `label` (less `GENERIC_HEADS`) has a partner on
    the other side: the same word up to `inflection_key`, or one sharing a first part of at least 4 letters and 60 %
    of the longer word (*myocardial* / *myocardium*, *arterial* / *artery*). The embedding ranks; this keeps only
    the matches a reader would accept as the same concept.

    >>> [lexically_close(p, l) for p, l in [("myocardial", "myocardium"), ("immune", "immune system")]]
    [True, True]
    >>> [lexically_close(p, l) for p, l in [("glutamate", "Hydrocortamate"), ("lipid", "lip"), ("Breast", "nipple")]]
    [False, False, False]
    >>> lexically_close("plasma cells", "blood plasma"), lexically_close("Excess Estrogen", "estrogen excess")
    (False, True)
    """
    phrase_words = [w for w in _TOKEN.findall(normalise(phrase)) if w not in STOPWORDS]
    label_words = [w for w in _TOKEN.findall(normalise(label)) if w not in STOPWORDS and w not in GENERIC_HEADS]
    if not phrase_words or not label_words:
        return False
    return all(any(_same_word(a, b) for b in phrase_words) for a in label_words) and all(
        any(_same_word(a, b) for b in label_words) for a in phrase_words
    )


def _same_word(first: str, second: str) -> bool:
    if first == second or inflection_key(first) == inflection_key(second):
        return True
    shared = next(
        (i for i, (a, b) in enumerate(zip(first, second, strict=False)) if a != b), min(len(first), len(second))
    )
    return shared >= 4 and shared >= 0.6 * max(len(first), len(second))


def embedded_labels(graph: CompactGraph, table: LabelTable, kinds: Collection[str]) -> list[str]:
    """The normalised names (not synonyms) of nodes of `kinds` that the linker's table keeps, sorted, each once."""
    keys = set()
    for index, kind in enumerate(graph.kinds):
        if kind in kinds:
            key = normalise(graph.names[index])
            if key in table.entries and key not in table.symbols:
                keys.add(key)
    return sorted(keys)


def cached_embeddings(labels: Sequence[str], encode: Encode, encoder_name: str, cache_dir: Path | None) -> np.ndarray:
    """(n, d) float32 embeddings of `labels`, read from `cache_dir` when an earlier run wrote them.

    The file is named by a digest of the encoder name and the labels, so another encoder or label set never
    reads it; it is written to a temporary file and renamed.
    """
    if not labels:
        return np.zeros((0, 0), dtype=np.float32)

    def compute() -> np.ndarray:
        return np.asarray(encode(list(labels)), dtype=np.float32).reshape(len(labels), -1)

    vectors = _cached_array(cache_dir, "label-embeddings", [encoder_name, *labels], len(labels), compute)
    return np.asarray(vectors, dtype=np.float32)


def _cached_array(
    cache_dir: Path | None, prefix: str, key: Sequence[str], rows: int, compute: Callable[[], np.ndarray]
) -> np.ndarray:
    """An array read from ``<cache_dir>/<prefix>-<digest of key>.npy`` when it has `rows` rows, else computed and
    written there (temporary file, then rename)."""
    digest = hashlib.sha256(key[0].encode())
    for part in key[1:]:
        digest.update(b"\0" + part.encode())
    path = cache_dir / f"{prefix}-{digest.hexdigest()[:20]}.npy" if cache_dir else None
    if path is not None and path.is_file():
        found = np.load(path)
        if found.shape[0] == rows:
            return np.asarray(found)
    array = compute()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy")
        os.close(handle)
        np.save(temporary, array)
        os.replace(temporary, path)
    return array


def label_words(table: LabelTable) -> list[str]:
    """The distinct words of the table's labels (gene symbols left out), sorted: `WordVectors`' vocabulary."""
    return sorted({word for key in table.entries if key not in table.symbols for word in _TOKEN.findall(key)})


@dataclass(frozen=True)
class WordVectors:
    """Static phrase embeddings: a phrase's vector is the normalised sum of its words' vectors.

    Attributes:
        index: word → row of `vectors` and `nearest`.
        vectors: (V, d) unit rows, each word embedded alone by the encoder.
        nearest: (V, k) per word, the rows of the concept-name vectors nearest to it, nearest first; a phrase is
            compared with the union of its words' lists (the names an average of word vectors can be nearest to).
    """

    index: Mapping[str, int]
    vectors: np.ndarray
    nearest: np.ndarray

    @classmethod
    def build(
        cls,
        words: Sequence[str],
        label_vectors: np.ndarray,
        encode: Encode,
        key: Sequence[str],
        cache_dir: Path | None,
        nearest_per_word: int,
    ) -> WordVectors:
        """Embed `words` (or read them from `cache_dir`) and find each one's nearest concept names.

        Args:
            words: the vocabulary (see `label_words`).
            label_vectors: (n, d) unit concept-name vectors.
            encode: texts → (n, d) unit rows.
            key: names the encoder and the label set in the cache files' digests.
            cache_dir: where both arrays are cached; None computes them.
            nearest_per_word: names kept per word.
        """
        if not words or not label_vectors.size:
            return cls({}, np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int32))

        def embed() -> np.ndarray:
            return np.asarray(encode(list(words)), dtype=np.float32).reshape(len(words), -1)

        vectors = np.asarray(_cached_array(cache_dir, "word-embeddings", [*key[:1], *words], len(words), embed))
        keep = min(nearest_per_word, label_vectors.shape[0])

        def nearest() -> np.ndarray:
            rows = np.empty((len(words), keep), np.int32)
            for start in range(0, len(words), 256):
                similarity = vectors[start : start + 256] @ label_vectors.T
                top = np.argpartition(-similarity, keep - 1, axis=1)[:, :keep]
                order = np.argsort(-np.take_along_axis(similarity, top, axis=1), axis=1, kind="stable")
                rows[start : start + 256] = np.take_along_axis(top, order, axis=1)
            return rows

        digest_key = [*key, f"k={keep}", *words]
        near = np.asarray(_cached_array(cache_dir, "word-nearest", digest_key, len(words), nearest), np.int32)
        return cls({word: row for row, word in enumerate(words)}, vectors.astype(np.float32), near)

    def words_of(self, phrase: str) -> list[int] | None:
        """The vocabulary rows of a phrase's words, or None when one of them is not in the vocabulary."""
        rows = []
        for word in _TOKEN.findall(normalise(phrase)):
            row = self.index.get(word)
            if row is None:
                return None
            rows.append(row)
        return rows or None


class EmbeddingLinker:
    """Links query phrases to the concept whose name is nearest by embedding, when the cosine passes a threshold.

    Each mention's `label` is the text at its span (`method` "embedding"), so it is faithful by construction;
    the concept's own name comes from the graph.

    >>> import numpy as np
    >>> table = LabelTable({"hypertension": ("hypertension", ("D1",))})
    >>> vectors = {"hypertension": [1.0, 0.0], "high blood pressure": [0.96, 0.28]}
    >>> def encode(texts): return np.asarray([vectors.get(t.lower(), [0.0, 1.0]) for t in texts], np.float32)
    >>> linker = EmbeddingLinker(["hypertension"], np.asarray(encode(["hypertension"])), encode)
    >>> [(m.concept_id, m.label) for m in linker.link("Drugs for high blood pressure", table)]
    [('D1', 'high blood pressure')]
    """

    def __init__(
        self,
        labels: Sequence[str],
        vectors: np.ndarray,
        encode: Encode,
        options: EmbeddingOptions | None = None,
        words: WordVectors | None = None,
    ) -> None:
        """A linker over concept names `labels` with their unit `vectors`; with `words`, phrases are embedded
        statically (no call to `encode`), otherwise by `encode`."""
        if len(labels) != vectors.shape[0]:
            raise ValueError(f"{len(labels)} labels but {vectors.shape[0]} vectors")
        self.labels = tuple(labels)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.encode = encode
        self.options = options or EmbeddingOptions()
        self.words = words
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embed(self, phrases: Sequence[str]) -> np.ndarray:
        """(n, d) embeddings of `phrases`: one encoder call for those not in the in-memory cache."""
        with self._lock:
            known = {p: self._cache[p] for p in phrases if p in self._cache}
            for phrase in known:
                self._cache.move_to_end(phrase)
        todo = list(dict.fromkeys(p for p in phrases if p not in known))
        if todo:
            fresh = np.asarray(self.encode(todo), dtype=np.float32).reshape(len(todo), -1)
            known.update(zip(todo, fresh, strict=True))
            if self.options.cache_size > 0:
                with self._lock:
                    for phrase in todo:
                        self._cache[phrase] = known[phrase]
                    while len(self._cache) > self.options.cache_size:
                        self._cache.popitem(last=False)
        return np.stack([known[p] for p in phrases])

    @classmethod
    def for_graph(
        cls,
        graph: CompactGraph,
        table: LabelTable,
        encode: Encode,
        encoder_name: str,
        cache_dir: Path | None = None,
        options: EmbeddingOptions | None = None,
    ) -> EmbeddingLinker:
        """Embed (or read from the cache) the names of the graph's nodes of `options.kinds` that `table` keeps, and
        with `options.static` the words of the table's labels (`WordVectors`)."""
        options = options or EmbeddingOptions()
        labels = embedded_labels(graph, table, options.kinds)
        vectors = cached_embeddings(labels, encode, encoder_name, cache_dir)
        words = None
        if options.static:
            label_key = hashlib.sha256("\0".join(labels).encode()).hexdigest()
            key = [encoder_name, label_key]
            words = WordVectors.build(label_words(table), vectors, encode, key, cache_dir, options.nearest_per_word)
        return cls(labels, vectors, encode, options, words)

    def candidates(self, text: str, taken: Sequence[tuple[int, int]] = ()) -> list[tuple[Phrase, str, float]]:
        """(phrase, nearest label, cosine) for each phrase of `text` that overlaps no `taken` span, best first."""
        phrases = [
            p
            for p in query_phrases(text, self.options.max_words, 4 * self.options.max_phrases)
            if all(p.end <= a or p.start >= b for a, b in taken)
        ][: self.options.max_phrases]
        if not phrases or not self.labels:
            return []
        if self.words is not None:
            return self._static_candidates(phrases, self.words)
        embedded = self.embed([p.text for p in phrases])
        similarity = embedded @ self.vectors.T
        best = similarity.argmax(axis=1)
        scores = similarity[np.arange(len(phrases)), best]
        found = [(p, self.labels[int(b)], float(s)) for p, b, s in zip(phrases, best, scores, strict=True)]
        return sorted(found, key=lambda item: (-item[2], item[0].start - item[0].end, item[0].start))

    def _static_candidates(self, phrases: Sequence[Phrase], words: WordVectors) -> list[tuple[Phrase, str, float]]:
        """`candidates` with static phrase vectors: each phrase against the names nearest to any phrase's words."""
        known: list[tuple[Phrase, list[int]]] = []
        for phrase in phrases:
            rows = words.words_of(phrase.text)
            if rows is not None:
                known.append((phrase, rows))
        if not known:
            return []
        embedded = np.stack([words.vectors[rows].sum(axis=0) for _phrase, rows in known])
        embedded /= np.maximum(np.linalg.norm(embedded, axis=1, keepdims=True), 1e-12)
        pool = np.unique(words.nearest[sorted({row for _phrase, rows in known for row in rows})])
        similarity = embedded @ self.vectors[pool].T
        best = similarity.argmax(axis=1)
        scores = similarity[np.arange(len(known)), best]
        found = [
            (phrase, self.labels[int(pool[b])], float(score))
            for (phrase, _rows), b, score in zip(known, best, scores, strict=True)
        ]
        return sorted(found, key=lambda item: (-item[2], item[0].start - item[0].end, item[0].start))

    def link(self, text: str, table: LabelTable, taken: Sequence[tuple[int, int]] = ()) -> list[Mention]:
        """Mentions for the best-matching phrases (cosine ≥ threshold) that overlap neither each other nor `taken`.

        Args:
            text: the query.
            table: the linker's current table; a label it no longer holds (e.g. dropped as too frequent) is skipped.
            taken: spans already linked by the exact or stemmed paths.
        """
        spans = list(taken)
        mentions: list[Mention] = []
        entries: Mapping[str, tuple[str, tuple[str, ...]]] = table.entries
        for phrase, label, score in self.candidates(text, taken):
            if score < self.options.threshold or label not in entries:
                continue
            if self.options.reject_qualified and changes_meaning(phrase.text, label):
                continue
            if self.options.require_lexical_match and not lexically_close(phrase.text, label):
                continue
            if any(phrase.start < b and phrase.end > a for a, b in spans):
                continue
            spans.append((phrase.start, phrase.end))
            mentions.extend(
                Mention(concept_id, phrase.text, phrase.start, phrase.end, "embedding")
                for concept_id in entries[label][1]
            )
        return sorted(mentions, key=lambda m: (m.start, m.end, m.concept_id))
