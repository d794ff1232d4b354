"""IMRNN as a pipeline stage: re-scores the candidates by query/document modulation and names the words behind it.

Per result the breakdown holds the base score (what the stage received: the first stage's cosine in the default
order), the adapted score ŝ, the served score ``(1 - λ)·base + λ·ŝ`` and its delta to the base, and for the
`explained_results` best results the words their modulation moved them toward and away from. Per query: λ and
the words the query moved toward and away from. A stage cannot re-retrieve, so it serves one round of modulation.

Numpy's BLAS runs with `blas_threads` threads (default 1) while the stage computes: these products are small,
and extra BLAS threads only spin against the server's other work (parallelism comes from concurrent requests).
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

from adapters import AdapterArtifactError, EncoderSignature, ImrnnAdapter, ShiftExplainer, TokenShift, TokenVocabulary
from indexes import FloatArray
from service.encoder import EncoderIdentity
from service.errors import EncoderMismatchError
from service.stages import Candidate, QueryContext, StageResult, adapter_version
from service.token_vocabulary import input_vocabulary

_CONTROLLER: ThreadpoolController | None = None


def _blas_limit(threads: int | None) -> contextlib.AbstractContextManager[Any]:
    """A context limiting the loaded BLAS libraries to `threads` (None: no limit). About 20 µs per use."""
    global _CONTROLLER
    if threads is None:
        return contextlib.nullcontext()
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()  # scans the loaded libraries once (milliseconds)
    limit: contextlib.AbstractContextManager[Any] = _CONTROLLER.limit(limits=threads, user_api="blas")
    return limit


def _tokens(pairs: Sequence[tuple[str, float]]) -> list[dict[str, Any]]:
    return [{"token": token, "cosine_change": change} for token, change in pairs]


DOCUMENT_TERMS_CACHED = 20_000  # documents whose query-independent terms are kept (3 x d float32 each: ~90 MB)


class ImrnnStage:
    """Re-scores candidates with a trained IMRNN adapter; without one it passes scores through and says why.

    Args:
        adapter: the trained adapter (None: pass-through).
        explainer: names words for shifts (None: scores only, no words).
        explained_results: how many of the best results (by served score) get words; the rest get scores only.
            0 names no word at all (the query's neither).
        blas_threads: numpy BLAS threads while the stage runs (None: leave the process's setting).
    """

    name = "imrnn"

    def __init__(
        self,
        adapter: ImrnnAdapter | None,
        explainer: ShiftExplainer | None = None,
        *,
        explained_results: int = 10,
        blas_threads: int | None = 1,
        unadapted_reason: str = "no trained IMRNN adapter is configured",
    ) -> None:
        self._adapter = adapter
        # query-independent terms per document (projection, document-adapter output), keyed by id and vector
        self._terms: OrderedDict[tuple[str, int], FloatArray] = OrderedDict()
        self._terms_lock = threading.Lock()
        self._explainer = explainer if explained_results > 0 else None
        self._explained = explained_results
        self._threads = blas_threads
        self._reason = unadapted_reason
        self._version: str | None = None

    @property
    def adapter(self) -> ImrnnAdapter | None:
        return self._adapter

    @property
    def version(self) -> str:
        """The adapter's content hash and the explanation options (computed once; response-cache keys carry it)."""
        if self._version is None:
            explained = 0 if self._explainer is None else self._explained
            self._version = f"imrnn:{adapter_version(self._adapter)}:explained={explained}"
        return self._version

    def _document_terms(
        self, adapter: ImrnnAdapter, candidates: Sequence[Candidate], documents: FloatArray
    ) -> FloatArray:
        """The candidates' `document_terms`, from a bounded LRU where known (a changed vector is a new key)."""
        keys = [(c.document.id, hash(c.embedding.tobytes())) for c in candidates]
        terms = np.empty((len(candidates), 3 * documents.shape[1]), dtype=np.float32)
        missing: list[int] = []
        with self._terms_lock:
            for row, key in enumerate(keys):
                cached = self._terms.get(key)
                if cached is None:
                    missing.append(row)
                else:
                    terms[row] = cached
                    self._terms.move_to_end(key)
        if missing:
            computed = adapter.document_terms(documents[missing])
            terms[missing] = computed
            with self._terms_lock:
                for row, values in zip(missing, computed, strict=True):
                    self._terms[keys[row]] = values
                while len(self._terms) > DOCUMENT_TERMS_CACHED:
                    self._terms.popitem(last=False)
        return terms

    @classmethod
    def from_directory(
        cls,
        directory: Path,
        encoder: EncoderIdentity,
        model: str | None = None,
        *,
        vocabulary: Callable[[], TokenVocabulary] | None = None,
        explained_results: int = 10,
        words: int = 5,
        word_pool: int = 30,
        blas_threads: int | None = 1,
    ) -> ImrnnStage:
        """Load the artifact in `directory` (missing: the pass-through stage; another encoder's: an error).

        Words come from `vocabulary` (called only when an adapter is loaded and `explained_results` > 0:
        the service passes the serving encoder's cached word table, `service.token_vocabulary`); failing that,
        with `model` (a model name or directory), from its *input* token embeddings (the design's first form,
        kept for comparison: it names unrelated words); with neither, no words.

        Raises:
            EncoderMismatchError: the adapter was trained for another encoder (or is unreadable).
            EncoderError: the word table cannot be read or built.
        """
        if not (directory / "config.json").is_file():
            return cls(None, unadapted_reason=f"no adapter in {directory}")
        try:
            adapter = ImrnnAdapter.load(directory, EncoderSignature(encoder.name, encoder.dimension))
        except AdapterArtifactError as exc:
            raise EncoderMismatchError(str(exc), {"adapter": str(directory)}) from exc
        explainer = None
        if explained_results > 0:
            if vocabulary is not None:
                explainer = ShiftExplainer(adapter, vocabulary(), top=words, pool=word_pool)
            elif model is not None:
                explainer = ShiftExplainer(adapter, input_vocabulary(model), top=words, pool=word_pool)
        return cls(adapter, explainer, explained_results=explained_results, blas_threads=blas_threads)

    def apply(self, query: QueryContext, candidates: Sequence[Candidate], scores: FloatArray) -> StageResult:
        base = np.asarray(scores, dtype=np.float32)
        keep = np.ones(len(candidates), dtype=bool)
        if self._adapter is None:
            return StageResult(
                scores=base,
                keep=keep,
                query_explanation={"adapted": False, "reason": self._reason},
                candidate_explanations=[{"base": s} for s in base.tolist()],
            )
        dimension = len(query.embedding)
        documents = np.empty((len(candidates), dimension), dtype=np.float32)
        for row, candidate in enumerate(candidates):
            documents[row] = candidate.embedding
        with _blas_limit(self._threads):
            terms = self._document_terms(self._adapter, candidates, documents)
            modulation = self._adapter.modulate(query.embedding, documents, terms)
            served = self._adapter.blended(base, modulation.adapted_scores)
            query_info: dict[str, Any] = {"adapted": True, "blend": self._adapter.blend, "iterations": 1}
            tokens: dict[int, TokenShift] = {}
            if self._explainer is not None:
                rows = _best_rows(served, self._explained)
                # the query's shift and the best results' in one product with the word table
                shift, *per_result = self._explainer.explain(*self._explainer.shifts(modulation, rows))
                query_info |= {"toward": _tokens(shift.toward), "away": _tokens(shift.away), "shift": shift.magnitude}
                tokens = dict(zip(rows, per_result, strict=True))
        explanations = [
            {"base": b, "adapted": a, "delta": s - b}
            for b, a, s in zip(base.tolist(), modulation.adapted_scores.tolist(), served.tolist(), strict=True)
        ]
        summaries: list[dict[str, Any]] = [{} for _ in candidates]
        for row, shift_words in tokens.items():
            explanations[row] |= {"toward": _tokens(shift_words.toward), "away": _tokens(shift_words.away)}
            summaries[row] = {
                "moved_toward": [word for word, _ in shift_words.toward],
                "moved_away": [word for word, _ in shift_words.away],
            }
        return StageResult(
            scores=served,
            keep=keep,
            query_explanation=query_info,
            candidate_explanations=explanations,
            summaries=summaries,
        )


def _best_rows(scores: FloatArray, count: int) -> list[int]:
    """Indices of the `count` highest scores, best first (ties: lower index first), without a full sort."""
    if count >= len(scores):
        return [int(i) for i in np.argsort(-scores, kind="stable")]
    chosen = np.argpartition(-scores, count - 1)[:count]
    threshold = scores[chosen].min()
    ties = np.flatnonzero(scores >= threshold)  # the boundary may hold ties argpartition split arbitrarily
    order = ties[np.argsort(-scores[ties], kind="stable")][:count]
    return [int(i) for i in order]
