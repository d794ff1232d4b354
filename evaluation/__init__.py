"""Offline evaluation harness on BEIR-format data: variants side by side, ranx metrics, paired tests, plots."""

from evaluation.beir import BeirDataset, Split, read_qrels, read_queries, split_dev_from_train
from evaluation.errors import DatasetFormatError, EvaluationError, VariantError
from evaluation.harness import EvaluationConfig, EvaluationResult, run_evaluation
from evaluation.metrics import METRICS, Comparison, VariantScores, compare_to_baseline, score_ranking
from evaluation.report import markdown_table, write_outputs
from evaluation.variants import BASELINE, Variant, build_variants

__all__ = [
    "BASELINE",
    "METRICS",
    "BeirDataset",
    "Comparison",
    "DatasetFormatError",
    "EvaluationConfig",
    "EvaluationError",
    "EvaluationResult",
    "Split",
    "Variant",
    "VariantError",
    "VariantScores",
    "build_variants",
    "compare_to_baseline",
    "markdown_table",
    "read_qrels",
    "read_queries",
    "run_evaluation",
    "score_ranking",
    "split_dev_from_train",
    "write_outputs",
]
