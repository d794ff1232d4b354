"""Document store + FAISS index kept consistent: durability by replay, filters, locks, read-only opens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from indexes import (
    ArtifactError,
    Collection,
    CollectionConfig,
    CollectionLockedError,
    Document,
    DocumentStore,
    InvalidInputError,
    ReadOnlyError,
)
from tests.conftest import clustered_vectors

D = 16


def config(factory: str = "Flat") -> CollectionConfig:
    return CollectionConfig(name="c", dimension=D, encoder="test-encoder", encoder_revision="r1", factory=factory)


def docs(n: int, start: int = 0, **metadata: object) -> list[Document]:
    return [Document(f"d{i}", f"title {i}", f"text {i}", {"parity": i % 2, **metadata}) for i in range(start, n)]


@pytest.fixture
def vectors() -> np.ndarray:
    return clustered_vectors(300, D, seed=3, clusters=10)


def test_create_upsert_search_get(tmp_path: Path, vectors: np.ndarray) -> None:
    collection = Collection.create(tmp_path / "c", config())
    collection.upsert(docs(100), vectors[:100])
    matches = collection.search(vectors[5], 3)[0]
    assert matches[0].document.id == "d5"
    assert matches[0].document.metadata == {"parity": 1}
    assert collection.get(["d1", "nope"]).keys() == {"d1"}
    np.testing.assert_array_equal(collection.vectors(["d9"])[0], vectors[9])
    collection.close()
    manifest = (tmp_path / "c" / "manifest.json").read_text()
    assert '"documents": 100' in manifest and '"encoder": "test-encoder"' in manifest


def test_writes_survive_without_a_snapshot(tmp_path: Path, vectors: np.ndarray) -> None:
    """Everything committed to SQLite is replayed into the index on open, as after a kill -9."""
    collection = Collection.create(tmp_path / "c", config(), snapshot_every=10_000)
    collection.upsert(docs(50), vectors[:50])
    collection.snapshot()
    collection.upsert(docs(80, start=50), vectors[50:80])
    collection.delete(["d0", "d60"])
    collection.upsert([Document("d1", "new", "replaced")], vectors[200:201])
    # Simulate a crash: drop the process lock and the connection without close()'s snapshot.
    collection._lock_file.close()  # type: ignore[union-attr]
    collection._store.close()
    reopened = Collection.open(tmp_path / "c")
    assert len(reopened) == 78
    assert reopened.verify() == (set(), set())
    assert reopened.get(["d1"])["d1"].title == "new"
    np.testing.assert_array_equal(reopened.vectors(["d1"])[0], vectors[200])
    assert reopened.search(vectors[200], 1)[0][0].document.id == "d1"
    reopened.close()


def test_lost_snapshot_is_rebuilt_from_documents(tmp_path: Path, vectors: np.ndarray) -> None:
    collection = Collection.create(tmp_path / "c", config())
    collection.upsert(docs(40), vectors[:40])
    collection.close()
    (tmp_path / "c" / "faiss" / "CURRENT").unlink()
    reopened = Collection.open(tmp_path / "c")
    assert len(reopened) == 40 and reopened.verify() == (set(), set())
    reopened.close()


def test_metadata_filter_overfetches_until_enough_match(tmp_path: Path, vectors: np.ndarray) -> None:
    collection = Collection.create(tmp_path / "c", config())
    collection.upsert(docs(200), vectors[:200])
    collection.upsert([Document("rare", "", "", {"tag": "rare"})], -vectors[0:1])
    matches = collection.search(vectors[0], 5, where={"tag": "rare"}, overfetch=1)[0]
    assert [m.document.id for m in matches] == ["rare"]
    odd = collection.search(vectors[0], 10, where={"parity": 1})[0]
    assert len(odd) == 10 and all(m.document.metadata["parity"] == 1 for m in odd)
    exact = sorted((float(vectors[i] @ vectors[0]), f"d{i}") for i in range(200) if i % 2 == 1)[::-1][:10]
    assert [m.document.id for m in odd] == [doc_id for _, doc_id in exact]
    assert collection.search(vectors[0], 5, where={"parity": "1"})[0] == []
    collection.close()


def test_duplicate_ids_in_a_batch_write_nothing(tmp_path: Path, vectors: np.ndarray) -> None:
    collection = Collection.create(tmp_path / "c", config())
    with pytest.raises(InvalidInputError, match=r"\['d1'\]"):
        collection.upsert([*docs(3), Document("d1")], vectors[:4])
    assert len(collection) == 0 and collection.get(["d0"]) == {}
    collection.close()


def test_one_writer_process_many_readers(tmp_path: Path, vectors: np.ndarray) -> None:
    writer = Collection.create(tmp_path / "c", config())
    writer.upsert(docs(10), vectors[:10])
    with pytest.raises(CollectionLockedError, match="another process"):
        Collection.open(tmp_path / "c")
    reader = Collection.open(tmp_path / "c", read_only=True)
    assert len(reader) == 10
    with pytest.raises(ReadOnlyError):
        reader.upsert(docs(1), vectors[:1])
    reader.close()
    writer.close()
    Collection.open(tmp_path / "c").close()


def test_open_and_create_refuse_wrong_directories(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no collection"):
        Collection.open(tmp_path / "missing")
    Collection.create(tmp_path / "c", config()).close()
    with pytest.raises(ArtifactError, match="already exists"):
        Collection.create(tmp_path / "c", config())


def test_store_sequences_and_change_log(tmp_path: Path, vectors: np.ndarray) -> None:
    store = DocumentStore(tmp_path / "s.sqlite", D)
    first = store.upsert(docs(3), vectors[:3], [{"text": 1}] * 3)
    second, deleted = store.delete(["d1", "zz"])
    assert (first, second, deleted) == (1, 2, ["d1"])
    changes = store.changes_since(first)
    assert changes.upserted_ids == [] and changes.deleted_ids == ["d1"] and changes.last_seq == 2
    store.upsert([Document("d1", "back")], vectors[3:4], [{"back": 1}])
    changes = store.changes_since(second)
    assert changes.upserted_ids == ["d1"] and changes.deleted_ids == []
    np.testing.assert_array_equal(changes.upserted_vectors[0], vectors[3])
    assert store.content_hashes(["d0"])["d0"] == docs(1)[0].content_hash
    store.close()
