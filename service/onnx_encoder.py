"""ONNX Runtime encoder: the sentence-transformers model exported once (fp32 or dynamic int8), cached and reused.

Export goes through `torch.onnx.export` (TorchScript exporter, opset 17) from the model's local directory, with no
hub access. The `optimum` route that sentence-transformers' own `backend="onnx"` takes pins an older transformers
than sentence-transformers 6 needs, so it cannot be installed beside it. ONNX Runtime applies its graph fusions
(attention, GELU, layer-norm) when the session is created (`ORT_ENABLE_ALL`); `onnx-int8` quantises the MatMul
weights per channel (dynamic int8; attention's activation-by-activation products stay fp32), and ONNX Runtime
picks the integer kernels for the CPU it runs on (VNNI where present). Tokenisation and truncation are the
model's own (`SentenceTransformer.preprocess`); pooling follows the model's pooling configuration (mean or CLS);
rows are L2-normalised, as with the torch backend.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from indexes import FloatArray
from service.encoder import EncoderIdentity, SentenceTransformerEncoder
from service.errors import EncoderError
from service.settings import EncoderSettings

logger = logging.getLogger(__name__)
IntArray = npt.NDArray[np.int64]

OPSET = 17
# Padding a pass may add, as a share of its real tokens. On SciFact test queries (2 shared cores) passes of 8-16
# random queries cost 10-11 ms of CPU per query with 0.25, 12-13 ms unsplit (padded to the longest) and 11-13 ms
# one at a time: a long query padding short ones wastes what sharing the pass saves (docs/benchmarks.md).
PADDING_SLACK = 0.25
EXPORT_FORMAT = 1
_PROBE_TEXTS = [
    "Statins reduce the risk of cardiovascular events in adults with diabetes.",
    "What lowers cholesterol?",
    "mRNA vaccines induce neutralising antibodies against the spike protein of SARS-CoV-2.",
    "Sleep deprivation impairs memory consolidation in healthy volunteers.",
    "a",
    "The tricyclic antidepressant amitriptyline is an effective drug for chronic tension-type headache " * 8,
]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:80]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(flag for flag in flags if flag.startswith(("avx512", "avx2", "avx_vnni", "amx")))


def length_chunks(lengths: npt.ArrayLike, batch_size: int, slack: float = PADDING_SLACK) -> list[IntArray]:
    """Indices of texts with these token counts, in forward passes of at most `batch_size`, longest first.

    A pass costs about (its longest text x its size) tokens of compute, padding included; a text joins the current
    pass only while that stays within (1 + slack) x the pass's real tokens. Passing several short queries together
    is cheaper per token than one at a time, but not when one long query pads them all to its length.

    >>> [chunk.tolist() for chunk in length_chunks([5, 20, 19, 6, 18], batch_size=4)]
    [[1, 2, 4], [3, 0]]
    >>> [chunk.tolist() for chunk in length_chunks([7, 7, 7], batch_size=2)]
    [[0, 1], [2]]
    """
    counts = np.asarray(lengths, dtype=np.int64)
    chunks: list[IntArray] = []
    current: list[int] = []
    real = 0
    for i in np.argsort(-counts, kind="stable").tolist():
        longest = int(counts[current[0]]) if current else 0
        if current and (len(current) >= batch_size or longest * (len(current) + 1) > (1 + slack) * (real + counts[i])):
            chunks.append(np.asarray(current, dtype=np.int64))
            current, real = [], 0
        current.append(i)
        real += int(counts[i])
    chunks.append(np.asarray(current, dtype=np.int64))
    return chunks


class OnnxEncoder:
    """An `Encoder` running the exported model in ONNX Runtime.

    Args:
        settings: encoder settings; `settings.backend` is "onnx" or "onnx-int8".
        cache_dir: where exported models live (GLASSBOX_HOME/encoders); an export is reused while its source
            model revision, backend and checksum match.

    Raises:
        EncoderError: the model cannot be loaded or exported, or its pooling is not mean or CLS.
    """

    def __init__(self, settings: EncoderSettings, cache_dir: Path) -> None:
        import onnxruntime

        if settings.backend not in ("onnx", "onnx-int8"):
            raise EncoderError(f"OnnxEncoder serves backends 'onnx' and 'onnx-int8', not {settings.backend!r}")
        self._settings = settings
        reference = SentenceTransformerEncoder(settings.model_copy(update={"backend": "torch"}))
        self._model: Any = reference.model
        self._pooling = self._pooling_mode()
        base = reference.identity
        self._identity = EncoderIdentity(base.name, base.revision, base.dimension, settings.backend)
        self._directory = cache_dir / f"{_slug(base.name)}-{base.revision}-{settings.backend}"
        self.manifest = self._load_or_export(reference)
        options = onnxruntime.SessionOptions()
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle intra-op threads sleep instead of spinning: a server runs searches beside the model, and on a small
        # machine spinning threads took the cores those searches need (2x the CPU per query, docs/benchmarks.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if settings.threads is not None:
            options.intra_op_num_threads = settings.threads
        self._session = onnxruntime.InferenceSession(
            str(self._directory / "model.onnx"), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {item.name for item in self._session.get_inputs()}
        self._lock = threading.Lock()

    @property
    def identity(self) -> EncoderIdentity:
        return self._identity

    @property
    def model(self) -> object:
        """The SentenceTransformer the export came from (tokeniser and configuration)."""
        return self._model

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        if not texts:
            return np.empty((0, self._identity.dimension), dtype=np.float32)
        features = self._tokenize(list(texts))  # one call for all: the fast tokenizer batches internally
        feeds = {name: tensor.numpy() for name, tensor in features.items() if name in self._inputs}
        if "token_type_ids" in self._inputs and "token_type_ids" not in feeds:
            feeds["token_type_ids"] = np.zeros_like(feeds["input_ids"])
        vectors = np.empty((len(texts), self._identity.dimension), dtype=np.float32)
        for chosen in length_chunks(feeds["attention_mask"].sum(axis=1), self._settings.batch_size):
            vectors[chosen] = self._encode_batch({name: array[chosen] for name, array in feeds.items()})
        return vectors

    def _encode_batch(self, feeds: dict[str, Any]) -> FloatArray:
        """Rows for tokenised texts; the padding columns no text in this chunk uses are cut off first."""
        width = int(np.flatnonzero(feeds["attention_mask"].any(axis=0)).max()) + 1
        feeds = {name: np.ascontiguousarray(array[:, :width]) for name, array in feeds.items()}
        with self._lock:
            hidden = self._session.run(None, feeds)[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        norms = np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
        return np.ascontiguousarray(pooled / norms, dtype=np.float32)

    def _tokenize(self, texts: list[str]) -> dict[str, Any]:
        """The model's own tokenisation and truncation (`preprocess` in sentence-transformers 6, else `tokenize`)."""
        tokenize = getattr(self._model, "preprocess", None) or self._model.tokenize
        features: dict[str, Any] = tokenize(texts)
        return features

    def _pooling_mode(self) -> str:
        pooling = next((module for module in self._model if type(module).__name__ == "Pooling"), None)
        if pooling is None:
            raise EncoderError(f"encoder {self._settings.model!r} has no Pooling module; the ONNX backend needs one")
        config = pooling.get_config_dict()
        mode = config.get("pooling_mode")  # sentence-transformers >= 6; older ones use boolean flags
        if mode == "mean" or config.get("pooling_mode_mean_tokens"):
            return "mean"
        if mode == "cls" or config.get("pooling_mode_cls_token"):
            return "cls"
        raise EncoderError(f"encoder {self._settings.model!r} pools with {config}; the ONNX backend does mean or CLS")

    def _load_or_export(self, reference: SentenceTransformerEncoder) -> dict[str, Any]:
        manifest_path = self._directory / "manifest.json"
        if manifest_path.is_file():
            manifest: dict[str, Any] = json.loads(manifest_path.read_text())
            model_path = self._directory / "model.onnx"
            if (
                manifest.get("format") == EXPORT_FORMAT
                and manifest.get("source_revision") == self._identity.revision
                and model_path.is_file()
                and manifest.get("checksum") == _sha256(model_path)
            ):
                return manifest
            logger.warning("re-exporting %s: the cached export does not match", self._directory)
        return self._export(reference)

    def _export(self, reference: SentenceTransformerEncoder) -> dict[str, Any]:
        import onnxruntime

        self._directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{self._directory.name}-", dir=self._directory.parent))
        try:
            transformer = self._model[0].auto_model.eval()
            sample = self._tokenize(_PROBE_TEXTS[:2])
            names: list[str] = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in sample]
            wrapper = _HiddenStates(transformer, names)
            fp32 = staging / "model-fp32.onnx"
            # The exporter warns about Python control flow it traces through (shape checks in the attention
            # code); the probe comparison below is what establishes that the export is faithful.
            with torch.no_grad(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                torch.onnx.export(
                    wrapper,
                    tuple(sample[name] for name in names),
                    str(fp32),
                    input_names=names,
                    output_names=["last_hidden_state"],
                    dynamic_axes={name: {0: "batch", 1: "tokens"} for name in [*names, "last_hidden_state"]},
                    opset_version=OPSET,
                    dynamo=False,
                )
            target = staging / "model.onnx"
            quantisation: dict[str, Any] | None = None
            if self._settings.backend == "onnx-int8":
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantize_dynamic(
                    str(fp32),
                    str(target),
                    weight_type=QuantType.QInt8,
                    per_channel=True,
                    op_types_to_quantize=["MatMul"],
                )
                fp32.unlink()
                quantisation = {"method": "dynamic", "weights": "int8 per channel", "ops": ["MatMul"]}
            else:
                fp32.rename(target)
            session = onnxruntime.InferenceSession(str(target), providers=["CPUExecutionProvider"])
            self._session, self._inputs, self._lock = session, {i.name for i in session.get_inputs()}, threading.Lock()
            agreement = (self.encode(_PROBE_TEXTS) * reference.encode(_PROBE_TEXTS)).sum(axis=1)
            manifest = {
                "format": EXPORT_FORMAT,
                "source_model": self._identity.name,
                "source_revision": self._identity.revision,
                "backend": self._settings.backend,
                "opset": OPSET,
                "quantisation": quantisation,
                "pooling": self._pooling,
                "max_seq_length": int(self._model.max_seq_length),
                "min_cosine_to_torch_on_probe": round(float(agreement.min()), 6),
                "cpu_flags": _cpu_flags(),
                "onnxruntime_version": onnxruntime.__version__,
                "torch_version": torch.__version__,
                "checksum": _sha256(target),
            }
            (staging / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
            if self._directory.exists():
                shutil.rmtree(self._directory)
            staging.rename(self._directory)
        except Exception as exc:
            shutil.rmtree(staging, ignore_errors=True)
            raise EncoderError(f"cannot export {self._identity.name!r} to ONNX: {exc}") from exc
        logger.info("exported %s to %s (%s)", self._identity.name, self._directory, self._settings.backend)
        return manifest


class _HiddenStates(torch.nn.Module):
    """Wraps the transformer so export sees positional inputs and one output (last hidden states)."""

    def __init__(self, transformer: Any, names: list[str]) -> None:
        super().__init__()
        self.transformer = transformer
        self.names = names

    def forward(self, *inputs: Any) -> Any:
        return self.transformer(**dict(zip(self.names, inputs, strict=True))).last_hidden_state
