"""IMRNN: identity start, shapes, numpy/torch parity, artifact round trip, λ selection, training, explanations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from adapters import (
    AdapterArtifactError,
    AdapterError,
    EncoderSignature,
    ImrnnAdapter,
    ImrnnTrainingConfig,
    RankingLists,
    ShiftExplainer,
    TokenVocabulary,
    adapted_scores,
    blend_curve,
    choose_blend,
    fit_imrnn,
    improvement_margin_loss,
    iterate_retrieval,
)
from adapters.imrnn_explain import SKETCH_DIMENSIONS

D = 16
SIGNATURE = EncoderSignature("test-encoder", D)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def randomise(adapter: ImrnnAdapter, seed: int, std: float = 0.3) -> ImrnnAdapter:
    """Random weights everywhere (not the initialisation), so parity and round trips test real arithmetic."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for parameter in adapter.parameters():
            parameter.add_(torch.randn_like(parameter) * std)
    adapter.eval()
    return adapter


def layer_norm(x: np.ndarray) -> np.ndarray:
    centred = x - x.mean(axis=-1, keepdims=True)
    return centred / np.sqrt((centred**2).mean(axis=-1, keepdims=True) + 1e-5)


def test_a_fresh_adapter_starts_from_the_identity() -> None:
    adapter = ImrnnAdapter(D, hidden=8)
    assert torch.equal(adapter.projection.weight, torch.eye(D)) and not adapter.projection.bias.any()
    with torch.no_grad():  # exactly unmodulated: constant scale, no shift
        adapter.query_adapter[2].weight.zero_()
        adapter.document_adapter[2].weight.zero_()
    adapter.eval()
    rng = np.random.default_rng(0)
    query, documents = unit(rng.standard_normal(D)), unit(rng.standard_normal((7, D)))
    modulation = adapter.modulate(query, documents)
    np.testing.assert_allclose(modulation.projected_query, query, atol=1e-6)
    np.testing.assert_allclose(modulation.projected_documents, documents, atol=1e-6)
    expected = unit(layer_norm(0.5 * documents)) @ unit(layer_norm(0.5 * query))
    np.testing.assert_allclose(modulation.adapted_scores, expected, atol=1e-5)


def test_shapes_and_numpy_serving_matches_torch() -> None:
    adapter = randomise(ImrnnAdapter(D, hidden=8), seed=1)
    rng = np.random.default_rng(1)
    queries, documents = unit(rng.standard_normal((3, D))), unit(rng.standard_normal((3, 5, D)))
    mask = torch.ones(3, 5, dtype=torch.bool)
    with torch.no_grad():
        batched = adapter(torch.from_numpy(queries), torch.from_numpy(documents), mask).numpy()
    assert batched.shape == (3, 5)
    for row in range(3):
        modulation = adapter.modulate(queries[row], documents[row])
        assert modulation.adapted_query.shape == (D,) and modulation.adapted_documents.shape == (5, D)
        assert modulation.adapted_scores.shape == (5,)
        np.testing.assert_allclose(modulation.adapted_scores, batched[row], atol=1e-5)


def test_save_then_load_gives_identical_scores(tmp_path: Path) -> None:
    adapter = randomise(ImrnnAdapter(D, hidden=8, blend=0.35, iterations=2), seed=2)
    adapter.save(tmp_path / "imrnn", SIGNATURE, report={"blend": 0.35})
    loaded = ImrnnAdapter.load(tmp_path / "imrnn", SIGNATURE)
    rng = np.random.default_rng(2)
    query, documents = unit(rng.standard_normal(D)), unit(rng.standard_normal((20, D)))
    np.testing.assert_array_equal(
        adapter.modulate(query, documents).adapted_scores, loaded.modulate(query, documents).adapted_scores
    )
    assert (loaded.blend, loaded.iterations, loaded.hidden) == (0.35, 2, 8)


def test_another_encoders_adapter_is_refused(tmp_path: Path) -> None:
    ImrnnAdapter(D, hidden=8).save(tmp_path / "imrnn", SIGNATURE)
    with pytest.raises(AdapterArtifactError, match=r"'test-encoder' \(16-d\).*'other' \(32-d\)"):
        ImrnnAdapter.load(tmp_path / "imrnn", EncoderSignature("other", 32))


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(AdapterError, match=r"1\.5"):
        ImrnnAdapter(D, blend=1.5)
    with pytest.raises(AdapterError, match="iterations"):
        ImrnnAdapter(D, iterations=0)


def test_blend_zero_returns_the_base_scores_exactly() -> None:
    adapter = randomise(ImrnnAdapter(D, hidden=8, blend=0.0), seed=3)
    raw = np.array([0.5, 0.5, 0.4, 0.9], dtype=np.float32)  # ties included
    served = adapter.blended(raw, np.array([0.1, 0.9, -0.3, 0.0], dtype=np.float32))
    np.testing.assert_array_equal(served, raw)


