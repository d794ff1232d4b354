"""IMRNN explanations: the words a query or a document moved toward (and away from) under modulation.

A modulation shift (``Δq`` for the query, ``Δd_i`` for a candidate) is the unit-length modulated vector minus the
unit-length *unmodulated* one, ``LN(½·p)`` — what the adapter computes with a constant scale (sigmoid 0) and no
shift. (The design writes ``q̃ - p_q``; that difference would also contain the layer norm's centring and affine
map, which are the same for every query, so every query would "move" toward the same words.) A shift is zero
exactly when the modulation is constant, and then no word is reported.

Words are vocabulary entries embedded by the *serving sentence encoder* (each word encoded alone, unit length:
the space the pooled query and document embeddings live in) and then taken through the adapter's own
unmodulated path, ``u_w = unit(LN(½·L2(W e_w + b)))``, as if each word were a candidate document. A word's
weight for a shift is the change of its cosine to the vector under modulation::

    cos(q̃, u_w) - cos(LN(½·p_q), u_w) = u_w · Δq          (Δ similarity, one product per word)

Ranked over the whole vocabulary, the extremes are dominated by directions every shift shares (on SciFact every
query moves "away" from cells, vitro, hormones) and by words unrelated to the text. So, given the text's
projected vector p (`anchors`), the words are first narrowed to the `pool` words nearest to p (cosine of p and
``L2(W e_w + b)``, centred on the vocabulary mean: what the text is about), and those are ranked by Δ similarity:
"toward" are the text's words the modulation brought closer, "away" those it pushed off. The pool depends on the
text only, the ranking on the modulation only, so the words still change when and only when the modulation does.
(The design's back-projection of the shift through W⁺ onto the encoder's *input* token embeddings named
unrelated words: the input table is not the space mean-pooled sentence embeddings live in.)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapters.errors import AdapterError
from adapters.imrnn import ImrnnAdapter, Modulation

FloatMatrix = npt.NDArray[np.float32]
_ZERO_SHIFT = 1e-6
MIN_WORD_CHARS = 3
SKETCH_DIMENSIONS = 64
SKETCH_FACTOR = 8

# Function words and other words that carry no topic (a common English list, lowercase).
# fmt: off
STOPWORDS = frozenset(
    [
        "about", "above", "after", "again", "against", "all", "also", "although", "among", "and", "any", "are", "aren",
        "because", "been", "before", "being", "below", "between", "both", "but", "can", "cannot", "could", "did",
        "does", "doing", "down", "during", "each", "eight", "either", "else", "etc", "even", "ever", "every", "few",
        "first", "five", "for", "four", "from", "further", "had", "has", "have", "having", "her", "here", "hers",
        "herself", "him", "himself", "his", "how", "however", "into", "its", "itself", "just", "least", "less", "let",
        "like", "made", "make", "many", "may", "might", "more", "most", "much", "must", "myself", "neither", "nine",
        "nor", "not", "now", "off", "often", "once", "one", "only", "other", "others", "otherwise", "our", "ours",
        "ourselves", "out", "over", "own", "per", "perhaps", "quite", "rather", "same", "second", "seven", "several",
        "shall", "she", "should", "since", "six", "some", "still", "such", "ten", "than", "that", "the", "their",
        "theirs", "them", "themselves", "then", "there", "thereby", "therefore", "these", "they", "third", "this",
        "those", "though", "three", "through", "thus", "too", "toward", "towards", "two", "under", "until", "upon",
        "very", "via", "was", "were", "what", "whatever", "when", "where", "whereas", "whether", "which", "while",
        "who", "whom", "whose", "why", "will", "with", "within", "without", "would", "yet", "you", "your", "yours",
        "yourself", "yourselves",
    ]
)
# fmt: on


def is_word_token(token: str) -> bool:
    """Whether a vocabulary entry is a whole lowercase-able ASCII word of 3+ letters that is not a stopword.

    >>> [is_word_token(t) for t in ["[CLS]", "##ing", "vaccine", "an", "1990", "é", "the", "which"]]
    [False, False, True, False, False, False, False, False]
    """
    return len(token) >= MIN_WORD_CHARS and token.isascii() and token.isalpha() and token.lower() not in STOPWORDS


def word_tokens(vocabulary: Sequence[str]) -> list[str]:
    """The entries of a tokeniser vocabulary that can name a shift (`is_word_token`), in order, without repeats.

    >>> word_tokens(["[PAD]", "cell", "##s", "of", "cell", "tumour"])
    ['cell', 'tumour']
    """
    return list(dict.fromkeys(token for token in vocabulary if is_word_token(token)))


@dataclass(frozen=True)
class TokenVocabulary:
    """Words and their (V, d) embeddings, L2-normalised (ideally each word encoded by the serving encoder)."""

    tokens: tuple[str, ...]
    embeddings: FloatMatrix

    @classmethod
    def from_arrays(cls, embeddings: npt.ArrayLike, vocabulary: Sequence[str]) -> TokenVocabulary:
        """Keep the word entries (`is_word_token`) of a (V, d) matrix and its V tokens, rows made unit length.

        Raises:
            AdapterError: the matrix and the vocabulary differ in length, or no word token is left.
        """
        matrix = np.asarray(embeddings, dtype=np.float32)
        if matrix.ndim != 2 or matrix.shape[0] != len(vocabulary):
            raise AdapterError(
                f"token embeddings of shape {matrix.shape} do not match a vocabulary of {len(vocabulary)} tokens"
            )
        keep = [i for i, token in enumerate(vocabulary) if is_word_token(token)]
        if not keep:
            raise AdapterError("the vocabulary holds no whole-word token to explain with")
        return cls(tuple(vocabulary[i] for i in keep), _unit_rows(matrix[keep]))


@dataclass(frozen=True)
class TokenShift:
    """Words a shift points toward (cosine rose) and away from (cosine fell), each with the change of its cosine.

    Either side may hold fewer than `top` words (none when no candidate word moved that way).
    """

    toward: tuple[tuple[str, float], ...]
    away: tuple[tuple[str, float], ...]
    magnitude: float


def _unit_rows(x: FloatMatrix) -> FloatMatrix:
    unit = x / np.maximum(np.sqrt(np.einsum("ij,ij->i", x, x)), 1e-12)[:, None]
    return np.ascontiguousarray(unit, dtype=np.float32)


class ShiftExplainer:
    """Names the words behind an adapter's modulation shifts.

    Args:
        adapter: the trained IMRNN adapter; the vocabulary is taken through its unmodulated path once, here.
        vocabulary: words and their embeddings in the encoder's output space.
        top: words reported on each side.
        pool: with anchors, how many of the text's nearest words are ranked (at least 2·top).
    """

    def __init__(self, adapter: ImrnnAdapter, vocabulary: TokenVocabulary, top: int = 5, pool: int = 30) -> None:
        if vocabulary.embeddings.shape[1] != adapter.dimension:
            raise AdapterError(
                f"token embeddings are {vocabulary.embeddings.shape[1]}-d, the adapter is {adapter.dimension}-d"
            )
        if top < 1 or pool < 1:
            raise AdapterError(f"top and pool must be >= 1, got {top} and {pool}")
        self._adapter = adapter
        self._vocabulary = vocabulary
        size = len(vocabulary.tokens)
        self._top = min(top, size)
        self._pool = min(max(pool, 2 * self._top), size)
        words = np.asarray(vocabulary.embeddings, dtype=np.float32)
        projected = _unit_rows(
            words @ adapter.projection.weight.detach().cpu().numpy().astype(np.float32).T
            + adapter.projection.bias.detach().cpu().numpy().astype(np.float32)
        )
        # (V, d) u_w: each word as the adapter sees an unmodulated candidate
        self._words = _unit_rows(adapter.unmodulated(projected))
        # (V, d) the projected words, centred on their mean: which words a text is about
        self._anchor_words = _unit_rows(projected - projected.mean(axis=0))
        # a (d, k) principal-axes sketch of them: the pool is the exact best `pool` among the best
        # `SKETCH_FACTOR · pool` by the sketch (one (r, k) x (k, V) product instead of (r, d) x (d, V), which on
        # a CPU reads the whole 32 MB table from memory for every query)
        self._sketch: FloatMatrix | None = None
        if adapter.dimension > SKETCH_DIMENSIONS:
            covariance = self._anchor_words.T.astype(np.float64) @ self._anchor_words.astype(np.float64)
            axes = np.linalg.eigh(covariance)[1][:, ::-1][:, :SKETCH_DIMENSIONS]  # largest eigenvalues first
            self._sketch = np.ascontiguousarray(axes, dtype=np.float32)
            self._sketched_words_t = np.ascontiguousarray((self._anchor_words @ self._sketch).T)
        else:
            self._sketched_words_t = np.ascontiguousarray(self._anchor_words.T)

    @property
    def vocabulary(self) -> TokenVocabulary:
        return self._vocabulary

    def query_shift(self, modulation: Modulation) -> FloatMatrix:
        """(d,) ``Δq``: unit(q̃) - unit(LN(½ p_q))."""
        base = self._adapter.unmodulated(modulation.projected_query[None, :])
        shift: FloatMatrix = _unit_rows(modulation.adapted_query[None, :])[0] - _unit_rows(base)[0]
        return shift

    def document_shifts(self, modulation: Modulation, rows: Sequence[int] | None = None) -> FloatMatrix:
        """(r, d) ``Δd_i``: unit(d̃_i) - unit(LN(½ p_i)) for the candidates `rows` (all when None)."""
        index = np.arange(len(modulation.adapted_documents)) if rows is None else np.asarray(rows, dtype=np.int64)
        base = self._adapter.unmodulated(modulation.projected_documents[index])
        return _unit_rows(modulation.adapted_documents[index]) - _unit_rows(base)

    def shifts(self, modulation: Modulation, rows: Sequence[int]) -> tuple[FloatMatrix, FloatMatrix]:
        """((1 + r, d) shifts, (1 + r, d) anchors): ``Δq`` then ``Δd_i`` for the candidates `rows`, and the
        projected vectors ``p_q``, ``p_i`` they belong to (for `explain`), from one pass over the stacked rows."""
        index = np.asarray(rows, dtype=np.int64)
        modulated = np.vstack([modulation.adapted_query[None, :], modulation.adapted_documents[index]])
        projected = np.vstack([modulation.projected_query[None, :], modulation.projected_documents[index]])
        return _unit_rows(modulated) - _unit_rows(self._adapter.unmodulated(projected)), projected

    def _pools(self, anchors: FloatMatrix) -> npt.NDArray[np.intp]:
        """(r, pool) indices of each anchor's nearest words (exact among the sketch's best candidates)."""
        size = len(self._vocabulary.tokens)
        if self._pool >= size:
            return np.broadcast_to(np.arange(size), (len(anchors), size))
        sketched = anchors @ self._sketch if self._sketch is not None else anchors
        nearness = sketched @ self._sketched_words_t  # (r, V)
        if self._sketch is None:
            return np.argpartition(nearness, size - self._pool, axis=1)[:, size - self._pool :]
        wide = min(SKETCH_FACTOR * self._pool, size)
        shortlist = np.argpartition(nearness, size - wide, axis=1)[:, size - wide :]  # (r, wide)
        exact = np.einsum("rnd,rd->rn", self._anchor_words[shortlist], anchors)
        keep = np.argpartition(exact, wide - self._pool, axis=1)[:, wide - self._pool :]
        return np.take_along_axis(shortlist, keep, axis=1)

    def explain(self, shifts: FloatMatrix, anchors: FloatMatrix | None = None) -> list[TokenShift]:
        """One `TokenShift` per row of (r, d) shifts; a zero shift (no modulation) names no word.

        With `anchors` ((r, d) projected vectors of the texts the shifts belong to), each row's words are its
        text's `pool` nearest words (one product of all rows with the sketched word table, one partial sort per
        row, an exact re-rank of the shortlist), ranked by Δ similarity; without, the whole vocabulary is ranked.
        """
        shifts = np.atleast_2d(np.asarray(shifts, dtype=np.float32))
        if shifts.shape[0] == 0:
            return []
        top = self._top
        if anchors is None:
            change = shifts @ self._words.T  # (r, V): Δ cosine of every word, for every shift
            candidates = np.broadcast_to(np.arange(change.shape[1]), change.shape)
        else:
            candidates = self._pools(np.atleast_2d(np.asarray(anchors, dtype=np.float32)))
            # (r, pool): Δ cosine of each row's own candidate words only
            change = np.einsum("rnd,rd->rn", self._words[candidates], shifts)
        size = change.shape[1]
        kth = [top - 1, size - top] if size > top else [top - 1]
        ends = np.argpartition(change, kth, axis=1)
        worst, best = ends[:, :top], ends[:, size - top :]
        tokens = self._vocabulary.tokens
        explained = []
        for row, norm in enumerate(np.sqrt(np.einsum("ij,ij->i", shifts, shifts)).tolist()):
            if norm < _ZERO_SHIFT:
                explained.append(TokenShift((), (), norm))
                continue
            values, words = change[row], candidates[row]
            toward = best[row][np.argsort(-values[best[row]], kind="stable")]
            away = worst[row][np.argsort(values[worst[row]], kind="stable")]
            # only words whose cosine actually rose are "toward", only those whose cosine fell are "away"
            toward, away = toward[values[toward] > 0], away[values[away] < 0]
            explained.append(
                TokenShift(
                    _named(tokens, words[toward], values[toward]),
                    _named(tokens, words[away], values[away]),
                    norm,
                )
            )
        return explained


def _named(tokens: Sequence[str], index: npt.NDArray[np.intp], values: FloatMatrix) -> tuple[tuple[str, float], ...]:
    return tuple((tokens[t], round(v, 4)) for t, v in zip(index.tolist(), values.tolist(), strict=True))
