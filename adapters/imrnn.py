"""IMRNN (after Saxena et al., EACL 2026 Findings): query/document modulation that re-scores first-stage candidates.

With the encoder frozen, for a query embedding x_q and its K candidates x_i (all (d,), unit length):

- projection ``p = L2(W x + b)``, W square and initialised to the identity (b = 0);
- query adapter ``A_q`` (MLP d → hidden → 2d; sigmoid for the scale, tanh for the shift) reads ``p_q`` and modulates
  every candidate: ``d̃_i = LN(p_i ⊙ s_q + β_q)``;
- document adapter ``A_d`` reads each ``p_i``; the mean of its scales and shifts over the K candidates modulates the
  query (corpus-level feedback): ``q̃ = LN(p_q ⊙ s̄_d + β̄_d)``;
- adapted score ``ŝ_i = cos(q̃, d̃_i)``; the served score blends ``(1 - λ)·c_i + λ·ŝ_i`` with the raw cosine ``c_i``,
  λ (`blend`) chosen on dev and 0 when the adapter does not beat raw cosine there.

The adapters' last layers start near zero, so a fresh adapter scales every coordinate by one constant (which the
layer norm removes) and shifts nothing: ``ŝ_i`` then is the cosine of the layer-normed (centred) embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

from adapters.base import Adapter
from adapters.errors import AdapterError

FloatMatrix = npt.NDArray[np.float32]
_EPS = 1e-12


@dataclass(frozen=True)
class Modulation:
    """One query's modulation over n candidates, all float32 (d = the encoder width).

    Attributes:
        projected_query: (d,) ``p_q``.
        adapted_query: (d,) ``q̃``, the query after the documents' averaged modulation (layer-normed).
        projected_documents: (n, d) ``p_i``.
        adapted_documents: (n, d) ``d̃_i``, the candidates after the query's modulation (layer-normed).
        adapted_scores: (n,) ``ŝ_i = cos(q̃, d̃_i)``.
    """

    projected_query: FloatMatrix
    adapted_query: FloatMatrix
    projected_documents: FloatMatrix
    adapted_documents: FloatMatrix
    adapted_scores: FloatMatrix


def _adapter_mlp(dimension: int, hidden: int) -> nn.Sequential:
    last = nn.Linear(hidden, 2 * dimension)
    with torch.no_grad():  # start (almost) unmodulated: constant scale sigmoid(0), no shift
        last.weight.mul_(0.01)
        last.bias.zero_()
    return nn.Sequential(nn.Linear(dimension, hidden), nn.ReLU(), last)


class ImrnnAdapter(Adapter):
    """The IMRNN re-scorer.

    Args:
        dimension: embedding width d.
        hidden: hidden units of each adapter MLP (the paper's 128).
        blend: λ in [0, 1], the weight of the adapted score in the served score (set on dev after training).
        iterations: rounds of modulation the artifact was selected with (> 1 re-retrieves, see `train_imrnn`).
    """

    kind: ClassVar[str] = "imrnn"
    config_keys: ClassVar[tuple[str, ...]] = ("dimension", "hidden", "blend", "iterations")

    def __init__(self, dimension: int, hidden: int = 128, blend: float = 0.0, iterations: int = 1) -> None:
        super().__init__()
        if dimension < 1 or hidden < 1:
            raise AdapterError(f"dimension and hidden must be >= 1, got {dimension} and {hidden}")
        if not 0.0 <= blend <= 1.0:
            raise AdapterError(f"blend λ must be in [0, 1], got {blend}")
        if iterations < 1:
            raise AdapterError(f"iterations must be >= 1, got {iterations}")
        self.dimension, self.hidden, self.blend, self.iterations = dimension, hidden, float(blend), iterations
        self.projection = nn.Linear(dimension, dimension)
        with torch.no_grad():
            self.projection.weight.copy_(torch.eye(dimension))
            self.projection.bias.zero_()
        self.query_adapter = _adapter_mlp(dimension, hidden)
        self.document_adapter = _adapter_mlp(dimension, hidden)
        self.norm = nn.LayerNorm(dimension)

    # ---- torch (training, batched) -------------------------------------------------------------------------
    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``L2(W x + b)`` over the last axis."""
        return functional.normalize(self.projection(x), dim=-1)

    def _scale_shift(self, mlp: nn.Sequential, p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw = mlp(p)
        return torch.sigmoid(raw[..., : self.dimension]), torch.tanh(raw[..., self.dimension :])

    def modulate_torch(
        self, queries: torch.Tensor, documents: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(q̃ (b, d), d̃ (b, n, d)) for queries (b, d), candidates (b, n, d) and a (b, n) bool mask of real ones."""
        p_q, p_d = self.project(queries), self.project(documents)
        scale_q, shift_q = self._scale_shift(self.query_adapter, p_q)
        adapted_documents = self.norm(p_d * scale_q[:, None, :] + shift_q[:, None, :])
        scale_d, shift_d = self._scale_shift(self.document_adapter, p_d)
        weights = mask.to(p_d.dtype)[..., None]
        count = weights.sum(dim=1).clamp(min=1.0)
        mean_scale, mean_shift = (scale_d * weights).sum(dim=1) / count, (shift_d * weights).sum(dim=1) / count
        adapted_query = self.norm(p_q * mean_scale + mean_shift)
        return adapted_query, adapted_documents

    def forward(self, queries: torch.Tensor, documents: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Adapted scores ŝ (b, n) for queries (b, d), candidates (b, n, d), mask (b, n) (padding scores 0)."""
        adapted_query, adapted_documents = self.modulate_torch(queries, documents, mask)
        scores = functional.cosine_similarity(adapted_query[:, None, :], adapted_documents, dim=-1, eps=1e-8)
        return scores * mask.to(scores.dtype)

    # ---- numpy (serving one query) -------------------------------------------------------------------------
    def document_terms(self, documents: FloatMatrix) -> FloatMatrix:
        """(n, 3d) query-independent terms of candidates (n, d): their projection p (first d columns) and the
        document adapter's folded logistic g (2d; scale and shift are linear in it, see `_scale_shift`).

        They depend on the document alone, so a server can compute them once per document and pass them to
        `modulate` for every later query.
        """
        weights = self._numpy_weights()
        d = self.dimension
        documents = np.asarray(documents, dtype=np.float32).reshape(-1, d)
        terms = np.empty((len(documents), 3 * d), dtype=np.float32)
        if not len(documents):
            return terms
        projected = documents @ weights["W_t"]
        projected += weights["b"]
        projected /= np.maximum(np.sqrt(np.einsum("ij,ij->i", projected, projected)), _EPS)[:, None]
        hidden = cast(FloatMatrix, projected @ weights["d_first_w"])
        hidden += weights["d_first_b"]
        np.maximum(hidden, 0.0, out=hidden)
        out: FloatMatrix = hidden @ weights["d_last_w"]
        out += weights["d_last_b"]
        with np.errstate(over="ignore"):  # exp overflows to inf for saturated units: 1 / (1 + inf) = 0, exactly right
            np.exp(out, out=out)
        out += 1.0
        np.reciprocal(out, out=out)
        terms[:, :d], terms[:, d:] = projected, out
        return terms

    def modulate(self, query: FloatMatrix, documents: FloatMatrix, terms: FloatMatrix | None = None) -> Modulation:
        """One query (d,) over its candidates (n, d), in numpy from the current weights (same arithmetic as torch).

        `terms` are the candidates' `document_terms` when the caller has them (computed here otherwise): then
        only the query's side is computed per call. Float32 throughout, one BLAS call per layer; the sigmoid and
        tanh of each adapter's last layer come from one logistic (the factors folded into the weights).
        """
        weights = self._numpy_weights()
        d = self.dimension
        query = np.asarray(query, dtype=np.float32)
        if query.shape != (d,):
            raise AdapterError(f"query must have shape ({d},), got {query.shape}")
        if terms is None:
            terms = self.document_terms(documents)
        n = len(terms)
        if terms.shape != (n, 3 * d):
            raise AdapterError(f"document terms must have shape (n, {3 * d}), got {terms.shape}")
        p_q = query @ weights["W_t"] + weights["b"]
        p_q /= max(float(np.sqrt(p_q @ p_q)), float(_EPS))
        p_d = terms[:, :d]
        query_hidden = cast(FloatMatrix, np.maximum(p_q @ weights["q_first_w"] + weights["q_first_b"], np.float32(0.0)))
        scale_q, shift_q = _scale_shift(query_hidden @ weights["q_last_w"] + weights["q_last_b"], d)
        adapted_documents = p_d * scale_q
        adapted_documents += shift_q
        self._layer_norm_inplace(adapted_documents, weights)
        if n:
            mean_logistic = terms[:, d:].mean(axis=0, dtype=np.float32)
            mean_scale = mean_logistic[:d]
            mean_shift = mean_logistic[d:] * np.float32(2.0) - np.float32(1.0)
        else:
            mean_scale, mean_shift = np.full(d, 0.5, np.float32), np.zeros(d, np.float32)
        adapted_query = (p_q * mean_scale + mean_shift)[None, :]
        self._layer_norm_inplace(adapted_query, weights)
        adapted_query = adapted_query[0]
        norms = np.sqrt(np.einsum("ij,ij->i", adapted_documents, adapted_documents)) * np.sqrt(
            adapted_query @ adapted_query
        )
        scores = (adapted_documents @ adapted_query) / np.maximum(norms, np.float32(1e-8))
        return Modulation(p_q, adapted_query, p_d, adapted_documents, scores.astype(np.float32, copy=False))

    def blended(self, raw: FloatMatrix, adapted: FloatMatrix, blend: float | None = None) -> FloatMatrix:
        """``(1 - λ)·raw + λ·adapted`` (λ = `self.blend` unless given); with λ = 0 exactly `raw`."""
        lam = self.blend if blend is None else blend
        if lam == 0.0:
            return np.asarray(raw, dtype=np.float32).copy()
        return ((1.0 - lam) * np.asarray(raw, np.float32) + lam * np.asarray(adapted, np.float32)).astype(np.float32)

    def unmodulated(self, projected: FloatMatrix) -> FloatMatrix:
        """``LN(½ p)`` row-wise for (n, d) projected vectors: the adapter's output with scale sigmoid(0), no shift."""
        return self._layer_norm(0.5 * np.atleast_2d(projected), self._numpy_weights())

    def _layer_norm(self, x: FloatMatrix, weights: dict[str, FloatMatrix]) -> FloatMatrix:
        out = np.array(x, dtype=np.float32)
        self._layer_norm_inplace(out, weights)
        return out

    def _layer_norm_inplace(self, x: FloatMatrix, weights: dict[str, FloatMatrix]) -> None:
        """LayerNorm over the last axis of a float32 (n, d) array, in place (no temporaries of its size)."""
        d = x.shape[-1]
        x -= (x.sum(axis=-1, dtype=np.float32) / d)[:, None]
        inverse = 1.0 / np.sqrt(np.einsum("ij,ij->i", x, x) / d + self.norm.eps)
        x *= inverse.astype(np.float32, copy=False)[:, None]
        x *= weights["ln_w"]
        x += weights["ln_b"]

    def _numpy_weights(self) -> dict[str, FloatMatrix]:
        """The weights as float32 numpy arrays; cached until the module is trained again."""
        cached: dict[str, FloatMatrix] | None = getattr(self, "_numpy_cache", None)
        if cached is not None and not self.training:
            return cached
        query_first, query_last = cast(nn.Linear, self.query_adapter[0]), cast(nn.Linear, self.query_adapter[2])
        doc_first, doc_last = cast(nn.Linear, self.document_adapter[0]), cast(nn.Linear, self.document_adapter[2])
        # the last layers' outputs are negated (scale half) and doubled (shift half) so that one logistic
        # 1 / (1 + exp(z')) gives sigmoid(z) for the scale and (tanh(z) + 1) / 2 for the shift
        fold = np.concatenate([np.full(self.dimension, -1.0), np.full(self.dimension, -2.0)]).astype(np.float32)
        weights: dict[str, FloatMatrix] = {
            "W": _array(self.projection.weight),
            "W_t": np.ascontiguousarray(_array(self.projection.weight).T),
            "b": _array(self.projection.bias),
            "ln_w": _array(self.norm.weight),
            "ln_b": _array(self.norm.bias),
            "q_first_w": np.ascontiguousarray(_array(query_first.weight).T),
            "q_first_b": _array(query_first.bias),
            "d_first_w": np.ascontiguousarray(_array(doc_first.weight).T),
            "d_first_b": _array(doc_first.bias),
            "q_last_w": np.ascontiguousarray(_array(query_last.weight).T * fold),
            "q_last_b": _array(query_last.bias) * fold,
            "d_last_w": np.ascontiguousarray(_array(doc_last.weight).T * fold),
            "d_last_b": _array(doc_last.bias) * fold,
        }
        if not self.training:
            object.__setattr__(self, "_numpy_cache", weights)
        return weights

    def train(self, mode: bool = True) -> Self:
        object.__setattr__(self, "_numpy_cache", None)  # weights may change: rebuild the serving copy
        return super().train(mode)


def _array(tensor: torch.Tensor) -> FloatMatrix:
    return np.ascontiguousarray(tensor.detach().cpu().numpy(), dtype=np.float32)


def _scale_shift(
    folded: FloatMatrix, dimension: int, average: FloatMatrix | None = None
) -> tuple[FloatMatrix, FloatMatrix]:
    """(scale, shift) from a last layer's folded output z' (see `_numpy_weights`): ``g = 1 / (1 + exp(z'))`` is
    sigmoid(z) on the first `dimension` entries and (tanh(z) + 1) / 2 on the rest. With `average` (n,) weights
    over the rows of an (n, 2d) `folded`, the weighted averages of scale and shift (linear in g, so g is
    averaged first, in one product)."""
    with np.errstate(over="ignore"):  # exp overflows to inf for saturated units: 1 / (1 + inf) = 0, exactly right
        logistic = np.exp(folded, out=folded)
    logistic += 1.0
    np.reciprocal(logistic, out=logistic)
    if average is not None:
        logistic = average @ logistic
    scale = cast(FloatMatrix, logistic[..., :dimension])
    shift = cast(FloatMatrix, logistic[..., dimension:] * np.float32(2.0))
    shift -= np.float32(1.0)
    return scale, shift
