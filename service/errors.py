"""Exceptions raised by the service layer. HTTP status mapping lives in one place: `service.api.errors`.

GlassboxError
├── InvalidRequestError      a request value outside its limits (names the field and the value)
├── CollectionNotFoundError  no collection of that name
├── CollectionExistsError    a collection of that name already exists
├── DocumentNotFoundError    no document of that id in the collection
├── ExperimentNotFoundError  no experiment of that id
├── ExperimentExistsError    an experiment of that id already exists
├── EncoderError             the encoder cannot be loaded
├── EncoderMismatchError     a collection was built with another encoder than the one serving
├── DatasetError             a dataset path, file or download that cannot be used
├── ConfigurationError       a setting or stored artifact the service cannot use as configured
├── UnauthorizedError        no API key, or one that matches no configured key
├── ForbiddenError           a valid key without the scope a collection needs (names both)
├── PayloadTooLargeError     a request body over GLASSBOX_LIMITS__MAX_BODY_BYTES
└── RequestTimeoutError      a request that ran past GLASSBOX_LIMITS__REQUEST_TIMEOUT_S
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


class ExperimentNotFoundError(GlassboxError):
    code = "experiment_not_found"

    def __init__(self, experiment: str) -> None:
        super().__init__(f"experiment {experiment!r} does not exist", {"experiment": experiment})


class ExperimentExistsError(GlassboxError):
    code = "experiment_exists"

    def __init__(self, experiment: str) -> None:
        super().__init__(f"experiment {experiment!r} already exists", {"experiment": experiment})


class EncoderError(GlassboxError):
    code = "encoder_error"


class EncoderMismatchError(GlassboxError):
    code = "encoder_mismatch"


class DatasetError(GlassboxError):
    code = "dataset_error"


class ConfigurationError(GlassboxError):
    code = "configuration_error"


class UnauthorizedError(GlassboxError):
    """No API key, or an unknown one. The message never repeats the key."""

    code = "unauthorized"


class ForbiddenError(GlassboxError):
    """A known key without the scope an action needs on a collection."""

    code = "forbidden"

    def __init__(self, key_name: str, scope: str, collection: str) -> None:
        super().__init__(
            f"API key {key_name!r} lacks the {scope} scope for collection {collection!r}",
            {"key": key_name, "scope": scope, "collection": collection},
        )


class PayloadTooLargeError(GlassboxError):
    code = "payload_too_large"

    def __init__(self, limit: int, size: int | None = None) -> None:
        body = "request body" if size is None else f"request body of {size} bytes"
        super().__init__(
            f"{body} is over the limit of {limit} bytes (GLASSBOX_LIMITS__MAX_BODY_BYTES)",
            {"limit": limit, "size": size},
        )


class RequestTimeoutError(GlassboxError):
    """The request ran out of time; work already started finishes in the background."""

    code = "timeout"

    def __init__(self, limit: float) -> None:
        super().__init__(
            f"request took longer than {limit:g} s (GLASSBOX_LIMITS__REQUEST_TIMEOUT_S); work already started "
            "may still complete, and retrying an upsert or delete is safe",
            {"limit_s": limit},
        )


def _clip(value: Any, limit: int = 80) -> str:
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"
