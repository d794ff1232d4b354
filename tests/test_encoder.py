"""The real sentence-transformers encoder, loaded offline from local files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.encoder import SentenceTransformerEncoder, document_text, model_revision, resolve_model_path
from service.errors import EncoderError
from service.settings import DEFAULT_MODEL, EncoderSettings

pytestmark = pytest.mark.slow


def test_encodes_unit_float32_rows(encoder: SentenceTransformerEncoder) -> None:
    vectors = encoder.encode(["aspirin lowers fever", "statins lower cholesterol", "x"])
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)


def test_batching_does_not_change_embeddings(encoder: SentenceTransformerEncoder) -> None:
    texts = [f"sentence number {i} about protein folding" for i in range(40)]
    together = encoder.encode(texts)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts[:5]])
    np.testing.assert_allclose(together[:5], one_by_one, atol=1e-5)


def test_related_texts_score_higher(encoder: SentenceTransformerEncoder) -> None:
    query, related, unrelated = encoder.encode(
        ["what lowers cholesterol", "Atorvastatin reduces LDL cholesterol.", "The train leaves at noon."]
    )
    assert float(query @ related) > float(query @ unrelated) + 0.2


def test_default_name_resolves_to_bundled_weights() -> None:
    path = Path(resolve_model_path(DEFAULT_MODEL))
    assert (path / "model.safetensors").is_file()
    assert model_revision(str(path)) == model_revision(str(path))


def test_loads_any_local_model_directory(encoder: SentenceTransformerEncoder) -> None:
    by_path = SentenceTransformerEncoder(EncoderSettings(model=resolve_model_path(DEFAULT_MODEL)))
    assert by_path.identity.revision == encoder.identity.revision
    np.testing.assert_allclose(by_path.encode(["same text"]), encoder.encode(["same text"]), atol=1e-6)


def test_unknown_model_offline_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="no-such-org/no-such-model"):
        SentenceTransformerEncoder(EncoderSettings(model="no-such-org/no-such-model"))


def test_document_text_joins_title_and_body() -> None:
    assert document_text("T", "body") == "T body"
    assert document_text("", "") == ""


def test_revision_changes_when_large_weights_change_in_place(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"hidden": 4}')
    weights = bytearray(6 * (1 << 20))
    (tmp_path / "model.safetensors").write_bytes(weights)
    before = model_revision(str(tmp_path))
    weights[3 * (1 << 20) + 10] = 1  # same size, a byte changed in the middle sample
    (tmp_path / "model.safetensors").write_bytes(weights)
    assert model_revision(str(tmp_path)) != before
    (tmp_path / "config.json").write_text('{"hidden": 5}')
    assert len({before, model_revision(str(tmp_path))}) == 2


def test_thread_settings_apply_process_wide(tmp_path: Path) -> None:
    import faiss
    import torch

    from service.registry import CollectionRegistry
    from service.settings import IndexSettings

    torch_before, faiss_before = torch.get_num_threads(), faiss.omp_get_max_threads()
    try:
        encoder = SentenceTransformerEncoder(EncoderSettings(threads=1))
        CollectionRegistry(tmp_path, encoder.identity, IndexSettings(threads=1))
        assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == (1, 1)
    finally:
        torch.set_num_threads(torch_before)
        faiss.omp_set_num_threads(faiss_before)
