"""Cosine Adapter: monotone maps, min_results, artifact round trip, training on synthetic lists, metrics."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from adapters import (
    AdapterError,
    CandidateLists,
    CosineAdapter,
    CosineTrainingConfig,
    EncoderSignature,
    average_precision,
    best_prefix_cut,
    choose_threshold,
    choose_top_k,
    expected_calibration_error,
    fit_cosine_adapter,
    keep_mask,
    precision_at_recall,
    predict,
    set_scores,
)
from evaluation.filter_report import RelevanceFilter, filter_report

D = 8
SIGNATURE = EncoderSignature("test-encoder", D)
unit_floats = st.floats(-1.0, 1.0, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(
    family=st.sampled_from(["linear", "power"]),
    seed=st.integers(0, 10_000),
    scores=arrays(np.float32, st.integers(1, 40), elements=unit_floats),
)
def test_the_map_is_monotone_so_order_within_a_query_never_changes(family: str, seed: int, scores: np.ndarray) -> None:
    torch.manual_seed(seed)
    adapter = CosineAdapter(D, hidden=8, family=family)
    for layer in adapter.net:  # random weights, not the initialisation: monotonicity holds by construction
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=2.0)
            torch.nn.init.normal_(layer.bias, std=2.0)
    query = np.random.default_rng(seed).standard_normal(D).astype(np.float32)
    probabilities, parameters = adapter.relevance(query, scores)
    order = np.argsort(scores, kind="stable")
    assert np.all(np.diff(probabilities[order].astype(np.float64)) >= -1e-7)
    assert parameters["a"] > 0 and (family == "linear" or parameters["c"] > 0)


@settings(max_examples=80, deadline=None)
@given(
    values=arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 12)), elements=st.floats(0, 1)),
    threshold=st.floats(0, 1),
    min_results=st.integers(0, 4),
    seed=st.integers(0, 1000),
)
def test_min_results_always_holds(values: np.ndarray, threshold: float, min_results: int, seed: int) -> None:
    mask = np.random.default_rng(seed).random(values.shape) < 0.8
    kept = keep_mask(values, mask, threshold, min_results)
    assert not (kept & ~mask).any()
    for row_kept, row_mask, row_values in zip(kept, mask, values, strict=True):
        assert row_kept.sum() >= min(min_results, row_mask.sum())
        assert row_kept[row_mask & (row_values >= threshold)].all()


def test_save_load_gives_identical_probabilities(tmp_path: Path) -> None:
    torch.manual_seed(0)
    adapter = CosineAdapter(D, hidden=16, family="power", threshold=0.37)
    adapter.save(tmp_path / "cosine", SIGNATURE, report={"threshold": 0.37})
    loaded = CosineAdapter.load(tmp_path / "cosine", SIGNATURE)
    query = np.ones(D, dtype=np.float32)
    scores = np.linspace(-0.2, 0.9, 50, dtype=np.float32)
    np.testing.assert_array_equal(adapter.relevance(query, scores)[0], loaded.relevance(query, scores)[0])
    assert (loaded.threshold, loaded.family) == (0.37, "power")


def test_bad_configuration_is_refused() -> None:
    with pytest.raises(AdapterError, match="'cubic'"):
        CosineAdapter(D, family="cubic")
    with pytest.raises(AdapterError, match="threshold"):
        CosineAdapter(D, threshold=1.5)


def synthetic_lists(queries: int, seed: int) -> CandidateLists:
    """Candidate lists whose relevance depends on the score *and* on the query (its first coordinate)."""
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((queries, D)).astype(np.float32)
    scores = np.sort(rng.uniform(0.1, 0.8, (queries, 30)), axis=1)[:, ::-1].astype(np.float32)
    shift = 0.15 * embeddings[:, :1]  # query-dependent: the same cosine means more for some queries
    chance = 1 / (1 + np.exp(-(25 * (scores + shift) - 16)))
    labels = rng.random(scores.shape) < chance
    return CandidateLists(embeddings, scores, labels, np.ones_like(labels))


def test_training_calibrates_and_beats_raw_cosine_on_query_dependent_data() -> None:
    train, dev, test = synthetic_lists(400, 1), synthetic_lists(150, 2), synthetic_lists(150, 3)
    adapter, report = fit_cosine_adapter(train, dev, CosineTrainingConfig(epochs=150, hidden=16), progress=False)
    probabilities = predict(adapter, test)
    assert expected_calibration_error(probabilities, test.labels, test.mask) < 0.05
    assert average_precision(probabilities, test.labels, test.mask) > average_precision(
        test.scores, test.labels, test.mask
    )
    assert 0 < report["threshold"] < 1 and report["best_epoch"] >= 1
    assert report["dev_returned_set"]["f1"] > 0
    again, _ = fit_cosine_adapter(train, dev, CosineTrainingConfig(epochs=150, hidden=16), progress=False)
    np.testing.assert_array_equal(predict(again, test), probabilities)  # fixed seed: identical retrain


def test_training_needs_positives() -> None:
    lists = synthetic_lists(10, 0)
    empty = CandidateLists(lists.queries, lists.scores, np.zeros_like(lists.labels), lists.mask)
    with pytest.raises(AdapterError, match="no relevant"):
        fit_cosine_adapter(empty, lists, progress=False)


def test_set_metrics_thresholds_and_top_k_by_hand() -> None:
    values = np.array([[0.9, 0.6, 0.2], [0.8, 0.3, 0.0]])
    labels = np.array([[True, True, False], [False, True, False]])
    mask = np.array([[True, True, True], [True, True, False]])
    scores = set_scores(keep_mask(values, mask, 0.5, 0), labels, mask)
    assert (scores.precision, scores.recall, scores.mean_kept) == (2 / 3, 2 / 3, 1.5)
    threshold, best = choose_threshold(values, labels, mask, min_results=0)
    assert threshold == pytest.approx(0.3) and best.recall == 1.0 and best.precision == pytest.approx(0.75)
    k, top = choose_top_k(labels, mask)
    assert k == 2 and top.f1 == pytest.approx(6 / 7)  # P = 3/4, R = 3/3
    assert precision_at_recall(values, labels, mask, 0.95) == pytest.approx(0.75)


@pytest.mark.parametrize("family", ["linear", "power"])
def test_numpy_serving_path_matches_the_torch_forward(family: str) -> None:
    torch.manual_seed(3)
    adapter = CosineAdapter(D, hidden=16, family=family)
    for layer in adapter.net:
        if isinstance(layer, torch.nn.Linear):
            torch.nn.init.normal_(layer.weight, std=0.5)
    query = np.random.default_rng(0).standard_normal(D).astype(np.float32)
    scores = np.linspace(-0.5, 0.95, 100, dtype=np.float32)
    served, _ = adapter.relevance(query, scores)
    lists = CandidateLists(query[None, :], scores[None, :], np.zeros((1, 100), bool), np.ones((1, 100), bool))
    np.testing.assert_allclose(served, predict(adapter, lists)[0], atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 2))
def test_best_prefix_cut_is_the_exhaustive_optimum(seed: int, min_results: int) -> None:
    """Dinkelbach's answer equals trying every combination of per-row prefix lengths (small cases)."""
    rng = np.random.default_rng(seed)
    labels = rng.random((3, 4)) < 0.3
    mask = np.ones((3, 4), bool)
    mask[0, 3] = False
    best = 0.0
    lengths = mask.sum(axis=1)
    for cuts in itertools.product(*[range(min(min_results, n), n + 1) for n in lengths]):
        kept = mask & (np.arange(4)[None, :] < np.array(cuts)[:, None])
        best = max(best, set_scores(kept, labels, mask).f1)
    assert best_prefix_cut(labels, mask, min_results).f1 == pytest.approx(best)