def test_choose_blend_keeps_zero_unless_dev_improves() -> None:
    assert choose_blend({0.0: 0.6, 0.5: 0.6, 1.0: 0.59}) == 0.0
    assert choose_blend({0.0: 0.6, 0.5: 0.61, 1.0: 0.61}) == 0.5
    assert choose_blend({0.0: 0.6, 0.5: 0.605}, min_gain=0.01) == 0.0


def synthetic_lists(queries: int, seed: int, documents: np.ndarray, mixing: np.ndarray, k: int = 30) -> RankingLists:
    """Each query is a distorted copy of one relevant document: raw cosine ranks it well, not perfectly."""
    rng = np.random.default_rng(seed)
    relevant = rng.integers(0, len(documents), queries)
    embeddings = unit(documents[relevant] @ mixing + 0.35 * rng.standard_normal((queries, D)))
    raw = embeddings @ documents.T
    candidates = np.argsort(-raw, axis=1, kind="stable")[:, :k].astype(np.int64)
    scores = np.take_along_axis(raw, candidates, axis=1).astype(np.float32)
    grades = (candidates == relevant[:, None]).astype(np.int64)
    judged = tuple({int(r): 1} for r in relevant)
    return RankingLists(embeddings, documents, candidates, scores, grades, judged, np.ones(queries))


@pytest.fixture(scope="module")
def corpus() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    mixing = np.eye(D) + 0.6 * rng.standard_normal((D, D)) / np.sqrt(D)
    return unit(rng.standard_normal((300, D))), mixing.astype(np.float32)


def margin_loss(adapter: ImrnnAdapter, lists: RankingLists) -> float:
    adapted = torch.from_numpy(adapted_scores(adapter, lists))
    has_positive = (lists.grades > 0).any(axis=1)
    positive = torch.from_numpy(lists.grades.argmax(axis=1))[has_positive]
    negatives = torch.from_numpy(lists.mask & (lists.grades == 0))[has_positive]
    raw = torch.from_numpy(lists.scores)[has_positive]
    return float(improvement_margin_loss(adapted[has_positive], raw, positive, negatives, 0.05))


def test_a_tiny_seeded_training_run_reduces_the_loss_and_repeats_exactly(
    corpus: tuple[np.ndarray, np.ndarray],
) -> None:
    documents, mixing = corpus
    train, dev = synthetic_lists(200, 1, documents, mixing), synthetic_lists(60, 2, documents, mixing)
    config = ImrnnTrainingConfig(hidden=16, epochs=15, patience=15, learning_rate=3e-3)
    adapter, report = fit_imrnn(train, dev, config, progress=False)
    assert margin_loss(adapter, train) < margin_loss(ImrnnAdapter(D, hidden=16), train)
    assert report["history"][-1]["train_loss"] < report["history"][1]["train_loss"]
    assert report["dev_ndcg@10"] >= report["dev_ndcg@10_raw"]  # the no-harm rule
    assert (adapter.blend == 0.0) == (report["dev_ndcg@10"] == report["dev_ndcg@10_raw"])
    again, _ = fit_imrnn(train, dev, config, progress=False)
    np.testing.assert_array_equal(adapted_scores(again, dev), adapted_scores(adapter, dev))


def test_iterations_round_one_is_the_rescored_list_and_blend_zero_is_dense(
    corpus: tuple[np.ndarray, np.ndarray],
) -> None:
    documents, mixing = corpus
    lists = synthetic_lists(40, 3, documents, mixing)
    adapter = randomise(ImrnnAdapter(D, hidden=8, blend=0.5), seed=4)
    curve = blend_curve(lists, adapted_scores(adapter, lists), (0.0, 0.5))
    assert iterate_retrieval(adapter, lists, 1).mean() == pytest.approx(curve[0.5], abs=1e-9)
    for rounds in (1, 2, 3):
        assert iterate_retrieval(adapter, lists, rounds, blend=0.0).mean() == pytest.approx(curve[0.0], abs=1e-12)


def test_training_needs_a_positive_candidate(corpus: tuple[np.ndarray, np.ndarray]) -> None:
    documents, mixing = corpus
    lists = synthetic_lists(10, 5, documents, mixing)
    empty = RankingLists(
        lists.queries, documents, lists.candidates, lists.scores, np.zeros_like(lists.grades), lists.judged,
        lists.ideal_dcg,
    )  # fmt: skip
    with pytest.raises(AdapterError, match="no training query"):
        fit_imrnn(empty, lists, progress=False)


LETTERS = "abcdefgh"
WORDS = ["[CLS]", "[SEP]", "##ing", "1990", ",", *[f"t{a}{b}" for a in LETTERS for b in LETTERS]]


def vocabulary(seed: int = 0) -> TokenVocabulary:
    matrix = np.random.default_rng(seed).standard_normal((len(WORDS), D)).astype(np.float32)
    return TokenVocabulary.from_arrays(matrix, WORDS)


def test_vocabulary_keeps_whole_words_only() -> None:
    tokens = vocabulary().tokens
    assert len(tokens) == 63 and "the" not in tokens  # t + two letters, less the stopword "the"
    assert not any(t.startswith(("[", "##")) or not t.isalpha() for t in tokens)
    with pytest.raises(AdapterError, match="3 tokens"):
        TokenVocabulary.from_arrays(np.zeros((2, D)), ["a", "b", "c"])


