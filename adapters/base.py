"""The base every adapter implements: an `nn.Module` whose config and weights save to, and load from, one folder.

An adapter directory holds `config.json` (kind, constructor arguments, the encoder it was trained on, versions),
`model.safetensors` and, when given, `report.json` (the training report). Loading checks the kind and the encoder.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from adapters.errors import AdapterArtifactError

ARTIFACT_FORMAT = 1


@dataclass(frozen=True)
class EncoderSignature:
    """The encoder an adapter was trained on: its vectors are only meaningful for that encoder."""

    name: str
    dimension: int


class Adapter(nn.Module, ABC):
    """An adapter module. Subclasses set `kind` and `config_keys` (their constructor's argument names)."""

    kind: ClassVar[str]
    config_keys: ClassVar[tuple[str, ...]]

    def get_config(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in self.config_keys}

    def save(
        self,
        directory: Path,
        encoder: EncoderSignature,
        report: Mapping[str, Any] | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write config, weights, report and extra `files` (name -> bytes) into `directory`, replacing it whole."""
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
        try:
            config = {
                "format": ARTIFACT_FORMAT,
                "kind": self.kind,
                "config": self.get_config(),
                "encoder": {"name": encoder.name, "dimension": encoder.dimension},
                "torch_version": torch.__version__,
            }
            (staging / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
            state = {name: tensor.detach().cpu().contiguous() for name, tensor in self.state_dict().items()}
            save_file(state, str(staging / "model.safetensors"))
            if report is not None:
                (staging / "report.json").write_text(json.dumps(dict(report), indent=2, sort_keys=True))
            for name, content in (files or {}).items():
                if Path(name).name != name or name in {"config.json", "model.safetensors", "report.json"}:
                    raise AdapterArtifactError(f"extra artifact file name {name!r} is not allowed")
                (staging / name).write_bytes(content)
            if directory.exists():
                aside = directory.with_name(f".{directory.name}-old")
                shutil.rmtree(aside, ignore_errors=True)
                directory.rename(aside)
                staging.rename(directory)
                shutil.rmtree(aside, ignore_errors=True)
            else:
                staging.rename(directory)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path, encoder: EncoderSignature | None = None) -> Self:
        """Rebuild the adapter from `directory`; with `encoder`, refuse one trained for another encoder.

        Raises:
            AdapterArtifactError: missing files, another kind, or an encoder mismatch (names both sides).
        """
        try:
            config = json.loads((directory / "config.json").read_text())
        except (OSError, ValueError) as exc:
            raise AdapterArtifactError(f"no readable adapter config in {directory}: {exc}") from exc
        if config.get("kind") != cls.kind:
            raise AdapterArtifactError(f"{directory} holds a {config.get('kind')!r} adapter, expected {cls.kind!r}")
        trained_on = EncoderSignature(**config["encoder"])
        if encoder is not None and trained_on != encoder:
            raise AdapterArtifactError(
                f"adapter in {directory} was trained on {trained_on.name!r} ({trained_on.dimension}-d), "
                f"but the encoder is {encoder.name!r} ({encoder.dimension}-d)"
            )
        module = cls(**config["config"])
        try:
            module.load_state_dict(load_file(str(directory / "model.safetensors")))
        except (OSError, RuntimeError) as exc:
            raise AdapterArtifactError(f"cannot load weights from {directory}: {exc}") from exc
        module.eval()
        return module

    @staticmethod
    def read_report(directory: Path) -> dict[str, Any] | None:
        path = directory / "report.json"
        if not path.is_file():
            return None
        report: dict[str, Any] = json.loads(path.read_text())
        return report
