"""Whole search responses in the cache, under keys that change whenever the answer could.

A key carries a format version, the collection's name and identity (its `created_at`, so a deleted and recreated
collection never hits old entries), the pipeline's fingerprint (variant, encoder revision, every stage's artifact
version), the settings that change results, and a hash of the canonical request body. The value is the response's
JSON bytes tagged with the collection's generation when it was computed: writes start a new generation, and a
lookup (one round trip: generation and entries together) serves an entry only under the current one. The
generation is read before the response is computed and stored with it, so a write racing a search leaves an entry
that is never served. Hits are served back as the stored bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from indexes import Collection
from service.cache import Cache
from service.settings import Settings

KEY_VERSION = "v1"
CACHE_HEADER = "X-Glassbox-Cache"
# settings sections that change what a search returns (the cache's own, auth, logging and batching do not)
RESULT_SETTINGS = {"encoder", "index", "search", "filter", "first_stage", "lexical", "pipeline", "kg", "imrnn"}
CacheState = Literal["hit", "miss", "bypass"]


def settings_fingerprint(settings: Settings) -> str:
    """A hash of the settings sections that change results (`RESULT_SETTINGS`)."""
    text = json.dumps(settings.model_dump(mode="json", include=RESULT_SETTINGS), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def canonical_body(body: Mapping[str, Any]) -> str:
    """One text per request meaning: keys sorted, no spaces (callers pass the validated body, defaults filled).

    >>> canonical_body({"top_k": 10, "query": "aspirin", "filter": {"b": 1, "a": 2}})
    '{"filter":{"a":2,"b":1},"query":"aspirin","top_k":10}'
    """
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class Lookup:
    """One request's cache lookup: its key and the collection generation it was read under (both None when the
    cache is bypassed), and the cached bytes on a hit."""

    key: str | None
    generation: str | None = None
    cached: bytes | None = None

    @property
    def state(self) -> CacheState:
        if self.key is None:
            return "bypass"
        return "miss" if self.cached is None else "hit"


class ResponseCache:
    """Looks up and stores search responses (JSON bytes) in a `Cache`.

    Args:
        cache: where entries and generations live.
        settings: the serving settings (`cache.responses` off: every lookup bypasses; the result-changing sections
            go into every key).
    """

    def __init__(self, cache: Cache, settings: Settings) -> None:
        self._cache = cache
        self._enabled = settings.cache.enabled and settings.cache.responses
        self._prefix = f"{settings.cache.key_prefix}:resp:{KEY_VERSION}"
        self._settings = settings_fingerprint(settings)

    @property
    def cache(self) -> Cache:
        return self._cache

    def key(self, collection: Collection, pipeline: str, body: Mapping[str, Any]) -> str:
        """The key of one request body's response against `collection` under a pipeline fingerprint."""
        identity = "\0".join([collection.config.created_at, pipeline, self._settings, canonical_body(body)])
        return f"{self._prefix}:{collection.name}:{hashlib.sha256(identity.encode()).hexdigest()}"

    def lookup(self, collection: Collection, pipeline: str, body: Mapping[str, Any]) -> Lookup:
        """The cached response of `body` against `collection` (by pipeline fingerprint), or a miss to store."""
        return self.lookup_many(collection, pipeline, [body])[0]

    async def alookup(self, collection: Collection, pipeline: str, body: Mapping[str, Any]) -> Lookup:
        """`lookup` on the event loop, without blocking it (the search routes' path for hits)."""
        return (await self.alookup_many(collection, pipeline, [body]))[0]

    async def alookup_many(
        self, collection: Collection, pipeline: str, bodies: Sequence[Mapping[str, Any]]
    ) -> list[Lookup]:
        """`lookup_many` on the event loop, without blocking it."""
        if not self._enabled:
            return [Lookup(None) for _ in bodies]
        keys = [self.key(collection, pipeline, body) for body in bodies]
        generation, found = await self._cache.aget_responses(collection.name, keys)
        return self._lookups(keys, generation, found)

    def lookup_many(self, collection: Collection, pipeline: str, bodies: Sequence[Mapping[str, Any]]) -> list[Lookup]:
        """`lookup` for several request bodies, in one round trip to the cache."""
        if not self._enabled:
            return [Lookup(None) for _ in bodies]
        keys = [self.key(collection, pipeline, body) for body in bodies]
        generation, found = self._cache.get_responses(collection.name, keys)
        return self._lookups(keys, generation, found)

    @staticmethod
    def _lookups(keys: Sequence[str], generation: str | None, found: Sequence[bytes | None]) -> list[Lookup]:
        if generation is None:  # the cache is bypassed
            return [Lookup(None) for _ in keys]
        return [Lookup(key, generation, value) for key, value in zip(keys, found, strict=True)]

    def store(self, lookups: Sequence[Lookup], contents: Sequence[bytes]) -> None:
        """Store each computed response under its lookup's key and generation (bypassed lookups store nothing)."""
        by_generation: dict[str, dict[str, bytes]] = {}
        for lookup, content in zip(lookups, contents, strict=True):
            if lookup.key is not None and lookup.generation is not None:
                by_generation.setdefault(lookup.generation, {})[lookup.key] = content
        for generation, items in by_generation.items():
            self._cache.set_responses(generation, items)
