"""The Cosine Adapter as a pipeline stage: calibrated relevance per candidate, one global threshold, keep/drop."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adapters import AdapterArtifactError, CosineAdapter, EncoderSignature, arm_features, keep_mask
from indexes import FloatArray
from service.encoder import EncoderIdentity
from service.errors import EncoderMismatchError
from service.first_stage import require_first_stage
from service.stages import Candidate, QueryContext, StageResult, adapter_version


def candidate_arm_features(candidates: Sequence[Candidate]) -> FloatArray:
    """`arm_features()` of a hybrid candidate list, from each candidate's dense and lexical scores."""
    dense = np.asarray([c.arm_scores.get("dense", 0.0) for c in candidates], dtype=np.float32)
    lexical = np.asarray([c.arm_scores.get("lexical", 0.0) for c in candidates], dtype=np.float32)
    return arm_features(dense, lexical)


class CosineFilterStage:
    """Keeps candidates whose calibrated relevance p >= τ (at least `min_results` per query).

    Without an adapter the stage runs uncalibrated: it keeps everything, reports no relevance, and says so in
    every response (`query.cosine.calibrated = false`). Scores pass through unchanged: the map is monotone, so
    the order within a query is the first stage's.
    """

    name = "cosine"

    def __init__(
        self,
        adapter: CosineAdapter | None,
        *,
        min_results: int = 1,
        filtering: bool = True,
        uncalibrated_reason: str = "no trained Cosine Adapter is configured",
    ) -> None:
        self._adapter = adapter
        self._min_results = min_results
        self._filtering = filtering
        self._reason = uncalibrated_reason
        self._version: str | None = None

    @property
    def adapter(self) -> CosineAdapter | None:
        return self._adapter

    @property
    def version(self) -> str:
        """The adapter's content hash and the keep/drop options (computed once; response-cache keys carry it)."""
        if self._version is None:
            options = f"filtering={self._filtering},min_results={self._min_results}"
            self._version = f"cosine:{adapter_version(self._adapter)}:{options}"
        return self._version

    @property
    def min_results(self) -> int:
        return self._min_results

    @classmethod
    def from_directory(
        cls,
        directory: Path,
        encoder: EncoderIdentity,
        *,
        min_results: int = 1,
        filtering: bool = True,
        first_stage: str | None = None,
    ) -> CosineFilterStage:
        """Load the artifact in `directory`; a missing one gives the uncalibrated stage.

        Raises:
            EncoderMismatchError: the adapter was trained on another encoder's embeddings.
            ConfigurationError: it was trained on another first stage's scores than `first_stage`.
        """
        if not (directory / "config.json").is_file():
            return cls(
                None, min_results=min_results, filtering=filtering, uncalibrated_reason=f"no adapter in {directory}"
            )
        try:
            adapter = CosineAdapter.load(directory, EncoderSignature(encoder.name, encoder.dimension))
        except AdapterArtifactError as exc:
            raise EncoderMismatchError(str(exc), {"adapter": str(directory)}) from exc
        if first_stage is not None:
            require_first_stage("Cosine Adapter", directory, adapter.first_stage, first_stage, "cosine")
        return cls(adapter, min_results=min_results, filtering=filtering)

    def apply(self, query: QueryContext, candidates: Sequence[Candidate], scores: FloatArray) -> StageResult:
        raw = np.asarray([c.first_stage_score for c in candidates], dtype=np.float32)
        cosines = [float(c.arm_scores.get("dense", c.first_stage_score)) for c in candidates]
        if self._adapter is None:
            return StageResult(
                scores=scores,
                keep=np.ones(len(candidates), dtype=bool),
                query_explanation={"calibrated": False, "reason": self._reason},
                candidate_explanations=[
                    {"raw_cosine": cosine, "mapped_score": float(s)} for cosine, s in zip(cosines, raw, strict=True)
                ],
            )
        extra = candidate_arm_features(candidates) if self._adapter.arm_features else None
        probabilities, parameters = self._adapter.relevance(query.embedding, raw, extra)
        threshold = self._adapter.threshold
        if self._filtering:
            keep = keep_mask(probabilities[None, :], np.ones((1, len(raw)), dtype=bool), threshold, self._min_results)[
                0
            ]
        else:
            keep = np.ones(len(raw), dtype=bool)
        return StageResult(
            scores=scores,
            keep=keep,
            relevance=probabilities,
            query_explanation={
                "calibrated": True,
                "threshold": threshold,
                "family": self._adapter.family,
                "parameters": parameters,
                "filtering": self._filtering,
                "min_results": self._min_results,
                "kept": int(keep.sum()),
                "first_stage": self._adapter.first_stage,
            },
            candidate_explanations=[
                {
                    "raw_cosine": cosine,
                    "mapped_score": float(s),
                    "relevance": float(p),
                    "above_threshold": bool(p >= threshold),
                    "kept": bool(k),
                }
                for cosine, s, p, k in zip(cosines, raw, probabilities, keep, strict=True)
            ],
            summaries=[
                {"relevance": round(float(p), 4), "relevant": bool(p >= threshold), "threshold": round(threshold, 4)}
                for p in probabilities
            ],
        )
