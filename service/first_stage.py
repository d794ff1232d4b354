"""First stages: where a query's K candidates come from (FAISS, BM25, or both fused), with each arm's evidence.

A registry of retrievers keyed by `FirstStageSettings.mode`. Every retriever returns candidates best first, each
with the score later stages start from and a breakdown naming every arm's score and rank (rank None: that arm's
top-K did not hold the document, yet its score is still the arm's real score for it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from indexes import Collection, FloatArray, Match
from indexes.fusion import convex_fusion, rrf_fusion
from service.errors import ConfigurationError
from service.settings import FirstStageSettings, Settings

logger = logging.getLogger(__name__)

DEFAULT_DENSE_WEIGHT = 0.5
FUSION_ARTIFACT = "fusion"


@dataclass(frozen=True)
class ArmEvidence:
    """One arm's view of a candidate list: (n,) scores and 1-based ranks in that arm's own top-K (None: outside).

    `details` are the same for every candidate (e.g. the fusion method and weight) and appear in each breakdown.
    """

    scores: list[float]
    ranks: list[int | None]
    details: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Retrieved:
    """A first stage's candidates, best first: the matches (with the score later stages start from) and, per
    arm ("dense", "lexical", "fused"), its evidence. Breakdown dicts are built only for what is returned."""

    matches: list[Match]
    arms: dict[str, ArmEvidence]

    def breakdown(self, i: int) -> dict[str, dict[str, Any]]:
        """Candidate i's first-stage breakdown: each arm's score and rank (and the fusion's details)."""
        return {name: {"score": arm.scores[i], "rank": arm.ranks[i], **arm.details} for name, arm in self.arms.items()}

    def arm_scores(self, i: int) -> dict[str, float]:
        """Candidate i's dense and/or lexical score."""
        return {name: arm.scores[i] for name, arm in self.arms.items() if name in ARMS}


ARMS = ("dense", "lexical")


class FirstStageRetriever(Protocol):
    """Finds a query's top-k candidates in a collection."""

    @property
    def mode(self) -> str: ...

    def retrieve(
        self, collection: Collection, text: str, embedding: FloatArray, k: int, where: Mapping[str, Any], overfetch: int
    ) -> Retrieved: ...


class DenseRetriever:
    """FAISS top-k by cosine."""

    mode = "dense"

    def retrieve(
        self, collection: Collection, text: str, embedding: FloatArray, k: int, where: Mapping[str, Any], overfetch: int
    ) -> Retrieved:
        matches = collection.search(embedding[None, :], k, where, overfetch)[0]
        ranks: list[int | None] = list(range(1, len(matches) + 1))
        return Retrieved(matches, {"dense": ArmEvidence([m.score for m in matches], ranks)})


class LexicalRetriever:
    """BM25 top-k (documents sharing no term with the query are never candidates)."""

    mode = "bm25"

    def retrieve(
        self, collection: Collection, text: str, embedding: FloatArray, k: int, where: Mapping[str, Any], overfetch: int
    ) -> Retrieved:
        matches = collection.lexical_search(collection.lexical_scores(text), k, where)
        ranks: list[int | None] = list(range(1, len(matches) + 1))
        return Retrieved(matches, {"lexical": ArmEvidence([m.score for m in matches], ranks)})


@dataclass(frozen=True)
class HybridRetriever:
    """Both arms' top-k, unioned, each candidate scored by both arms, fused, cut to k.

    Args:
        fusion: "convex" (weighted per-query min-max scores) or "rrf" (reciprocal rank).
        dense_weight: convex fusion's weight on the dense arm.
        rrf_k: reciprocal rank fusion's k.
    """

    fusion: str = "convex"
    dense_weight: float = DEFAULT_DENSE_WEIGHT
    rrf_k: int = 60
    mode = "hybrid"

    def retrieve(
        self, collection: Collection, text: str, embedding: FloatArray, k: int, where: Mapping[str, Any], overfetch: int
    ) -> Retrieved:
        arms = hybrid_arms(collection, text, embedding, k, where, overfetch)
        fused = self.fuse(arms)
        order = np.argsort(-fused, kind="stable")[:k]
        ids = [arms.ids[i] for i in order.tolist()]
        documents = collection.get(ids)  # read once, for the candidates kept
        present = [j for j, doc_id in enumerate(ids) if doc_id in documents]  # not deleted since the arms were read
        if len(present) < len(ids):
            order, ids = order[present], [ids[j] for j in present]
        fused_scores = fused[order].tolist()
        details = {"method": self.fusion, **({"dense_weight": self.dense_weight} if self.fusion == "convex" else {})}
        positions = order.tolist()
        return Retrieved(
            [Match(documents[doc_id], score) for doc_id, score in zip(ids, fused_scores, strict=True)],
            {
                "dense": ArmEvidence(arms.dense[order].tolist(), [arms.dense_rank[i] for i in positions]),
                "lexical": ArmEvidence(arms.lexical[order].tolist(), [arms.lexical_rank[i] for i in positions]),
                "fused": ArmEvidence(fused_scores, list(range(1, len(ids) + 1)), details),
            },
        )

    def fuse(self, arms: HybridArms) -> FloatArray:
        """(n,) fused scores of the union's candidates."""
        if self.fusion == "rrf":
            return rrf_fusion(arms.dense, arms.lexical, self.rrf_k)
        return convex_fusion(arms.dense, arms.lexical, self.dense_weight)


@dataclass(frozen=True)
class HybridArms:
    """The union of both arms' top-k for one query, every candidate scored by both arms.

    Attributes:
        ids: the n candidates' ids, dense hits first, then what only BM25 found.
        dense: (n,) exact cosines (from the stored vectors for BM25-only candidates).
        lexical: (n,) BM25 scores (0 where no query term occurs).
        dense_rank, lexical_rank: 1-based rank in that arm's top-k, None when outside it.
    """

    ids: list[str]
    dense: FloatArray
    lexical: FloatArray
    dense_rank: list[int | None]
    lexical_rank: list[int | None]


def hybrid_arms(
    collection: Collection, text: str, embedding: FloatArray, k: int, where: Mapping[str, Any], overfetch: int
) -> HybridArms:
    """Both arms' top-k for one query, unioned, with complete scores from both arms.

    Without a metadata filter no document is read (ids and scores only); with one, each arm reads documents
    to apply it.
    """
    lexical_scores = collection.lexical_scores(text)
    if where:
        dense_matches = collection.search(embedding[None, :], k, where, overfetch)[0]
        dense_ids = [m.document.id for m in dense_matches]
        dense_values = [m.score for m in dense_matches]
        lexical_ids = [m.document.id for m in collection.lexical_search(lexical_scores, k, where)]
    else:
        hits = collection.nearest(embedding, k)
        dense_ids, dense_values = list(hits.doc_ids), hits.scores.tolist()
        lexical_ids = lexical_scores.top(k)[1]
    dense_rank = {doc_id: rank for rank, doc_id in enumerate(dense_ids, start=1)}
    lexical_rank = {doc_id: rank for rank, doc_id in enumerate(lexical_ids, start=1)}
    lexical_only = [doc_id for doc_id in lexical_ids if doc_id not in dense_rank]
    ids = [*dense_ids, *lexical_only]
    dense = np.empty(len(ids), dtype=np.float32)
    dense[: len(dense_ids)] = dense_values
    if lexical_only:  # exact cosines of what only BM25 found, from the stored vectors
        dense[len(dense_ids) :] = collection.vectors(lexical_only) @ embedding
    return HybridArms(
        ids,
        dense,
        lexical_scores.of(ids),
        [dense_rank.get(doc_id) for doc_id in ids],
        [lexical_rank.get(doc_id) for doc_id in ids],
    )


def describe_first_stage(retriever: FirstStageRetriever) -> dict[str, Any]:
    """The first stage's mode and, when hybrid, its fusion method and weight (recorded in training reports)."""
    if isinstance(retriever, HybridRetriever):
        return {"mode": retriever.mode, "fusion": retriever.fusion, "dense_weight": retriever.dense_weight}
    return {"mode": retriever.mode}


def trained_first_stage(report: Mapping[str, Any] | None) -> str:
    """The first stage an adapter's training report says it was trained behind ("dense" for older reports)."""
    return str(((report or {}).get("first_stage") or {}).get("mode", "dense"))


def require_first_stage(adapter: str, directory: Path, trained: str, serving: str, command: str) -> None:
    """Refuse an adapter trained behind another first stage than the one serving (its scores would mean nothing).

    Raises:
        ConfigurationError: naming both first stages and the two ways out.
    """
    if trained != serving:
        raise ConfigurationError(
            f"the {adapter} in {directory} was trained behind the {trained!r} first stage but the first stage is "
            f"{serving!r}; set GLASSBOX_FIRST_STAGE__MODE={trained} or retrain it with "
            f"GLASSBOX_FIRST_STAGE__MODE={serving} glassbox train {command}",
            {"adapter": str(directory), "adapter_first_stage": trained, "first_stage": serving},
        )


def read_fusion_weight(adapters_dir: Path) -> float | None:
    """The dense weight `glassbox train fusion` stored under `adapters_dir/fusion`, or None when there is none."""
    path = adapters_dir / FUSION_ARTIFACT / "config.json"
    if not path.is_file():
        return None
    try:
        config = json.loads(path.read_text())
        return float(config["dense_weight"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"fusion artifact {path} is unreadable: {exc}") from exc


def _hybrid(settings: Settings, adapters_dir: Path) -> FirstStageRetriever:
    first_stage = settings.first_stage
    weight = first_stage.dense_weight
    if weight is None:
        weight = read_fusion_weight(adapters_dir)
        if weight is None:
            weight = DEFAULT_DENSE_WEIGHT
        else:
            logger.info("hybrid fusion uses the tuned dense weight %.3f from %s", weight, adapters_dir)
    return HybridRetriever(first_stage.fusion, weight, first_stage.rrf_k)


RETRIEVERS: dict[str, Callable[[Settings, Path], FirstStageRetriever]] = {
    "dense": lambda _settings, _adapters: DenseRetriever(),
    "bm25": lambda _settings, _adapters: LexicalRetriever(),
    "hybrid": _hybrid,
}


def build_retriever(
    settings: Settings, mode: str | None = None, adapters_dir: Path | None = None
) -> FirstStageRetriever:
    """The first stage of `mode` (default: the configured one).

    Args:
        adapters_dir: where a tuned fusion weight (`fusion/config.json`) is looked for when settings set none;
            default GLASSBOX_ADAPTERS.
    """
    chosen = mode or settings.first_stage.mode
    if chosen not in RETRIEVERS:
        raise ConfigurationError(f"unknown first stage {chosen!r}; expected one of {', '.join(RETRIEVERS)}")
    return RETRIEVERS[chosen](settings, adapters_dir or settings.adapters_dir)


__all__ = [
    "DEFAULT_DENSE_WEIGHT",
    "ArmEvidence",
    "DenseRetriever",
    "FirstStageRetriever",
    "FirstStageSettings",
    "HybridArms",
    "HybridRetriever",
    "LexicalRetriever",
    "Retrieved",
    "build_retriever",
    "describe_first_stage",
    "hybrid_arms",
    "read_fusion_weight",
    "require_first_stage",
    "trained_first_stage",
]
