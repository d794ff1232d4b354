"""Hybrid first stage: fusion arithmetic, complete scores for both arms, breakdowns, cosine filter on fused lists."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from adapters import ARM_FEATURES, CosineAdapter, EncoderSignature
from indexes import Collection, CollectionConfig, Document, InvalidInputError
from indexes.fusion import convex_fusion, min_max, ranks, rrf_fusion
from service.encoder import EncoderIdentity
from service.errors import ConfigurationError
from service.filter_stage import CosineFilterStage
from service.first_stage import HybridRetriever, LexicalRetriever, build_retriever, hybrid_arms, read_fusion_weight
from service.settings import Settings
from service.stages import Candidate, QueryContext

D = 4


def test_fusion_arithmetic() -> None:
    dense = np.array([0.8, 0.6, 0.4], "f4")
    lexical = np.array([0.0, 10.0, 5.0], "f4")
    np.testing.assert_allclose(convex_fusion(dense, lexical, 1.0), min_max(dense))
    np.testing.assert_allclose(convex_fusion(dense, lexical, 0.0), [0.0, 1.0, 0.5])
    np.testing.assert_allclose(convex_fusion(dense, lexical, 0.5), [0.5, 0.75, 0.25])
    assert ranks(lexical).tolist() == [3, 1, 2]
    np.testing.assert_allclose(rrf_fusion(dense, lexical, 1), [1 / 2, 1 / 3 + 1 / 2, 1 / 4 + 1 / 3])
    assert min_max(np.array([3.0, 3.0], "f4")).tolist() == [1.0, 1.0]
    assert min_max(np.zeros(2, "f4")).tolist() == [0.0, 0.0]
    with pytest.raises(InvalidInputError, match="dense_weight"):
        convex_fusion(dense, lexical, 1.5)
    with pytest.raises(InvalidInputError, match=r"\(3,\)"):
        convex_fusion(dense, lexical[:2], 0.5)


@pytest.fixture
def collection(tmp_path: Path) -> Iterator[Collection]:
    config = CollectionConfig(name="c", dimension=D, encoder="test", encoder_revision="r")
    collection = Collection.create(tmp_path / "c", config)
    vectors = np.eye(D, dtype="f4")
    documents = [
        Document("near", "", "unrelated words here"),  # dense neighbour of the query, no shared term
        Document("term", "", "statin trial", {"kind": "trial"}),  # shares the query's terms, far in embedding space
        Document("both", "", "statin"),
        Document("none", "", "sleep"),
    ]
    collection.upsert(documents, vectors)
    yield collection
    collection.close()


def test_hybrid_scores_every_candidate_with_both_arms(collection: Collection) -> None:
    query = np.array([1.0, 0.0, 0.6, 0.0], "f4")
    query /= np.linalg.norm(query)
    # dense top-2 = near, both; BM25 top-2 = term, both: a union of three, each scored by both arms
    arms = hybrid_arms(collection, "statin trial", query, 2, {}, 1)
    assert arms.ids == ["near", "both", "term"]
    np.testing.assert_allclose(arms.dense, [query[0], query[2], 0.0], atol=1e-6)  # "term": exact, outside top-2
    assert arms.dense_rank == [1, 2, None] and arms.lexical_rank == [None, 2, 1]
    assert arms.lexical[0] == 0.0 and arms.lexical[2] > arms.lexical[1] > 0
    retrieved = HybridRetriever("convex", 0.5).retrieve(collection, "statin trial", query, 2, {}, 1)
    assert len(retrieved.matches) == 2  # cut back to k
    fused = convex_fusion(arms.dense, arms.lexical, 0.5)
    expected = [arms.ids[i] for i in np.argsort(-fused, kind="stable")[:2]]
    assert [m.document.id for m in retrieved.matches] == expected
    for i, match in enumerate(retrieved.matches):
        breakdown = retrieved.breakdown(i)
        assert breakdown["fused"] == {"score": match.score, "rank": i + 1, "method": "convex", "dense_weight": 0.5}
        assert set(breakdown) == {"dense", "lexical", "fused"}
        j = arms.ids.index(match.document.id)
        assert breakdown["dense"] == {"score": pytest.approx(arms.dense[j]), "rank": arms.dense_rank[j]}
        assert retrieved.arm_scores(i) == {
            "dense": breakdown["dense"]["score"],
            "lexical": breakdown["lexical"]["score"],
        }
    rrf = HybridRetriever("rrf", rrf_k=60).retrieve(collection, "statin trial", query, 3, {}, 1)
    arms3 = hybrid_arms(collection, "statin trial", query, 3, {}, 1)
    expected_rrf = rrf_fusion(arms3.dense, arms3.lexical, 60)
    assert [m.document.id for m in rrf.matches] == [arms3.ids[i] for i in np.argsort(-expected_rrf)[:3]]
    assert rrf.breakdown(0)["fused"]["method"] == "rrf" and "dense_weight" not in rrf.breakdown(0)["fused"]


def test_hybrid_with_a_metadata_filter(collection: Collection) -> None:
    query = np.array([1.0, 0.0, 0.6, 0.0], "f4")
    retrieved = HybridRetriever("convex", 0.5).retrieve(collection, "statin trial", query, 2, {"kind": "trial"}, 2)
    assert [m.document.id for m in retrieved.matches] == ["term"]
    assert retrieved.breakdown(0)["dense"]["rank"] == 1 and retrieved.breakdown(0)["lexical"]["rank"] == 1


def test_lexical_retriever_and_settings(collection: Collection, tmp_path: Path) -> None:
    hits = LexicalRetriever().retrieve(collection, "statin", np.zeros(D, "f4"), 10, {}, 1)
    assert [m.document.id for m in hits.matches] == ["both", "term"]  # the shorter document first
    settings = Settings(home=tmp_path / "home")
    assert isinstance(build_retriever(settings), HybridRetriever)
    assert build_retriever(settings).dense_weight == 0.5  # type: ignore[attr-defined]
    fusion_dir = settings.adapters_dir / "fusion"
    fusion_dir.mkdir(parents=True)
    (fusion_dir / "config.json").write_text('{"dense_weight": 0.3}')
    assert read_fusion_weight(settings.adapters_dir) == 0.3
    assert build_retriever(settings).dense_weight == 0.3  # type: ignore[attr-defined]
    assert (
        build_retriever(
            settings.model_copy(update={"first_stage": settings.first_stage.model_copy(update={"dense_weight": 0.9})})
        ).dense_weight
        == 0.9
    )  # type: ignore[attr-defined]
    (fusion_dir / "config.json").write_text("{}")
    with pytest.raises(ConfigurationError, match="unreadable"):
        read_fusion_weight(settings.adapters_dir)
    with pytest.raises(ConfigurationError, match="'sparse'"):
        build_retriever(settings, "sparse")


def test_cosine_filter_reads_both_arms_and_refuses_another_first_stage(tmp_path: Path) -> None:
    adapter = CosineAdapter(D, hidden=8, arm_features=ARM_FEATURES, first_stage="hybrid")
    identity = EncoderIdentity("test", "r", D)
    adapter.save(tmp_path / "cosine", EncoderSignature("test", D), {"note": "untrained"})
    with pytest.raises(ConfigurationError, match="GLASSBOX_FIRST_STAGE__MODE=hybrid"):
        CosineFilterStage.from_directory(tmp_path / "cosine", identity, first_stage="dense")
    stage = CosineFilterStage.from_directory(tmp_path / "cosine", identity, first_stage="hybrid")
    candidates = [
        Candidate(Document(f"d{i}"), np.eye(D, dtype="f4")[i], fused, i + 1, {"dense": cosine, "lexical": bm25})
        for i, (fused, cosine, bm25) in enumerate([(0.9, 0.7, 12.0), (0.5, 0.6, 0.0), (0.1, 0.2, 3.0)])
    ]
    result = stage.apply(QueryContext("q", np.eye(D, dtype="f4")[0]), candidates, np.array([0.9, 0.5, 0.1], "f4"))
    assert result.relevance is not None and np.all(np.diff(result.relevance) <= 0)  # monotone in the fused score
    explained = result.candidate_explanations[0]
    assert explained["raw_cosine"] == pytest.approx(0.7) and explained["mapped_score"] == pytest.approx(0.9)
    assert result.query_explanation["first_stage"] == "hybrid"
    assert [x["relevant"] for x in result.summaries] == [bool(p >= adapter.threshold) for p in result.relevance]
    with pytest.raises(Exception, match="arm features"):
        adapter.relevance(np.eye(D, dtype="f4")[0], np.array([0.5], "f4"))
