"""Exceptions raised by the kg package.

KgError
├── KgFormatError        a graph file that does not parse (names file and line)
└── UnknownGraphError    a graph-set or part name that is not registered (lists the known names)
"""

from __future__ import annotations


class KgError(Exception):
    """Base class of every error raised by `kg`."""


class KgFormatError(KgError):
    """A knowledge-graph file that does not match its format."""


class UnknownGraphError(KgError):
    """A graph set or part name that is not registered."""
