"""Reading plain or gzipped text files line by line, with errors that name the file and line."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

from kg.errors import KgFormatError


def read_lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield `(line_number, line)` (1-based, without the line break) of a UTF-8 file, gunzipping `*.gz`.

    Raises:
        KgFormatError: the file is missing or not UTF-8.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                yield number, line.rstrip("\r\n")
    except (OSError, UnicodeDecodeError, EOFError) as error:
        raise KgFormatError(f"{path}: unreadable ({error})") from error


def read_tsv(
    path: Path, columns: int, header: str | None = None, exact: bool = True
) -> Iterator[tuple[int, list[str]]]:
    """Yield `(line_number, fields)` of a tab-separated file (no quoting: fields are split on tabs only).

    Blank lines and lines starting with ``#`` are skipped.

    Args:
        path: the file.
        columns: how many fields each row has (at least this many when not `exact`).
        header: the first field of a header row to skip, or None when the file has no header.
        exact: whether more fields than `columns` is an error.

    Raises:
        KgFormatError: a row with the wrong number of fields (message names file and line).
    """
    for number, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if header is not None and fields[0] == header:
            continue
        if len(fields) < columns or (exact and len(fields) > columns):
            raise KgFormatError(f"{path}:{number}: expected {columns} tab-separated fields, got {len(fields)}")
        yield number, fields


def format_error(path: Path, number: int, problem: str) -> KgFormatError:
    """A KgFormatError naming the file and line."""
    return KgFormatError(f"{path}:{number}: {problem}")
