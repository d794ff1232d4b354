"""Log lines as JSON objects (or plain text), each carrying the id of the request it was logged under.

The request id lives in a context variable: the HTTP middleware sets it per request, and FastAPI's thread pool
copies the context into the thread that runs a sync route, so records logged anywhere below a request carry it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Literal

# The request being served in this context (None outside a request). A ContextVar, not shared state: every
# request's task (and the worker threads it runs in) sees its own value.
request_id_var: ContextVar[str | None] = ContextVar("glassbox_request_id", default=None)

LogFormat = Literal["json", "text"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Attributes every LogRecord has; anything else on a record came in through `extra=` and is logged as a field
# (except uvicorn's `color_message`, the same message with terminal colour codes).
_RECORD_ATTRIBUTES = frozenset(
    [*logging.LogRecord("", 0, "", 0, "", None, None).__dict__, "message", "asctime", "request_id", "color_message"]
)


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. 2026-11-25T01:02:03.456Z.

    >>> _timestamp(0.5)
    '1970-01-01T00:00:00.500Z'
    """
    seconds = int(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((created - seconds) * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, request_id, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id_var.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """The plain-text line (`TEXT_FORMAT`), with ` [request_id]` after the logger name inside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or request_id_var.get()
        if request_id is None:
            return text
        prefix = f"{record.name}: "
        return text.replace(prefix, f"{record.name} [{request_id}]: ", 1)


FORMATTERS: dict[str, type[logging.Formatter]] = {"json": JsonFormatter, "text": TextFormatter}


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Send every logger's records to stderr in `log_format`, at `level` (replaces the root logger's handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(FORMATTERS[log_format]())
    logging.basicConfig(level=level, handlers=[handler], force=True)
