"""Shared fixtures: seeded synthetic vectors, the real MiniLM encoder (loaded once), apps on temporary homes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from service.api import create_app
from service.encoder import SentenceTransformerEncoder
from service.settings import EncoderSettings, Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def unit_rows(matrix: np.ndarray) -> np.ndarray:
    return (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)


def clustered_vectors(n: int, d: int, seed: int, clusters: int = 100, noise: float = 1.0) -> np.ndarray:
    """Unit vectors drawn around `clusters` Gaussian centres: structured like real embeddings, not trivial."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    return unit_rows(centres[rng.integers(0, clusters, n)] + noise * rng.standard_normal((n, d)))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared read-only data folder; absent data skips locally and fails in CI (CI must run these)."""
    configured = Settings().data  # GLASSBOX_DATA, default ../shared/data (relative to the project root)
    path = configured if configured.is_absolute() else PROJECT_ROOT / configured
    if not (path / "beir" / "scifact" / "corpus.jsonl").is_file():
        reason = f"shared data not found at {path} (set GLASSBOX_DATA)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def encoder() -> SentenceTransformerEncoder:
    """The real all-MiniLM-L6-v2, from the locally installed package."""
    return SentenceTransformerEncoder(EncoderSettings())


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@pytest.fixture
def client(settings: Settings, encoder: SentenceTransformerEncoder) -> Iterator[TestClient]:
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        yield test_client
