"""Adapters over frozen encoder embeddings (Cosine Adapter, IMRNN): torch modules with self-describing artifacts."""

from adapters.base import ARTIFACT_FORMAT, Adapter, EncoderSignature
from adapters.calibration import (
    SetScores,
    average_precision,
    best_prefix_cut,
    choose_threshold,
    choose_top_k,
    expected_calibration_error,
    keep_mask,
    precision_at_recall,
    reliability_table,
    set_scores,
    top_k_mask,
)
from adapters.cosine import ARM_FEATURES, FAMILIES, CosineAdapter, arm_features, score_list_features
from adapters.cosine_training import CandidateLists, CosineTrainingConfig, fit_cosine_adapter, predict
from adapters.errors import AdapterArtifactError, AdapterError
from adapters.imrnn import ImrnnAdapter, Modulation
from adapters.imrnn_explain import ShiftExplainer, TokenShift, TokenVocabulary, is_word_token, word_tokens
from adapters.imrnn_training import (
    ImrnnTrainingConfig,
    RankingLists,
    adapted_scores,
    blend_curve,
    choose_blend,
    fit_imrnn,
    improvement_margin_loss,
    iterate_retrieval,
    ndcg_at_10,
)

__all__ = [
    "ARM_FEATURES",
    "ARTIFACT_FORMAT",
    "FAMILIES",
    "Adapter",
    "AdapterArtifactError",
    "AdapterError",
    "CandidateLists",
    "CosineAdapter",
    "CosineTrainingConfig",
    "EncoderSignature",
    "ImrnnAdapter",
    "ImrnnTrainingConfig",
    "Modulation",
    "RankingLists",
    "SetScores",
    "ShiftExplainer",
    "TokenShift",
    "TokenVocabulary",
    "adapted_scores",
    "arm_features",
    "average_precision",
    "best_prefix_cut",
    "blend_curve",
    "choose_blend",
    "choose_threshold",
    "choose_top_k",
    "expected_calibration_error",
    "fit_cosine_adapter",
    "fit_imrnn",
    "improvement_margin_loss",
    "is_word_token",
    "iterate_retrieval",
    "keep_mask",
    "ndcg_at_10",
    "precision_at_recall",
    "predict",
    "reliability_table",
    "score_list_features",
    "set_scores",
    "top_k_mask",
    "word_tokens",
]
