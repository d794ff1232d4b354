"""Exceptions raised by the adapters package.

AdapterError
└── AdapterArtifactError   an adapter directory that is missing, corrupt, of another kind or for another encoder
"""

from __future__ import annotations


class AdapterError(Exception):
    """Base class of every error raised by `adapters`."""


class AdapterArtifactError(AdapterError):
    """An adapter artifact that cannot be loaded as asked."""
