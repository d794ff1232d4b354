"""The cache behind query embeddings and search responses: Redis when GLASSBOX_REDIS_URL is set, else in-process.

Every backend holds bytes under string keys with a TTL, counts hits and misses per kind ("response",
"embedding"), and keeps one *generation* per collection that writes change (`invalidate`). A response is stored
tagged with the generation it was computed under and is served only while that is still the collection's
generation, so a write invalidates every response computed before it; a lookup reads the generation and the
responses in one round trip (one MGET). A Redis that fails never fails a search: the cache goes "down" (logged
once), every call bypasses it (get: miss, set: no-op, generation: None) and it is tried again every
`retry_seconds`. Invalidations missed while it is down are applied before it serves anything again.

`aget_responses` is the lookup for the event loop (the search route's fast path for hits): in-process backends
answer at once, Redis through an asyncio client on the serving loop, so a hit never waits for a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import redis
from redis import asyncio as redis_asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from indexes import FloatArray
from service.embedding_cache import cache_key
from service.encoder import Encoder, EncoderIdentity
from service.settings import Settings

logger = logging.getLogger(__name__)

CacheKind = Literal["response", "embedding"]
CacheStatus = Literal["ok", "down"]
KINDS: tuple[CacheKind, ...] = ("response", "embedding")
_T = TypeVar("_T")


class Cache(Protocol):
    """Bytes under string keys with a TTL, per-collection generations, and counters (read by /metrics)."""

    @property
    def backend(self) -> str:
        """The backend: redis, memory, or none (caching disabled)."""

    def status(self) -> CacheStatus:
        """ok, or down while Redis is unreachable (searches then bypass the cache)."""

    def stats(self) -> dict[str, Any]:
        """``{"response": {"hits", "misses"}, "embedding": {"hits", "misses"}, "errors": n}``."""

    def get(self, kind: CacheKind, key: str) -> bytes | None: ...

    def get_many(self, kind: CacheKind, keys: Sequence[str]) -> list[bytes | None]:
        """The values of `keys` in order, None where missing, expired, or the cache is bypassed."""

    def set(self, key: str, value: bytes) -> None: ...

    def set_many(self, items: Mapping[str, bytes]) -> None:
        """Store values under the cache's TTL; a no-op while bypassed."""

    def get_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        """The collection's current generation and, per key, the response stored under that generation (None:
        a miss); ``(None, [None, ...])`` while the cache is bypassed (then store nothing)."""

    async def aget_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        """`get_responses` for the event loop: the same answer, without blocking the loop."""

    def set_responses(self, generation: str, items: Mapping[str, bytes]) -> None:
        """Store responses computed under `generation` (as `get_responses` returned it)."""

    def generation(self, collection: str) -> str | None:
        """The collection's current generation; None while the cache is bypassed."""

    def invalidate(self, collection: str) -> None:
        """Start a new generation of `collection` (after every write to it); never raises."""

    def close(self) -> None: ...

    async def aclose(self) -> None:
        """Release what `aget_responses` opened on the running loop (call before `close`, on the same loop)."""


def tag(generation: str, value: bytes) -> bytes:
    """`value` as stored for a collection generation.

    >>> untag("7", tag("7", b'{"results": []}')), untag("8", tag("7", b"{}"))
    (b'{"results": []}', None)
    """
    return generation.encode() + b"\0" + value


def untag(generation: str, stored: bytes | None) -> bytes | None:
    """The value of a stored entry when it was stored under `generation`, else None (a write came since)."""
    prefix = generation.encode() + b"\0"
    if stored is None or not stored.startswith(prefix):
        return None
    return stored[len(prefix) :]


class _Counters:
    """Hits and misses per kind, and backend errors; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {kind: [0, 0] for kind in KINDS}
        self._errors = 0

    def record(self, kind: CacheKind, hits: int, misses: int) -> None:
        with self._lock:
            self._counts[kind][0] += hits
            self._counts[kind][1] += misses

    def record_found(self, kind: CacheKind, values: Sequence[bytes | None]) -> None:
        """Count a lookup's values: each one found is a hit, each None a miss."""
        hits = sum(value is not None for value in values)
        self.record(kind, hits, len(values) - hits)

    def error(self) -> None:
        with self._lock:
            self._errors += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            counts: dict[str, Any] = {kind: {"hits": h, "misses": m} for kind, (h, m) in self._counts.items()}
            counts["errors"] = self._errors
            return counts


