"""Adapters over frozen encoder embeddings (Cosine Adapter, IMRNN): torch modules with self-describing artifacts."""

from adapters.base import ARTIFACT_FORMAT, Adapter, EncoderSignature
from adapters.calibration import (
    SetScores,
    average_precision,
    choose_threshold,
    choose_top_k,
    expected_calibration_error,
    keep_mask,
    precision_at_recall,
    reliability_table,
    set_scores,
    top_k_mask,
)
from adapters.cosine import FAMILIES, CosineAdapter, score_list_features
from adapters.cosine_training import CandidateLists, CosineTrainingConfig, fit_cosine_adapter, predict
from adapters.errors import AdapterArtifactError, AdapterError

__all__ = [
    "ARTIFACT_FORMAT",
    "FAMILIES",
    "Adapter",
    "AdapterArtifactError",
    "AdapterError",
    "CandidateLists",
    "CosineAdapter",
    "CosineTrainingConfig",
    "EncoderSignature",
    "SetScores",
    "average_precision",
    "choose_threshold",
    "choose_top_k",
    "expected_calibration_error",
    "fit_cosine_adapter",
    "keep_mask",
    "precision_at_recall",
    "predict",
    "reliability_table",
    "score_list_features",
    "set_scores",
    "top_k_mask",
]
