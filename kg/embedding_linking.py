"""The query side's third linking path: query phrases whose embedding is near a concept name's (cosine ≥ threshold).

The encoder is a plain callable (texts → (n, d) unit rows), so `kg` needs no service code. Concept-name embeddings
are computed once and cached on disk, keyed by the encoder's name and the names embedded.
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
from kg.linking import LabelTable
from kg.stopwords import COMMON_WORDS, STOPWORDS
from kg.text import normalise

Encode = Callable[[list[str]], np.ndarray]

_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
# Only spaces may join the words of one phrase; any other character (punctuation, brackets) ends a phrase.
_JOINER = re.compile(r" +")
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
    """

    threshold: float = 0.8
    max_words: int = 3
    max_phrases: int = 8
    kinds: frozenset[str] = DEFAULT_KINDS
    fallback_only: bool = True
    cache_size: int = 4096

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ValueError(f"threshold must be a cosine in [-1, 1], got {self.threshold}")
        if self.max_words < 1 or self.max_phrases < 1:
            raise ValueError(f"max_words and max_phrases must be at least 1, got {self.max_words}, {self.max_phrases}")


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
    digest = hashlib.sha256(encoder_name.encode())
    for label in labels:
        digest.update(b"\0" + label.encode())
    path = cache_dir / f"label-embeddings-{digest.hexdigest()[:20]}.npy" if cache_dir else None
    if path is not None and path.is_file():
        vectors = np.load(path)
        if vectors.shape[0] == len(labels):
            return np.asarray(vectors, dtype=np.float32)
    if not labels:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray(encode(list(labels)), dtype=np.float32).reshape(len(labels), -1)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npy")
        os.close(handle)
        np.save(temporary, vectors)
        os.replace(temporary, path)
    return vectors


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
        self, labels: Sequence[str], vectors: np.ndarray, encode: Encode, options: EmbeddingOptions | None = None
    ) -> None:
        if len(labels) != vectors.shape[0]:
            raise ValueError(f"{len(labels)} labels but {vectors.shape[0]} vectors")
        self.labels = tuple(labels)
        self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.encode = encode
        self.options = options or EmbeddingOptions()
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
        """Embed (or read from the cache) the names of the graph's nodes of `options.kinds` that `table` keeps."""
        options = options or EmbeddingOptions()
        labels = embedded_labels(graph, table, options.kinds)
        return cls(labels, cached_embeddings(labels, encode, encoder_name, cache_dir), encode, options)

    def candidates(self, text: str, taken: Sequence[tuple[int, int]] = ()) -> list[tuple[Phrase, str, float]]:
        """(phrase, nearest label, cosine) for each phrase of `text` that overlaps no `taken` span, best first."""
        phrases = [
            p
            for p in query_phrases(text, self.options.max_words, 4 * self.options.max_phrases)
            if all(p.end <= a or p.start >= b for a, b in taken)
        ][: self.options.max_phrases]
        if not phrases or not self.labels:
            return []
        embedded = self.embed([p.text for p in phrases])
        similarity = embedded @ self.vectors.T
        best = similarity.argmax(axis=1)
        scores = similarity[np.arange(len(phrases)), best]
        found = [(p, self.labels[int(b)], float(s)) for p, b, s in zip(phrases, best, scores, strict=True)]
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
            if any(phrase.start < b and phrase.end > a for a, b in spans):
                continue
            spans.append((phrase.start, phrase.end))
            mentions.extend(
                Mention(concept_id, phrase.text, phrase.start, phrase.end, "embedding")
                for concept_id in entries[label][1]
            )
        return sorted(mentions, key=lambda m: (m.start, m.end, m.concept_id))
