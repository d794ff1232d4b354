"""The adapter base: config + safetensors weights + report in one folder, round-tripped and checked at load."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest
import torch
from torch import nn

from adapters import Adapter, AdapterArtifactError, EncoderSignature

MINILM = EncoderSignature("sentence-transformers/all-MiniLM-L6-v2", 384)


class Scale(Adapter):
    """A tiny adapter: a learned linear map of width `dimension`."""

    kind: ClassVar[str] = "scale"
    config_keys: ClassVar[tuple[str, ...]] = ("dimension", "bias")

    def __init__(self, dimension: int, bias: bool = True) -> None:
        super().__init__()
        self.dimension, self.bias = dimension, bias
        self.linear = nn.Linear(dimension, dimension, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


class Other(Scale):
    kind: ClassVar[str] = "other"


def test_save_load_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    adapter = Scale(8, bias=False)
    adapter.save(tmp_path / "a", MINILM, report={"best_epoch": 3})
    loaded = Scale.load(tmp_path / "a", MINILM)
    x = torch.randn(4, 8)
    assert loaded.get_config() == {"dimension": 8, "bias": False}
    torch.testing.assert_close(loaded(x), adapter(x))
    assert Scale.read_report(tmp_path / "a") == {"best_epoch": 3}
    assert not loaded.training


def test_resave_replaces_whole_directory(tmp_path: Path) -> None:
    Scale(4).save(tmp_path / "a", MINILM, report={"v": 1})
    Scale(4).save(tmp_path / "a", MINILM)
    assert Scale.read_report(tmp_path / "a") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]


def test_load_refuses_wrong_kind_encoder_or_folder(tmp_path: Path) -> None:
    Scale(4).save(tmp_path / "a", MINILM)
    with pytest.raises(AdapterArtifactError, match="'scale' adapter, expected 'other'"):
        Other.load(tmp_path / "a")
    with pytest.raises(AdapterArtifactError, match="trained on 'sentence-transformers/all-MiniLM-L6-v2'"):
        Scale.load(tmp_path / "a", EncoderSignature("other-model", 768))
    with pytest.raises(AdapterArtifactError, match="no readable adapter config"):
        Scale.load(tmp_path / "missing")
