"""Exceptions raised by the service layer. HTTP status mapping lives in one place: `service.api.errors`.

GlassboxError
├── InvalidRequestError      a request value outside its limits (names the field and the value)
├── CollectionNotFoundError  no collection of that name
├── CollectionExistsError    a collection of that name already exists
├── DocumentNotFoundError    no document of that id in the collection
├── EncoderError             the encoder cannot be loaded
├── EncoderMismatchError     a collection was built with another encoder than the one serving
├── DatasetError             a dataset path, file or download that cannot be used
└── ConfigurationError       a setting or stored artifact the service cannot use as configured
"""

from __future__ import annotations

from typing import Any


class GlassboxError(Exception):
    """Base of the service's errors: a stable machine-readable `code`, a message and JSON-able details."""

    code = "glassbox_error"

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequestError(GlassboxError):
    """A request value outside its limits."""

    code = "invalid_request"

    def __init__(self, field: str, value: Any, reason: str) -> None:
        shown = value if isinstance(value, int | float | bool) or value is None else _clip(value)
        super().__init__(f"{field}: {reason} (got {shown!r})", {"field": field, "value": shown})


class CollectionNotFoundError(GlassboxError):
    code = "collection_not_found"

    def __init__(self, name: str) -> None:
        super().__init__(f"collection {name!r} does not exist", {"collection": name})


class CollectionExistsError(GlassboxError):
    code = "collection_exists"

    def __init__(self, name: str) -> None:
        super().__init__(f"collection {name!r} already exists", {"collection": name})


class DocumentNotFoundError(GlassboxError):
    code = "document_not_found"

    def __init__(self, collection: str, doc_id: str) -> None:
        super().__init__(
            f"document {doc_id!r} does not exist in collection {collection!r}",
            {"collection": collection, "id": doc_id},
        )


class EncoderError(GlassboxError):
    code = "encoder_error"


class EncoderMismatchError(GlassboxError):
    code = "encoder_mismatch"


class DatasetError(GlassboxError):
    code = "dataset_error"


class ConfigurationError(GlassboxError):
    code = "configuration_error"


def _clip(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
