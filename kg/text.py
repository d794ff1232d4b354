"""Text normalisation for matching labels: NFKC, casefold, hyphens and whitespace as one space, with offsets."""

from __future__ import annotations

import re
import unicodedata

# Hyphen-like characters and underscores match a space: "type-2 diabetes" = "type 2 diabetes".
_SEPARATORS = re.escape("\u002d\u005f\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_CHUNK = re.compile(rf"[\s{_SEPARATORS}]+|[^\s{_SEPARATORS}]+")
_SEPARATOR_START = re.compile(rf"[\s{_SEPARATORS}]")
_NEEDS_WORK = re.compile(rf"[^\S ]|[{_SEPARATORS}]|  ")


def normalise_with_offsets(text: str) -> tuple[str, list[int]]:
    """The normalised text and, for each of its characters, the index of the original character it came from.

    Args:
        text: any text.

    Returns:
        ``(normalised, origins)`` with ``len(origins) == len(normalised)``; a match at ``normalised[a:b]`` covers
        ``text[origins[a] : origins[b - 1] + 1]``.

    >>> normalise_with_offsets("Type-2  DIABETES")
    ('type 2 diabetes', [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15])
    """
    parts: list[str] = []
    origins: list[int] = []
    for match in _CHUNK.finditer(text):
        chunk, start = match.group(), match.start()
        if _SEPARATOR_START.match(chunk):
            parts.append(" ")
            origins.append(start)
        elif chunk.isascii():
            parts.append(chunk.lower())
            origins.extend(range(start, match.end()))
        else:
            for offset, char in enumerate(chunk):
                folded = unicodedata.normalize("NFKC", char).casefold()
                parts.append(folded)
                origins.extend([start + offset] * len(folded))
    return "".join(parts), origins


def normalise(text: str) -> str:
    """The matching form of a label or span: NFKC, casefolded, hyphens/whitespace runs as one space, stripped.

    >>> normalise("  Alzheimer's\u2013Disease ")
    "alzheimer's disease"
    """
    if text.isascii() and not _NEEDS_WORK.search(text):
        return text.lower().strip(" ")  # the common case, ~10x faster than the general path
    return normalise_with_offsets(text)[0].strip(" ")
