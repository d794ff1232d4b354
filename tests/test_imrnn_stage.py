"""The IMRNN pipeline stage: result shape, pass-through, λ = 0 equals dense, encoder checks, token loading."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import torch

from adapters import EncoderSignature, ImrnnAdapter, ShiftExplainer, TokenVocabulary
from indexes import Document
from service.encoder import Encoder, EncoderIdentity
from service.errors import EncoderMismatchError
from service.imrnn_stage import ImrnnStage
from service.pipeline import Pipeline, SearchQuery
from service.registry import CollectionRegistry
from service.settings import (
    FirstStageSettings,
    ImrnnSettings,
    IndexSettings,
    PipelineSettings,
    SearchSettings,
    Settings,
)
from service.stage_factory import build_stages
from service.stages import Candidate, QueryContext
from service.token_vocabulary import cache_path, encoded_vocabulary, input_vocabulary

D = 16
IDENTITY = EncoderIdentity("test-encoder", "rev", D)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def trained_like(blend: float, seed: int = 0) -> ImrnnAdapter:
    adapter = ImrnnAdapter(D, hidden=8, blend=blend)
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in adapter.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    adapter.eval()
    return adapter


def vocabulary() -> TokenVocabulary:
    words = [f"w{a}{b}" for a in "abcdefgh" for b in "abcdefgh"]
    return TokenVocabulary.from_arrays(np.random.default_rng(0).standard_normal((len(words), D)), words)


def candidates(n: int, seed: int) -> tuple[QueryContext, list[Candidate], np.ndarray]:
    rng = np.random.default_rng(seed)
    query = unit(rng.standard_normal(D))
    vectors = unit(rng.standard_normal((n, D)))
    scores = (vectors @ query).astype(np.float32)
    order = np.argsort(-scores, kind="stable")
    listed = [
        Candidate(Document(f"d{i}", "", f"text {i}"), vectors[i], float(scores[i]), rank)
        for rank, i in enumerate(order, start=1)
    ]
    return QueryContext("q", query), listed, scores[order]


def test_stage_result_has_scores_breakdown_and_tokens_for_the_best_results() -> None:
    adapter = trained_like(blend=0.6)
    stage = ImrnnStage(adapter, ShiftExplainer(adapter, vocabulary(), top=4), explained_results=5)
    query, listed, scores = candidates(30, 1)
    result = stage.apply(query, listed, scores)
    assert result.scores.shape == (30,) and result.scores.dtype == np.float32 and result.keep.all()
    assert result.relevance is None and len(result.candidate_explanations) == 30
    adapted = adapter.modulate(query.embedding, np.stack([c.embedding for c in listed])).adapted_scores
    np.testing.assert_allclose(result.scores, 0.4 * scores + 0.6 * adapted, atol=1e-6)
    best = set(np.argsort(-result.scores, kind="stable")[:5].tolist())
    for i, entry in enumerate(result.candidate_explanations):
        assert entry["base"] == pytest.approx(scores[i]) and entry["adapted"] == pytest.approx(adapted[i])
        assert entry["delta"] == pytest.approx(result.scores[i] - scores[i], abs=1e-6)
        assert ("toward" in entry) == (i in best)
        summary = result.summaries[i]
        if i in best:  # the summary names the same words as the breakdown
            assert summary == {
                "moved_toward": [w["token"] for w in entry["toward"]],
                "moved_away": [w["token"] for w in entry["away"]],
            }
        else:
            assert summary == {}
        if i in best:
            assert len(entry["toward"]) <= 4 and all(w["cosine_change"] > 0 for w in entry["toward"])
            assert all({"token", "cosine_change"} == set(w) for w in entry["toward"])
    info = result.query_explanation
    assert info["adapted"] is True and info["blend"] == 0.6 and info["iterations"] == 1
    assert len(info["toward"]) + len(info["away"]) > 0 and len(info["toward"]) <= 4 and len(info["away"]) <= 4
    assert all(w["cosine_change"] > 0 for w in info["toward"]) and all(w["cosine_change"] < 0 for w in info["away"])
    assert info["shift"] > 0


def test_without_an_adapter_scores_pass_through(tmp_path: Path) -> None:
    stage = ImrnnStage.from_directory(tmp_path / "missing", IDENTITY)
    query, listed, scores = candidates(5, 2)
    result = stage.apply(query, listed, scores)
    np.testing.assert_array_equal(result.scores, scores)
    assert result.query_explanation["adapted"] is False and "missing" in result.query_explanation["reason"]


def test_another_encoders_adapter_is_refused_by_the_stage(tmp_path: Path) -> None:
    ImrnnAdapter(D, hidden=8).save(tmp_path / "imrnn", EncoderSignature("other-encoder", D))
    with pytest.raises(EncoderMismatchError, match="other-encoder"):
        ImrnnStage.from_directory(tmp_path / "imrnn", IDENTITY)


def test_blend_zero_ranks_exactly_as_dense_through_the_pipeline(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    registry = CollectionRegistry(tmp_path, IDENTITY, IndexSettings(threads=1))
    try:
        collection = registry.create("c")
        vectors = unit(rng.standard_normal((300, D)))
        vectors[10] = vectors[11]  # a tie: both pipelines must break it the same way
        collection.upsert([Document(f"d{i}", "", f"t{i}") for i in range(300)], vectors)
        encoder = cast(Encoder, object())  # rank() never encodes
        dense = Pipeline(encoder, registry, SearchSettings())
        adapter = trained_like(blend=0.0, seed=4)
        staged = Pipeline(
            encoder, registry, SearchSettings(), [ImrnnStage(adapter, ShiftExplainer(adapter, vocabulary()))]
        )
        for query in unit(rng.standard_normal((20, D))):
            first = dense.retrieve(collection, SearchQuery("q", top_k=100), query)
            expected = [(r.doc_id, r.score) for r in dense.rank(collection, first, 0.0).results]
            outcome = staged.rank(collection, first, 0.0)
            assert [(r.doc_id, r.score) for r in outcome.results] == expected
            info: dict[str, Any] = outcome.query["imrnn"]
            assert info["blend"] == 0.0 and (info["toward"] or info["away"])
    finally:
        registry.close_all()


def test_input_token_vocabulary_loads_from_the_bundled_model_files() -> None:
    words = input_vocabulary("sentence-transformers/all-MiniLM-L6-v2")
    assert words.embeddings.shape == (len(words.tokens), 384) and 15_000 < len(words.tokens) < 30_522
    assert "vaccine" in words.tokens and not any(t.startswith(("##", "[")) or len(t) < 3 for t in words.tokens)
    assert "the" not in words.tokens
    np.testing.assert_allclose(np.linalg.norm(words.embeddings, axis=1), 1.0, atol=1e-5)


class CountingEncoder:
    """Encodes each text as a seeded random unit vector; counts the texts it was asked for."""

    identity = IDENTITY

    def __init__(self) -> None:
        self.encoded = 0

    def encode(self, texts: Any, *, progress: bool = False) -> np.ndarray:
        self.encoded += len(texts)
        rng = np.random.default_rng(len(texts))
        return unit(rng.standard_normal((len(texts), D)))


def test_encoded_vocabulary_is_built_once_and_then_read_from_the_cache(tmp_path: Path) -> None:
    model = "sentence-transformers/all-MiniLM-L6-v2"
    encoder = CountingEncoder()
    built = encoded_vocabulary(cast(Encoder, encoder), model, tmp_path)
    assert encoder.encoded == len(built.tokens) and 15_000 < len(built.tokens) < 30_522
    files = list(tmp_path.iterdir())
    assert files == [cache_path(tmp_path, cast(Encoder, encoder), list(built.tokens))]
    assert IDENTITY.revision in files[0].name and "words" in files[0].name
    again = encoded_vocabulary(cast(Encoder, encoder), model, tmp_path)
    assert encoder.encoded == len(built.tokens)  # read back, not encoded again
    assert again.tokens == built.tokens and np.array_equal(again.embeddings, built.embeddings)


def test_explained_results_zero_names_no_words_and_never_builds_the_table(tmp_path: Path) -> None:
    trained_like(blend=0.5).save(tmp_path / "imrnn", EncoderSignature(IDENTITY.name, D))

    def forbidden() -> TokenVocabulary:
        raise AssertionError("the word table must not be built")

    stage = ImrnnStage.from_directory(tmp_path / "imrnn", IDENTITY, vocabulary=forbidden, explained_results=0)
    query, listed, scores = candidates(20, 5)
    result = stage.apply(query, listed, scores)
    assert "toward" not in result.query_explanation
    assert not any("toward" in entry for entry in result.candidate_explanations)
    built = ImrnnStage.from_directory(tmp_path / "imrnn", IDENTITY, vocabulary=vocabulary, explained_results=3)
    named = built.apply(query, listed, scores)
    assert "toward" in named.query_explanation and sum("toward" in e for e in named.candidate_explanations) == 3


def words(entry: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return entry["toward"], entry["away"]


def test_stage_words_change_when_and_only_when_the_modulation_changes() -> None:
    """Faithfulness through the stage (pooled words): same modulation, same words; new modulation, new words."""
    adapter = trained_like(blend=0.5, seed=7)
    with torch.no_grad():  # the query adapter ignores its input: every query modulates documents identically
        adapter.query_adapter[0].weight.zero_()
    adapter.eval()
    stage = ImrnnStage(adapter, ShiftExplainer(adapter, vocabulary(), top=3, pool=12), explained_results=30)
    query, listed, scores = candidates(30, 8)
    other = QueryContext("other", unit(np.random.default_rng(9).standard_normal(D)))
    first, second = stage.apply(query, listed, scores), stage.apply(other, listed, scores)
    assert not np.allclose(first.scores, second.scores)
    by_id = {c.document.id: words(e) for c, e in zip(listed, first.candidate_explanations, strict=True)}
    assert all(by_id[c.document.id] == words(e) for c, e in zip(listed, second.candidate_explanations, strict=True))
    assert all(words(e) != ([], []) for e in first.candidate_explanations)
    with torch.no_grad():
        adapter.query_adapter[2].bias[D:].add_(
            torch.from_numpy(np.random.default_rng(10).standard_normal(D).astype(np.float32))
        )
    adapter.eval()
    changed = stage.apply(query, listed, scores)
    assert all(
        words(before) != words(after)
        for before, after in zip(first.candidate_explanations, changed.candidate_explanations, strict=True)
    )


def test_the_stage_factory_wires_the_imrnn_settings_and_caches_the_word_table(tmp_path: Path) -> None:
    trained_like(blend=0.5).save(tmp_path / "adapters" / "imrnn", EncoderSignature(IDENTITY.name, D))
    settings = Settings(
        home=tmp_path / "home",
        adapters=tmp_path / "adapters",
        first_stage=FirstStageSettings(mode="dense"),
        pipeline=PipelineSettings(stages=["imrnn"]),
        imrnn=ImrnnSettings(explained_results=2, words=3, word_pool=8),
    )
    encoder = CountingEncoder()
    (stage,) = build_stages(settings, cast(Encoder, encoder))
    assert isinstance(stage, ImrnnStage) and stage.adapter is not None
    assert len(list((tmp_path / "home" / "encoders").glob("*-words-*.npz"))) == 1
    query, listed, scores = candidates(10, 6)
    result = stage.apply(query, listed, scores)
    info = result.query_explanation
    assert len(info["toward"]) <= 3 and len(info["away"]) <= 3 and info["toward"] + info["away"]
    assert sum("toward" in entry for entry in result.candidate_explanations) == 2
    encoded = encoder.encoded
    build_stages(settings, cast(Encoder, encoder))  # a restart reads the cached table
    assert encoder.encoded == encoded


def test_cached_document_terms_give_the_same_scores_and_a_changed_vector_is_recomputed() -> None:
    adapter = trained_like(0.5, seed=3)
    query, cands, scores = candidates(12, seed=4)
    documents = np.stack([c.embedding for c in cands])
    fresh = adapter.modulate(query.embedding, documents).adapted_scores
    stage = ImrnnStage(adapter, explained_results=0)
    first = stage.apply(query, cands, scores).candidate_explanations
    second = stage.apply(query, cands, scores).candidate_explanations  # every document's terms from the cache
    assert [e["adapted"] for e in first] == [e["adapted"] for e in second]
    np.testing.assert_allclose([e["adapted"] for e in second], fresh, atol=1e-6)
    changed = [Candidate(cands[0].document, unit(-cands[0].embedding), 0.0, 1), *cands[1:]]  # same id, new vector
    again = stage.apply(query, changed, scores).candidate_explanations
    expected = adapter.modulate(query.embedding, np.stack([c.embedding for c in changed])).adapted_scores
    np.testing.assert_allclose([e["adapted"] for e in again], expected, atol=1e-6)