def test_filter_report_adds_a_raw_cosine_cutoff_for_fused_lists() -> None:
    """Hybrid lists carry each candidate's cosine beside its fused score: the report then also tunes a global
    cut-off on the cosines (on dev) and applies it to the test candidates, forcing in the highest cosine."""

    def lists(fused: list[list[float]], cosines: list[list[float]], labels: list[list[bool]]) -> CandidateLists:
        queries = np.zeros((len(fused), D), dtype=np.float32)
        queries[:, 0] = 1.0
        mask = np.ones((len(fused), len(fused[0])), dtype=bool)
        return CandidateLists(
            queries,
            np.asarray(fused, "f4"),
            np.asarray(labels),
            mask,
            first_stage="hybrid",
            cosines=np.asarray(cosines, "f4"),
        )

    # dev: a cosine cut-off at 0.7 keeps exactly the relevant ones (F1 1.0)
    dev = lists([[0.9, 0.5], [0.8, 0.6]], [[0.9, 0.3], [0.8, 0.7]], [[True, False], [True, True]])
    # test, fused order != cosine order: >= 0.7 keeps (0.75, 0.72) of q1, one relevant; (0.95) of q2, relevant
    test = lists([[0.9, 0.8], [0.7, 0.6]], [[0.75, 0.72], [0.6, 0.95]], [[False, True], [False, True]])
    report = filter_report(RelevanceFilter(CosineAdapter(D, hidden=8, threshold=0.5)), test, dev)
    cosine_cutoff = report["baseline_cosine_cutoff"]
    assert cosine_cutoff["threshold"] == pytest.approx(0.7)
    assert (cosine_cutoff["precision"], cosine_cutoff["recall"]) == (pytest.approx(2 / 3), 1.0)
    assert cosine_cutoff["f1"] == pytest.approx(0.8)
    dense = CandidateLists(test.queries, test.scores, test.labels, test.mask)  # scores are the cosines: no extra
    assert "baseline_cosine_cutoff" not in filter_report(RelevanceFilter(CosineAdapter(D, hidden=8)), dense, dense)
    with pytest.raises(AdapterError, match="cosines"):
        CandidateLists(test.queries, test.scores, test.labels, test.mask, cosines=np.zeros((2, 3), "f4"))
