"""A small typed Python client for the Glassbox REST API, sync and async (httpx).

>>> from glassbox_client import GlassboxClient
>>> GlassboxClient("http://127.0.0.1:8000").close()
"""

from glassbox_client._client import AsyncGlassboxClient, GlassboxClient
from glassbox_client._models import (
    ContextPassage,
    ContextResponse,
    Exposure,
    GlassboxAPIError,
    SearchResponse,
    SearchResult,
)

__all__ = [
    "AsyncGlassboxClient",
    "ContextPassage",
    "ContextResponse",
    "Exposure",
    "GlassboxAPIError",
    "GlassboxClient",
    "SearchResponse",
    "SearchResult",
]
