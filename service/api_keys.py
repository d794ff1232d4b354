"""API keys: make them, hash them, find the one presented, and say what it may do (no HTTP here).

A key is `gbx_` + 43 URL-safe characters (256 random bits from `secrets`). Settings hold only its SHA-256: a key
has far too much entropy to be guessed from its digest, so a plain hash is enough (no salt, no slow KDF), and a
leaked settings file does not leak keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from service.errors import ConfigurationError
from service.settings import ApiKeySettings

KEY_PREFIX = "gbx_"
ALL_COLLECTIONS = "*"
Scope = Literal["read", "write"]


def generate_key() -> str:
    """A new random API key (shown once; only its digest is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    """The hex SHA-256 of a key, as `GLASSBOX_API_KEYS` stores it.

    >>> hash_key("gbx_example")[:16]
    '146b84d42104be3e'
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key_entry(name: str, read: Iterable[str], write: Iterable[str]) -> tuple[str, ApiKeySettings]:
    """A new key and the settings entry that grants it `read` and `write` (collection names or "*")."""
    key = generate_key()
    entry = ApiKeySettings(name=name, sha256=hash_key(key), read=list(read), write=list(write))
    return key, entry


def find_key(presented: str, keys: Sequence[ApiKeySettings]) -> ApiKeySettings | None:
    """The entry whose digest matches the presented key, or None.

    Every digest is compared, each in constant time, so timing tells nothing about which entry came close.
    """
    digest = hash_key(presented)
    found = None
    for entry in keys:
        if hmac.compare_digest(digest, entry.sha256) and found is None:
            found = entry
    return found


def check_keys(keys: Sequence[ApiKeySettings]) -> None:
    """Raise `ConfigurationError` when two entries share a name or a digest (the message shows names only)."""
    names = [entry.name for entry in keys]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigurationError(f"GLASSBOX_API_KEYS names must be unique; repeated: {repeated}")
    digests = [entry.sha256 for entry in keys]
    shared = sorted(entry.name for entry in keys if digests.count(entry.sha256) > 1)
    if shared:
        raise ConfigurationError(f"GLASSBOX_API_KEYS entries {shared} hold the same key; keep one entry per key")


def grants(granted: Iterable[str], collection: str) -> bool:
    """Whether a scope list (collection names or "*") covers a collection.

    >>> grants(["*"], "scifact"), grants(["nfcorpus"], "scifact"), grants(["scifact"], "scifact")
    (True, False, True)
    """
    return any(name in (ALL_COLLECTIONS, collection) for name in granted)


@dataclass(frozen=True)
class Principal:
    """Who made a request and which collections it may read and write; never holds the key or its digest."""

    name: str
    read: frozenset[str]
    write: frozenset[str]
    authenticated: bool = True

    @classmethod
    def of(cls, entry: ApiKeySettings) -> Principal:
        return cls(entry.name, frozenset(entry.read), frozenset(entry.write))

    @classmethod
    def anonymous(cls) -> Principal:
        """The caller when no keys are configured (the embedded local mode): everything is allowed."""
        return cls("anonymous", frozenset({ALL_COLLECTIONS}), frozenset({ALL_COLLECTIONS}), authenticated=False)

    def can(self, scope: Scope, collection: str) -> bool:
        """Whether this caller holds `scope` on `collection` (write does not imply read)."""
        return grants(self.read if scope == "read" else self.write, collection)
