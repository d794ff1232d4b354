"""The one search pipeline behind REST, CLI and evaluation: encode -> first stage top-K -> ordered stages -> top_k."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexes import Collection, FloatArray, Match
from service.encoder import Encoder
from service.first_stage import DenseRetriever, FirstStageRetriever, Retrieved, describe_first_stage
from service.registry import CollectionRegistry
from service.settings import SearchSettings
from service.stages import Candidate, QueryContext, Stage


@dataclass(frozen=True)
class SearchQuery:
    """One search: text, how many results, an optional metadata equality filter, and whether to explain."""

    text: str
    top_k: int = 10
    where: Mapping[str, Any] = field(default_factory=dict)
    explain: bool = True


@dataclass(frozen=True)
class ResultItem:
    """One returned document with its final score and the per-stage breakdown."""

    doc_id: str
    title: str
    text: str
    metadata: Mapping[str, Any]
    score: float
    relevance: float | None
    kept: bool
    breakdown: dict[str, dict[str, Any]]
    explanation: dict[str, Any] | None


@dataclass(frozen=True)
class FirstStage:
    """One query's first-stage output: its (d,) embedding and the top-K candidates, best first, with each arm's
    evidence (`retrieved.arms`: dense and/or lexical score and rank, fused score)."""

    query: SearchQuery
    embedding: FloatArray
    retrieved: Retrieved
    retrieve_ms: float
    mode: str = "dense"

    @property
    def matches(self) -> list[Match]:
        return self.retrieved.matches


@dataclass(frozen=True)
class SearchOutcome:
    """Everything a search returns: results, per-query information, timings per stage, the variant served."""

    results: list[ResultItem]
    query: dict[str, Any]
    timings_ms: dict[str, float]
    variant: str


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000.0, 3)


class Pipeline:
    """Composes encoder, collections, a first stage and post-retrieval stages (in order) into searches.

    With no stages, results are the first stage's top_k (the dense baseline when that is FAISS alone).
    """

    def __init__(
        self,
        encoder: Encoder,
        registry: CollectionRegistry,
        settings: SearchSettings,
        stages: Sequence[Stage] = (),
        retriever: FirstStageRetriever | None = None,
        query_encoder: Encoder | None = None,
    ) -> None:
        self._encoder = encoder
        # what encodes query texts: the encoder itself, or it wrapped (embedding cache, micro-batching)
        self._query_encoder = query_encoder or encoder
        self._registry = registry
        self._settings = settings
        self._stages = tuple(stages)
        self._retriever = retriever or DenseRetriever()
        self._fingerprint: str | None = None

    @property
    def variant(self) -> str:
        """The first stage, then the stages, e.g. ``hybrid+cosine``; ``dense`` alone is the baseline."""
        return "+".join([self._retriever.mode, *(stage.name for stage in self._stages)])

    @property
    def first_stage_mode(self) -> str:
        return self._retriever.mode

    @property
    def encoder(self) -> Encoder:
        """The encoder that embeds documents (upserts) and stands behind query encoding."""
        return self._encoder

    @property
    def stages(self) -> tuple[Stage, ...]:
        return self._stages

    @property
    def fingerprint(self) -> str:
        """A hash of all that makes this pipeline's results what they are: variant, encoder identity, first-stage
        details (fusion and weight), search settings and every stage's version. Response-cache keys carry it."""
        if self._fingerprint is None:
            identity = self._encoder.identity
            described = {
                "variant": self.variant,
                "encoder": [identity.name, identity.revision, identity.backend, identity.dimension],
                "first_stage": describe_first_stage(self._retriever),
                "search": self._settings.model_dump(mode="json"),
                "stages": [stage.version for stage in self._stages],
            }
            text = json.dumps(described, sort_keys=True, default=str)
            self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:24]
        return self._fingerprint

    def search(self, collection: str, query: SearchQuery) -> SearchOutcome:
        return self.search_batch(collection, [query])[0]

    def search_batch(self, collection_name: str, queries: Sequence[SearchQuery]) -> list[SearchOutcome]:
        """Run queries against one collection; their texts are encoded in one batch.

        A batch's encode time is shared: each outcome reports the batch's encode time divided by its size.
        """
        collection = self._registry.get(collection_name)
        start = time.perf_counter()
        embeddings = self._query_encoder.encode([q.text for q in queries])
        encode_ms = round(_ms(start) / max(len(queries), 1), 3)
        outcomes = []
        for query, embedding in zip(queries, embeddings, strict=True):
            first_stage = self.retrieve(collection, query, embedding)
            outcomes.append(self.rank(collection, first_stage, encode_ms))
        return outcomes

    def retrieve(self, collection: Collection, query: SearchQuery, embedding: FloatArray) -> FirstStage:
        """The first stage alone: top-K candidates (K = max(candidates, top_k)) for an encoded query."""
        start = time.perf_counter()
        first_stage_k = max(self._settings.candidates, query.top_k)
        retrieved = self._retriever.retrieve(
            collection, query.text, embedding, first_stage_k, query.where, self._settings.filter_overfetch
        )
        return FirstStage(query, embedding, retrieved, _ms(start), self._retriever.mode)

    def rank(self, collection: Collection, first_stage: FirstStage, encode_ms: float) -> SearchOutcome:
        """This pipeline's stages over a first stage's candidates, then top_k; what the API returns.

        Separate from `retrieve` so that several variants can rank the very same candidates.
        """
        query, matches = first_stage.query, first_stage.matches
        timings: dict[str, float] = {"encode": encode_ms, "retrieve": first_stage.retrieve_ms}
        start_stages = time.perf_counter()
        context = QueryContext(query.text, first_stage.embedding, collection)
        scores = np.asarray([m.score for m in matches], dtype=np.float32)
        keep = np.ones(len(matches), dtype=bool)
        stage_views: list[tuple[str, FloatArray, Sequence[Mapping[str, Any]]]] = []
        summaries: list[tuple[str, Sequence[Mapping[str, Any]]]] = []
        query_info: dict[str, Any] = {
            "text": query.text,
            "top_k": query.top_k,
            "candidates": len(matches),
            "first_stage": first_stage.mode,
        }
        relevance: list[float | None] = [None] * len(matches)
        if self._stages and matches:
            candidates = self._candidates(collection, first_stage.retrieved)
            for stage in self._stages:
                start = time.perf_counter()
                result = stage.apply(context, candidates, scores)
                timings[stage.name] = _ms(start)
                scores = result.scores
                keep &= result.keep
                query_info[stage.name] = dict(result.query_explanation)
                stage_views.append((stage.name, result.scores, result.candidate_explanations))
                summaries.append((stage.name, result.summaries))
                if result.relevance is not None:
                    relevance = [float(p) for p in result.relevance]
        order = [i for i in np.argsort(-scores, kind="stable") if keep[i]][: query.top_k]
        results = [
            ResultItem(
                doc_id=matches[i].document.id,
                title=matches[i].document.title,
                text=matches[i].document.text,
                metadata=matches[i].document.metadata,
                score=float(scores[i]),
                relevance=relevance[i],
                kept=bool(keep[i]),
                breakdown=self._breakdown(first_stage.retrieved, stage_views, i),
                explanation=self._explanation(summaries, i) if query.explain else None,
            )
            for i in order
        ]
        timings["total"] = round(encode_ms + first_stage.retrieve_ms + _ms(start_stages), 3)
        return SearchOutcome(results, query_info, timings, self.variant)

    @staticmethod
    def _breakdown(
        retrieved: Retrieved, stage_views: list[tuple[str, FloatArray, Sequence[Mapping[str, Any]]]], i: int
    ) -> dict[str, dict[str, Any]]:
        """Result i's breakdown: the first stage's arms, then each stage's score and explanation."""
        breakdown = retrieved.breakdown(i)
        for name, scores, explanations in stage_views:
            breakdown[name] = {"score": float(scores[i]), **(explanations[i] if i < len(explanations) else {})}
        return breakdown

    @staticmethod
    def _explanation(summaries: list[tuple[str, Sequence[Mapping[str, Any]]]], i: int) -> dict[str, Any]:
        """Result i's explanation: each stage's short summary of it, by stage name (stages with nothing to say
        about it are left out)."""
        return {name: dict(rows[i]) for name, rows in summaries if i < len(rows) and rows[i]}

    @staticmethod
    def _candidates(collection: Collection, retrieved: Retrieved) -> list[Candidate]:
        matches = retrieved.matches
        vectors = collection.vectors([m.document.id for m in matches])
        return [
            Candidate(m.document, vector, m.score, i + 1, retrieved.arm_scores(i))
            for i, (m, vector) in enumerate(zip(matches, vectors, strict=True))
        ]
