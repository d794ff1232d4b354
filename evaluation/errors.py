"""Exceptions raised by the evaluation harness.

EvaluationError
├── DatasetFormatError    a BEIR directory, query or qrels file that does not parse (names file and line)
└── VariantError          an unknown variant, or one whose stage is not available
"""

from __future__ import annotations

from service.errors import GlassboxError


class EvaluationError(GlassboxError):
    code = "evaluation_error"


class DatasetFormatError(EvaluationError):
    code = "dataset_format_error"


class VariantError(EvaluationError):
    code = "unknown_variant"