class NullCache:
    """Caching disabled: every lookup misses uncounted, nothing is stored, generations are None (bypass)."""

    backend = "none"

    def __init__(self) -> None:
        self._counters = _Counters()

    def status(self) -> CacheStatus:
        return "ok"

    def stats(self) -> dict[str, Any]:
        return self._counters.snapshot()

    def get(self, kind: CacheKind, key: str) -> bytes | None:
        return None

    def get_many(self, kind: CacheKind, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    def set(self, key: str, value: bytes) -> None:
        return None

    def set_many(self, items: Mapping[str, bytes]) -> None:
        return None

    def get_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        return None, [None] * len(keys)

    async def aget_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        return None, [None] * len(keys)

    def set_responses(self, generation: str, items: Mapping[str, bytes]) -> None:
        return None

    def generation(self, collection: str) -> str | None:
        return None

    def invalidate(self, collection: str) -> None:
        return None

    def close(self) -> None:
        return None

    async def aclose(self) -> None:
        return None


class MemoryCache:
    """An in-process LRU: at most `max_entries` values, each expiring `ttl_seconds` after it was stored.

    Args:
        max_entries: values kept; storing one more evicts the least recently used.
        ttl_seconds: lifetime of a value.
        clock: seconds, monotonic (a test seam; defaults to `time.monotonic`).

    >>> cache = MemoryCache(max_entries=2, ttl_seconds=60)
    >>> cache.set_many({"a": b"1", "b": b"2"})
    >>> cache.get("response", "a"), cache.get("response", "c")
    (b'1', None)
    >>> cache.set("c", b"3")  # evicts "b", the least recently used
    >>> cache.get_many("embedding", ["a", "b", "c"])
    [b'1', None, b'3']
    >>> cache.stats()["response"], cache.stats()["embedding"]
    ({'hits': 1, 'misses': 1}, {'hits': 2, 'misses': 1})
    """

    backend = "memory"

    def __init__(self, max_entries: int, ttl_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max_entries = max_entries
        self._ttl = ttl_seconds
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, bytes]] = OrderedDict()  # key -> (expires at, value)
        self._generations: dict[str, int] = {}
        self._lock = threading.Lock()
        self._counters = _Counters()

    def __len__(self) -> int:
        return len(self._entries)

    def status(self) -> CacheStatus:
        return "ok"

    def stats(self) -> dict[str, Any]:
        return self._counters.snapshot()

    def get(self, kind: CacheKind, key: str) -> bytes | None:
        return self.get_many(kind, [key])[0]

    def get_many(self, kind: CacheKind, keys: Sequence[str]) -> list[bytes | None]:
        values = self._get(keys)
        self._counters.record_found(kind, values)
        return values

    def _get(self, keys: Sequence[str]) -> list[bytes | None]:
        now = self._clock()
        values: list[bytes | None] = []
        with self._lock:
            for key in keys:
                entry = self._entries.get(key)
                if entry is not None and entry[0] <= now:
                    del self._entries[key]
                    entry = None
                if entry is not None:
                    self._entries.move_to_end(key)
                values.append(None if entry is None else entry[1])
        return values

    def set(self, key: str, value: bytes) -> None:
        self.set_many({key: value})

    def set_many(self, items: Mapping[str, bytes]) -> None:
        expires = self._clock() + self._ttl
        with self._lock:
            for key, value in items.items():
                self._entries[key] = (expires, value)
                self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def get_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        with self._lock:
            generation = str(self._generations.get(collection, 0))
        values = [untag(generation, stored) for stored in self._get(keys)]
        self._counters.record_found("response", values)
        return generation, values

    async def aget_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        return self.get_responses(collection, keys)  # in-process: the lock is held for dictionary lookups only

    def set_responses(self, generation: str, items: Mapping[str, bytes]) -> None:
        self.set_many({key: tag(generation, value) for key, value in items.items()})

    def generation(self, collection: str) -> str | None:
        with self._lock:
            return str(self._generations.get(collection, 0))

    def invalidate(self, collection: str) -> None:
        with self._lock:
            self._generations[collection] = self._generations.get(collection, 0) + 1

    def close(self) -> None:
        with self._lock:
            self._entries.clear()

    async def aclose(self) -> None:
        return None