def test_a_results_tokens_change_when_and_only_when_its_modulation_changes() -> None:
    """Faithfulness: document tokens follow the document's modulation, not the query text or the score."""
    rng = np.random.default_rng(11)
    adapter = randomise(ImrnnAdapter(D, hidden=8), seed=5, std=0.5)
    with torch.no_grad():  # the query adapter ignores its input: every query modulates documents identically
        adapter.query_adapter[0].weight.zero_()
    adapter.eval()
    explainer = ShiftExplainer(adapter, vocabulary(), top=5)
    documents = unit(rng.standard_normal((6, D)))
    first, second = unit(rng.standard_normal(D)), unit(rng.standard_normal(D))
    a, b = adapter.modulate(first, documents), adapter.modulate(second, documents)
    assert not np.allclose(a.adapted_scores, b.adapted_scores)  # different queries, different scores ...
    tokens_a = explainer.explain(explainer.document_shifts(a))
    tokens_b = explainer.explain(explainer.document_shifts(b))
    assert tokens_a == tokens_b  # ... but the same modulation of each document, so the same tokens
    assert all(shift.toward for shift in tokens_a)
    with torch.no_grad():  # now change the modulation (the query adapter's shift output)
        adapter.query_adapter[2].bias[D:].add_(torch.from_numpy(rng.standard_normal(D).astype(np.float32)))
    adapter.eval()
    changed = explainer.explain(explainer.document_shifts(adapter.modulate(first, documents)))
    assert all(before.toward != after.toward for before, after in zip(tokens_a, changed, strict=True))


def test_no_modulation_names_no_tokens() -> None:
    adapter = ImrnnAdapter(D, hidden=8)
    with torch.no_grad():
        adapter.query_adapter[2].weight.zero_()
        adapter.document_adapter[2].weight.zero_()
    adapter.eval()
    explainer = ShiftExplainer(adapter, vocabulary())
    modulation = adapter.modulate(unit(np.ones(D)), unit(np.eye(D)[:3] + 0.1))
    assert explainer.explain(explainer.query_shift(modulation)[None, :])[0].toward == ()
    assert all(shift.toward == () for shift in explainer.explain(explainer.document_shifts(modulation)))


def test_shift_words_point_along_the_shift() -> None:
    """A shift along one word's unmodulated representation u_w names that word first (Δ cosine 1), its opposite
    last; with anchors, only the anchor's nearest words are ranked."""
    adapter = randomise(ImrnnAdapter(D, hidden=8), seed=6)
    words = vocabulary()
    explainer = ShiftExplainer(adapter, words, top=3, pool=10)
    target = 17
    projected = words.embeddings[target] @ adapter.projection.weight.detach().numpy().T
    projected = unit(projected + adapter.projection.bias.detach().numpy())
    along = unit(adapter.unmodulated(projected[None, :]))
    named = explainer.explain(along)[0]
    assert named.toward[0][0] == words.tokens[target] and named.toward[0][1] == pytest.approx(1.0, abs=1e-4)
    assert explainer.explain(-along)[0].away[0][0] == words.tokens[target]
    anchored = explainer.explain(along, projected[None, :])[0]  # the word's own text: it is in its own pool
    assert anchored.toward[0][0] == words.tokens[target]
    assert len(anchored.toward) <= 3 and len(anchored.away) <= 3
    assert all(v > 0 for _, v in anchored.toward) and all(v < 0 for _, v in anchored.away)
    assert not {t for t, _ in anchored.toward} & {t for t, _ in anchored.away}


def test_wide_encoders_pool_through_the_sketch_and_keep_a_words_own_text() -> None:
    """Above SKETCH_DIMENSIONS the pool is the exact best among a sketch's shortlist: a word's own text finds it."""
    wide = SKETCH_DIMENSIONS + 32
    adapter = randomise(ImrnnAdapter(wide, hidden=8), seed=8, std=0.05)
    names = [f"w{a}{b}{c}" for a in LETTERS for b in LETTERS for c in LETTERS[:4]]
    rng = np.random.default_rng(12)
    basis = rng.standard_normal((24, wide))  # words on a low-dimensional subspace, as real word tables are
    words = TokenVocabulary.from_arrays(rng.standard_normal((len(names), 24)) @ basis, names)
    explainer = ShiftExplainer(adapter, words, top=3, pool=20)
    chosen = [5, 77, 130, 200]
    projected = unit(words.embeddings[chosen] @ adapter.projection.weight.detach().numpy().T)
    pools = explainer._pools(projected)
    assert pools.shape == (4, 20) and all(len(set(row)) == 20 for row in pools.tolist())
    assert all(word in row for word, row in zip(chosen, pools.tolist(), strict=True))
    shifts = unit(rng.standard_normal((4, wide)))
    for row, named in zip(pools.tolist(), explainer.explain(shifts, projected), strict=True):
        assert {t for t, _ in named.toward + named.away} <= {words.tokens[i] for i in row}
