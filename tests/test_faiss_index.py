"""FaissIndex on seeded synthetic vectors against brute-force ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexes import (
    ArtifactError,
    DimensionMismatchError,
    FaissIndex,
    GpuUnavailableError,
    IndexConfigError,
    InvalidInputError,
    SearchTuning,
    UnknownDocumentError,
    gpu_count,
)
from tests.conftest import clustered_vectors

N, D, NQ, K = 4000, 32, 100, 10
IDS = [f"doc-{i}" for i in range(N)]


@pytest.fixture(scope="module")
def corpus() -> np.ndarray:
    return clustered_vectors(N, D, seed=0)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered_vectors(NQ, D, seed=1)


def brute_force(corpus: np.ndarray, queries: np.ndarray, k: int) -> list[list[str]]:
    scores = queries @ corpus.T
    return [[IDS[j] for j in np.argsort(-row, kind="stable")[:k]] for row in scores]


def recall_at_k(index: FaissIndex, corpus: np.ndarray, queries: np.ndarray, k: int = K) -> float:
    truth = brute_force(corpus, queries, k)
    hits = index.search(queries, k)
    return float(np.mean([len(set(h.doc_ids) & set(t)) / k for h, t in zip(hits, truth, strict=True)]))


def built(factory: str, corpus: np.ndarray, **tuning: int) -> FaissIndex:
    index = FaissIndex(D, factory, SearchTuning(device="cpu", **tuning))  # type: ignore[arg-type]
    for start in range(0, N, 1000):
        index.upsert(IDS[start : start + 1000], corpus[start : start + 1000])
    return index


def test_flat_is_exact(corpus: np.ndarray, queries: np.ndarray) -> None:
    index = built("Flat", corpus)
    hits = index.search(queries, K)
    truth_scores = np.sort(queries @ corpus.T, axis=1)[:, ::-1][:, :K]
    assert [list(h.doc_ids) for h in hits] == brute_force(corpus, queries, K)
    np.testing.assert_allclose(np.stack([h.scores for h in hits]), truth_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factory", ["IVF64,Flat", "HNSW32"])
def test_ann_recall_at_default_parameters(factory: str, corpus: np.ndarray, queries: np.ndarray) -> None:
    index = built(factory, corpus)
    assert index.is_trained
    assert recall_at_k(index, corpus, queries) >= 0.95


def test_ivfpq_trains_and_rescores_exactly(corpus: np.ndarray, queries: np.ndarray) -> None:
    index = built("IVF32,PQ16x4", corpus)
    assert index.is_trained
    assert recall_at_k(index, corpus, queries) >= 0.8
    hit = index.search(queries[:1], 5)[0]
    exact = index.vectors(list(hit.doc_ids)) @ queries[0]
    np.testing.assert_allclose(hit.scores, exact, rtol=1e-5)
    assert list(hit.scores) == sorted(hit.scores, reverse=True)


def test_untrained_index_answers_exactly_until_it_can_train(corpus: np.ndarray, queries: np.ndarray) -> None:
    index = FaissIndex(D, "IVF64,Flat", SearchTuning(device="cpu"))
    index.upsert(IDS[:500], corpus[:500])
    assert not index.is_trained
    assert [list(h.doc_ids) for h in index.search(queries, 5)] == brute_force(corpus[:500], queries, 5)
    index.upsert(IDS[500:], corpus[500:])
    assert index.is_trained
    assert len(index) == N


@pytest.mark.parametrize("factory", ["Flat", "IVF64,Flat", "HNSW32"])
def test_upsert_replaces_and_delete_removes(factory: str, corpus: np.ndarray) -> None:
    index = built(factory, corpus)
    target = corpus[7]
    index.upsert(["doc-0"], target[None, :])
    assert len(index) == N
    np.testing.assert_array_equal(index.vectors(["doc-0"])[0], target)
    top = index.search(target[None, :], 2)[0]
    assert set(top.doc_ids) == {"doc-0", "doc-7"}
    assert index.delete(["doc-7", "doc-0", "never-there"]) == 2
    assert len(index) == N - 2
    assert "doc-7" not in index and "doc-0" not in index
    remaining = index.search(target[None, :], 50)[0]
    assert "doc-7" not in remaining.doc_ids and "doc-0" not in remaining.doc_ids
    assert len(remaining) == 50


def test_hnsw_tombstones_are_compacted(corpus: np.ndarray) -> None:
    index = built("HNSW32", corpus)
    index.delete(IDS[:1000])
    assert index.stale_count == 1000  # HNSW cannot remove: tombstones, filtered at search time
    assert all(d not in index.search(corpus[:5], 20)[0].doc_ids for d in IDS[:1000])
    index.delete(IDS[1000:1100])  # 1100 stale > max(1024, 20 % of 4000): compaction rebuilds
    assert index.stale_count == 0
    assert len(index) == N - 1100
    assert all(d not in index.search(corpus[:5], 20)[0].doc_ids for d in IDS[:1100])


@pytest.mark.parametrize("factory", ["Flat", "IVF64,Flat", "HNSW32", "IVF32,PQ16x4"])
def test_save_load_round_trip_gives_identical_results(
    factory: str, corpus: np.ndarray, queries: np.ndarray, tmp_path: Path
) -> None:
    index = built(factory, corpus)
    index.delete(IDS[:10])
    index.upsert(["doc-20"], corpus[:1])
    index.save(tmp_path / "idx", {"applied_seq": 3})
    loaded = FaissIndex.load(tmp_path / "idx", SearchTuning(device="cpu"))
    assert FaissIndex.read_manifest(tmp_path / "idx")["metadata"] == {"applied_seq": 3}
    assert len(loaded) == len(index) and loaded.factory == factory
    for before, after in zip(index.search(queries, K), loaded.search(queries, K), strict=True):
        assert before.doc_ids == after.doc_ids
        np.testing.assert_array_equal(before.scores, after.scores)
    loaded.upsert(["fresh"], corpus[:1])
    assert "fresh" in loaded and len(loaded) == len(index) + 1


def test_save_replaces_snapshot_atomically(corpus: np.ndarray, tmp_path: Path) -> None:
    index = built("Flat", corpus)
    index.save(tmp_path / "idx")
    index.delete(IDS[:5])
    index.save(tmp_path / "idx")
    assert len(list((tmp_path / "idx").glob("snap-*"))) == 1
    assert len(FaissIndex.load(tmp_path / "idx")) == N - 5


def test_load_refuses_missing_or_inconsistent_snapshots(corpus: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no index snapshot"):
        FaissIndex.load(tmp_path / "nothing")
    index = built("Flat", corpus)
    index.save(tmp_path / "idx")
    snapshot = next((tmp_path / "idx").glob("snap-*"))
    np.save(snapshot / "keys.npy", np.arange(3, dtype=np.int64))
    with pytest.raises(ArtifactError, match="inconsistent"):
        FaissIndex.load(tmp_path / "idx")


def test_bad_inputs_name_the_problem(corpus: np.ndarray) -> None:
    index = FaissIndex(D)
    with pytest.raises(DimensionMismatchError, match="dimension 16"):
        index.upsert(["a"], corpus[:1, :16])
    with pytest.raises(InvalidInputError, match="duplicate ids"):
        index.upsert(["a", "a"], corpus[:2])
    with pytest.raises(InvalidInputError, match="2 ids but 1 vectors"):
        index.upsert(["a", "b"], corpus[:1])
    with pytest.raises(InvalidInputError, match="NaN"):
        index.upsert(["a"], np.full((1, D), np.nan, dtype=np.float32))
    with pytest.raises(InvalidInputError, match="k must be >= 1"):
        index.search(corpus[:1], 0)
    with pytest.raises(UnknownDocumentError, match="'missing'"):
        index.vectors(["missing"])
    with pytest.raises(IndexConfigError, match="'NotAnIndex'"):
        FaissIndex(D, "NotAnIndex")
    assert len(index) == 0


def test_empty_index_returns_no_hits(corpus: np.ndarray) -> None:
    hits = FaissIndex(D).search(corpus[:3], 5)
    assert [len(h) for h in hits] == [0, 0, 0]


@pytest.mark.skipif(gpu_count() > 0, reason="checks the no-GPU error path")
def test_gpu_demanded_without_gpu_is_an_error() -> None:
    with pytest.raises(GpuUnavailableError, match="no GPU"):
        FaissIndex(D, "Flat", SearchTuning(device="gpu"))
    assert not FaissIndex(D, "Flat", SearchTuning(device="auto")).uses_gpu