def masked_url(url: str) -> str:
    """`url` with its password replaced by ``***`` (for logs).

    >>> masked_url("redis://user:secret@cache:6379/0")
    'redis://user:***@cache:6379/0'
    >>> masked_url("redis://:secret@cache:6379")
    'redis://:***@cache:6379'
    >>> masked_url("redis://cache:6379/0?password=secret")
    'redis://cache:6379/0?password=***'
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rsplit('@', 1)[1]}"
    query = re.sub(r"(?i)(password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


class _UnavailableError(Exception):
    """Redis is down (or just failed): the caller bypasses the cache."""


class RedisCache:
    """The cache in Redis, with short timeouts, no client retries, and a bypass while Redis is unreachable.

    Keys are ``{prefix}:...``; generations live under ``{prefix}:gen:{collection}`` as random tokens (a new one
    per write), so a Redis that restarts empty never repeats a generation an old entry was stored under.

    Args:
        url: redis://[[user]:password@]host:port/db (or rediss://, unix://).
        ttl_seconds: lifetime of a stored value.
        timeout_ms: connect and read timeout; a slower Redis counts as down.
        retry_seconds: while down, how often one caller tries it again (the others bypass meanwhile).
        prefix: the key prefix.
        clock: seconds, monotonic (a test seam).
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        ttl_seconds: int,
        timeout_ms: int = 250,
        retry_seconds: float = 2.0,
        prefix: str = "glassbox",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        timeout = timeout_ms / 1000.0
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._url, self._timeout = url, timeout
        self._async: tuple[asyncio.AbstractEventLoop, redis_asyncio.Redis] | None = None  # made on first use
        self._shown_url = masked_url(url)
        self._ttl = ttl_seconds
        self._retry = retry_seconds
        self._prefix = prefix
        self._clock = clock
        self._lock = threading.Lock()  # guards the state below; never held across a Redis call
        self._probe = threading.Lock()  # one caller at a time tries a down Redis again
        self._down_since: float | None = None
        self._next_try = 0.0
        self._last_ok = clock()
        self._pending: set[str] = set()  # collections whose invalidation failed: applied before serving again
        self._counters = _Counters()

    @property
    def url(self) -> str:
        """The Redis URL, password masked."""
        return self._shown_url

    def status(self) -> CacheStatus:
        """ok or down; tries Redis (within its timeout) when it is due for a retry or has been idle."""
        with self._lock:
            down = self._down_since is not None
            idle = self._clock() - self._last_ok > self._retry
        if down:
            return "ok" if self._recover() else "down"
        if idle:
            try:
                self._execute(lambda client: client.ping())
            except _UnavailableError:
                return "down"
        return "ok"

    def stats(self) -> dict[str, Any]:
        return self._counters.snapshot()

    def get(self, kind: CacheKind, key: str) -> bytes | None:
        return self.get_many(kind, [key])[0]

    def get_many(self, kind: CacheKind, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        try:
            raw = self._execute(lambda client: client.mget(list(keys)))
        except _UnavailableError:
            self._counters.record(kind, 0, len(keys))
            return [None] * len(keys)
        values: list[bytes | None] = [value if isinstance(value, bytes) else None for value in raw]
        self._counters.record_found(kind, values)
        return values

    def set(self, key: str, value: bytes) -> None:
        self.set_many({key: value})

    def set_many(self, items: Mapping[str, bytes]) -> None:
        if not items:
            return

        def store(client: redis.Redis) -> None:
            pipe = client.pipeline(transaction=False)
            for key, value in items.items():
                pipe.set(key, value, ex=self._ttl)
            pipe.execute()

        try:
            self._execute(store)
        except _UnavailableError:
            return

    def get_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        generation_key = self._generation_key(collection)
        try:
            raw = self._execute(lambda client: client.mget([generation_key, *keys]))
        except _UnavailableError:
            return None, [None] * len(keys)
        if not isinstance(raw[0], bytes):  # first use, or Redis restarted empty: start a generation
            return self._counted(self.generation(collection), [None] * len(keys))  # nothing is stored under it yet
        return self._responses(raw)

    async def aget_responses(self, collection: str, keys: Sequence[str]) -> tuple[str | None, list[bytes | None]]:
        """One MGET through an asyncio client on the running loop. While Redis is down, on a generation's first
        use, or from a loop other than the first one, the sync path answers in a worker thread (it also runs the
        recovery, which applies missed invalidations before anything is served)."""
        client = self._async_client()
        with self._lock:
            down = self._down_since is not None
        if client is None or down:
            return await asyncio.to_thread(self.get_responses, collection, keys)
        try:
            raw = await client.mget([self._generation_key(collection), *keys])
        except (redis.RedisError, OSError) as exc:
            self._fail(exc, None)
            return None, [None] * len(keys)
        with self._lock:
            self._last_ok = self._clock()
        if not isinstance(raw[0], bytes):
            return await asyncio.to_thread(self.get_responses, collection, keys)
        return self._responses(raw)

    def _responses(self, raw: Sequence[object]) -> tuple[str | None, list[bytes | None]]:
        """A generation token and the responses tagged with it, from an MGET of [generation key, *keys]."""
        assert isinstance(raw[0], bytes)
        generation = raw[0].decode()
        return self._counted(generation, [untag(generation, v if isinstance(v, bytes) else None) for v in raw[1:]])

    def _counted(self, generation: str | None, values: list[bytes | None]) -> tuple[str | None, list[bytes | None]]:
        self._counters.record_found("response", values)
        return generation, values

    def _async_client(self) -> redis_asyncio.Redis | None:
        """The asyncio client of the running loop: made on the first call; None on any other loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._async is None:
                client = redis_asyncio.Redis.from_url(
                    self._url,
                    socket_timeout=self._timeout,
                    socket_connect_timeout=self._timeout,
                    retry=AsyncRetry(NoBackoff(), 0),
                )
                self._async = (loop, client)
            return self._async[1] if self._async[0] is loop else None

    def set_responses(self, generation: str, items: Mapping[str, bytes]) -> None:
        self.set_many({key: tag(generation, value) for key, value in items.items()})

    def generation(self, collection: str) -> str | None:
        key = self._generation_key(collection)

        def read(client: redis.Redis) -> str:
            token = client.get(key)
            if token is None:  # first use, or Redis restarted empty: start a generation no entry was stored under
                client.set(key, secrets.token_hex(8), nx=True)
                token = client.get(key)
            return token.decode() if isinstance(token, bytes) else str(token)

        try:
            return self._execute(read)
        except _UnavailableError:
            return None

    def invalidate(self, collection: str) -> None:
        key = self._generation_key(collection)
        try:
            self._execute(lambda client: client.set(key, secrets.token_hex(8)), pending=collection)
        except _UnavailableError:
            return  # remembered in _pending; applied before the cache serves again

    def close(self) -> None:
        self._client.close()

    async def aclose(self) -> None:
        with self._lock:
            made, self._async = self._async, None
        if made is not None and made[0] is asyncio.get_running_loop():
            await made[1].aclose()

    def _generation_key(self, collection: str) -> str:
        return f"{self._prefix}:gen:{collection}"

    def _execute(self, operation: Callable[[redis.Redis], _T], pending: str | None = None) -> _T:
        """Run `operation` on Redis unless it is down; `pending` names a collection to invalidate on recovery
        should this call not reach Redis.

        Raises:
            _UnavailableError: Redis is down, or failed now (it is then marked down).
        """
        with self._lock:
            down = self._down_since is not None
            if down and pending is not None:
                self._pending.add(pending)  # recovery applies it before marking Redis up
        if down and not self._recover():
            raise _UnavailableError
        try:
            result = operation(self._client)
        except (redis.RedisError, OSError) as exc:
            self._fail(exc, pending)
            raise _UnavailableError from exc
        with self._lock:
            self._last_ok = self._clock()
        return result

    def _fail(self, exc: Exception, pending: str | None) -> None:
        self._counters.error()
        with self._lock:
            if pending is not None:
                self._pending.add(pending)
            if self._down_since is not None:
                return
            now = self._clock()
            self._down_since, self._next_try = now, now + self._retry
        logger.warning(
            "cache: Redis at %s is unreachable (%s: %s); searches bypass the cache, retrying every %.1f s",
            self._shown_url,
            type(exc).__name__,
            exc,
            self._retry,
        )

    def _recover(self) -> bool:
        """Try a down Redis again when due: ping, apply pending invalidations, then mark it up. True when up."""
        if not self._probe.acquire(blocking=False):
            return False  # another caller is trying right now; bypass meanwhile
        try:
            with self._lock:
                if self._down_since is None:
                    return True
                if self._clock() < self._next_try:
                    return False
                self._next_try = self._clock() + self._retry
                down_since = self._down_since
            try:
                self._client.ping()
                while True:
                    with self._lock:
                        pending = set(self._pending)
                        if not pending:
                            self._down_since, self._last_ok = None, self._clock()
                            break
                    for collection in sorted(pending):
                        self._client.set(self._generation_key(collection), secrets.token_hex(8))
                    with self._lock:
                        self._pending -= pending
            except (redis.RedisError, OSError):
                self._counters.error()
                return False
        finally:
            self._probe.release()
        logger.warning(
            "cache: Redis at %s is reachable again after %.1f s; caching resumed",
            self._shown_url,
            self._clock() - down_since,
        )
        return True


class QueryEmbeddingCache:
    """An `Encoder` for query texts that answers from a `Cache` and encodes only the texts it misses.

    Keys are ``{prefix}:emb:`` + sha256 of encoder name, revision, backend and text; values (d,) float32 bytes.
    """

    def __init__(self, encoder: Encoder, cache: Cache, prefix: str = "glassbox") -> None:
        self._encoder = encoder
        self._cache = cache
        self._prefix = f"{prefix}:emb:"

    @property
    def identity(self) -> EncoderIdentity:
        return self._encoder.identity

    @property
    def wrapped(self) -> Encoder:
        return self._encoder

    def encode(self, texts: Sequence[str], *, progress: bool = False) -> FloatArray:
        """(n, d) float32 unit rows, identical to the wrapped encoder's for the same texts."""
        identity = self._encoder.identity
        if not texts:
            return np.empty((0, identity.dimension), dtype=np.float32)
        keys = [self._prefix + cache_key(identity, text) for text in texts]
        found = self._cache.get_many("embedding", keys)
        vectors = np.empty((len(texts), identity.dimension), dtype=np.float32)
        missing: list[int] = []
        for row, blob in enumerate(found):
            if blob is not None and len(blob) == 4 * identity.dimension:
                vectors[row] = np.frombuffer(blob, dtype=np.float32)
            else:
                missing.append(row)
        if missing:
            fresh = self._encoder.encode([texts[row] for row in missing], progress=progress)
            vectors[missing] = fresh
            self._cache.set_many({keys[row]: np.ascontiguousarray(fresh[i]).tobytes() for i, row in enumerate(missing)})
        return vectors


def build_cache(settings: Settings) -> Cache:
    """The configured cache: none when disabled, Redis when `redis_url` is set, else the in-process LRU."""
    config = settings.cache
    if not config.enabled:
        logger.info("cache: off")
        return NullCache()
    if settings.redis_url is None:
        logger.info("cache: in-process, %d entries, TTL %d s", config.max_entries, config.ttl_seconds)
        return MemoryCache(config.max_entries, config.ttl_seconds)
    logger.info("cache: Redis at %s, TTL %d s", masked_url(settings.redis_url), config.ttl_seconds)
    return RedisCache(
        settings.redis_url,
        ttl_seconds=config.ttl_seconds,
        timeout_ms=config.timeout_ms,
        retry_seconds=config.retry_seconds,
        prefix=config.key_prefix,
    )
