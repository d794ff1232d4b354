"""The post-retrieval stage interface (design §1): one candidate list in; scores, keep-mask, explanations out.

Stages are listed in order in settings; none configured means the dense baseline. A stage sees the query (text
and embedding) and, per candidate, its document, stored embedding and first-stage score, plus the scores left by
the stage before it. It never reaches into another stage.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from indexes import Collection, Document, FloatArray

if TYPE_CHECKING:
    from adapters import Adapter

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class QueryContext:
    """The query as stages see it. `embedding` is (d,) float32, unit length; `collection` is the collection
    searched (for stages that keep per-collection state, e.g. the KG stage's stored mentions), None outside one."""

    text: str
    embedding: FloatArray
    collection: Collection | None = None


@dataclass(frozen=True)
class Candidate:
    """One first-stage candidate: its document, (d,) stored embedding, first-stage score and 1-based rank.

    `arm_scores` holds each first-stage arm's score for it (``{"dense": cosine, "lexical": bm25}`` in a hybrid
    first stage; just the one arm otherwise).
    """

    document: Document
    embedding: FloatArray
    first_stage_score: float
    first_stage_rank: int
    arm_scores: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class StageResult:
    """A stage's output over n candidates.

    Attributes:
        scores: (n,) float32 new scores; the next stage and the final ordering use them.
        keep: (n,) bool; False drops the candidate from the returned results.
        relevance: (n,) calibrated probabilities when the stage computes them, else None.
        query_explanation: per-query information (shown under `query.<stage name>`).
        candidate_explanations: n mappings merged into each result's `breakdown.<stage name>`.
        summaries: n short, human-readable mappings (or none) shown in each result's `explanation.<stage name>`
            when the request asks to explain: what this stage says about the result, in words a reader checks.
    """

    scores: FloatArray
    keep: BoolArray
    relevance: FloatArray | None = None
    query_explanation: Mapping[str, Any] = field(default_factory=dict)
    candidate_explanations: Sequence[Mapping[str, Any]] = ()
    summaries: Sequence[Mapping[str, Any]] = ()


def adapter_version(adapter: Adapter | None) -> str:
    """A content hash of an adapter's kind, config and weights; "none" without an adapter."""
    if adapter is None:
        return "none"
    digest = hashlib.sha256(f"{adapter.kind}\0{json.dumps(adapter.get_config(), sort_keys=True, default=str)}".encode())
    for name, tensor in sorted(adapter.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


class Stage(Protocol):
    """A post-retrieval stage: re-scores, filters and explains one query's candidates."""

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str:
        """What makes this stage's output what it is (its artifact's content hash, its options): response-cache
        keys carry it, so a retrained adapter never serves responses cached from the old one."""

    def apply(self, query: QueryContext, candidates: Sequence[Candidate], scores: FloatArray) -> StageResult:
        """Scores (n,) are those left by the previous stage (the first stage's cosines for the first)."""
