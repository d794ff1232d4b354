"""A BEIR corpus ingested into a temporary collection (through the embedding cache), and its first stage."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from adapters import ARM_FEATURES, CandidateLists, arm_features
from evaluation.beir import BeirDataset
from indexes import Collection
from service.embedding_cache import CachingEncoder, embedding_cache_path
from service.encoder import Encoder
from service.first_stage import FirstStageRetriever
from service.ingest import ingest_documents
from service.pipeline import FirstStage, Pipeline, SearchQuery
from service.registry import CollectionRegistry
from service.settings import Settings
from service.stages import Stage


class CorpusIndex:
    """Context manager: the dataset's corpus in a fresh collection; first stages for query texts.

    Args:
        dataset: the BEIR dataset.
        settings: service settings (index type, search limits); `candidates` overrides the first-stage K.
        encoder: the real encoder (queries are encoded one at a time, as a search request would be).
    """

    def __init__(
        self, dataset: BeirDataset, settings: Settings, encoder: Encoder, candidates: int, *, progress: bool = True
    ) -> None:
        self._dataset = dataset
        self._settings = settings
        self._encoder = encoder
        self._search = settings.search.model_copy(update={"candidates": max(settings.search.candidates, candidates)})
        self._progress = progress
        self.cache = CachingEncoder(encoder, embedding_cache_path(settings.home))
        self._scratch = tempfile.TemporaryDirectory(prefix="glassbox-eval-")
        self._registry = CollectionRegistry(
            Path(self._scratch.name), encoder.identity, settings.index, lexical=settings.lexical
        )
        self._collection: Collection | None = None

    def __enter__(self) -> CorpusIndex:
        try:
            self._collection = self._registry.create("evaluation")
            ingest_documents(
                self._collection, self.cache, self._dataset.documents(), skip_unchanged=False, progress=self._progress
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._registry.close_all()
        self.cache.close()
        self._scratch.cleanup()

    def require_collection(self) -> Collection:
        if self._collection is None:
            raise RuntimeError("CorpusIndex used outside its `with` block")
        return self._collection

    def pipeline(self, stages: Sequence[Stage] = (), retriever: FirstStageRetriever | None = None) -> Pipeline:
        """A pipeline over this corpus: `retriever` is the first stage (default dense), then `stages`."""
        return Pipeline(self._encoder, self._registry, self._search, stages, retriever)

    def first_stage(
        self, text: str, top_k: int, retriever: FirstStageRetriever | None = None
    ) -> tuple[FirstStage, float]:
        """(the first stage for one query, its encode time in ms), encoding with the real encoder."""
        collection = self.require_collection()
        query = SearchQuery(text, top_k=top_k, explain=False)
        start = time.perf_counter()
        embedding = self._encoder.encode([text])[0]
        encode_ms = (time.perf_counter() - start) * 1000.0
        return self.pipeline(retriever=retriever).retrieve(collection, query, embedding), encode_ms

    def candidate_lists(
        self,
        query_ids: Sequence[str],
        texts: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        retriever: FirstStageRetriever | None = None,
    ) -> CandidateLists:
        """Padded (query, candidate) arrays from the first stage's top-K; queries encoded through the cache."""
        collection = self.require_collection()
        embeddings = self.cache.encode([texts[q] for q in query_ids])
        k = self._search.candidates
        scores = np.zeros((len(query_ids), k), dtype=np.float32)
        extra = np.zeros((len(query_ids), ARM_FEATURES), dtype=np.float32)
        cosines = np.zeros((len(query_ids), k), dtype=np.float32)  # hybrid: the dense arm's score per candidate
        labels = np.zeros((len(query_ids), k), dtype=bool)
        mask = np.zeros((len(query_ids), k), dtype=bool)
        base = self.pipeline(retriever=retriever)
        for row, (query_id, embedding) in enumerate(zip(query_ids, embeddings, strict=True)):
            first_stage = base.retrieve(collection, SearchQuery(texts[query_id], top_k=k), embedding)
            matches = first_stage.matches
            if base.first_stage_mode == "hybrid":
                arms = first_stage.retrieved.arms
                dense = np.asarray(arms["dense"].scores, dtype=np.float32)
                extra[row] = arm_features(dense, np.asarray(arms["lexical"].scores, dtype=np.float32))
                cosines[row, : len(dense)] = dense
            judged = qrels.get(query_id, {})
            for column, match in enumerate(matches):
                scores[row, column] = match.score
                labels[row, column] = judged.get(match.document.id, 0) > 0
                mask[row, column] = True
        hybrid = base.first_stage_mode == "hybrid"
        return CandidateLists(
            embeddings,
            scores,
            labels,
            mask,
            extra if hybrid else None,
            base.first_stage_mode,
            cosines if hybrid else None,
        )
