"""A built graph on disk: `.npz` edge arrays + JSON node tables, keyed by source files and loader version."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from kg.errors import KgError
from kg.graph import CompactGraph

# Bump whenever a loader's output changes, so that caches built by older code are rebuilt.
LOADER_VERSION = "1"


def cache_key(sources: Sequence[Path], label: str = "") -> str:
    """A hex digest of the loader version, `label` and each source file's resolved path, size and mtime.

    Raises:
        KgError: a source file does not exist.
    """
    digest = hashlib.sha256(f"{LOADER_VERSION}\0{label}".encode())
    for source in sources:
        try:
            stat = source.stat()
        except OSError as error:
            raise KgError(f"graph source {source} is unreadable ({error})") from error
        digest.update(f"\0{source.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()


def save_graph(graph: CompactGraph, directory: Path) -> None:
    """Write the graph into `directory` atomically (a temporary sibling renamed into place)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}-", dir=directory.parent))
    try:
        np.savez(staging / "edges.npz", heads=graph.heads, tails=graph.tails, relation_ids=graph.relation_ids)
        tables = {
            "node_ids": graph.node_ids,
            "names": graph.names,
            "kinds": graph.kinds,
            "synonyms": graph.synonyms,
            "relations": graph.relations,
        }
        (staging / "nodes.json").write_text(json.dumps(tables, ensure_ascii=False), encoding="utf-8")
        if directory.exists():
            shutil.rmtree(directory)
        os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def load_graph(directory: Path) -> CompactGraph:
    """Read a graph written by `save_graph`.

    Raises:
        KgError: the directory does not hold a readable graph.
    """
    try:
        tables = json.loads((directory / "nodes.json").read_text(encoding="utf-8"))
        with np.load(directory / "edges.npz", allow_pickle=False) as arrays:
            heads, tails, relation_ids = arrays["heads"], arrays["tails"], arrays["relation_ids"]
    except (OSError, ValueError, KeyError) as error:
        raise KgError(f"no readable graph cache in {directory} ({error})") from error
    return CompactGraph(
        node_ids=tuple(tables["node_ids"]),
        names=tuple(tables["names"]),
        kinds=tuple(tables["kinds"]),
        synonyms=tuple(tuple(words) for words in tables["synonyms"]),
        relations=tuple(tables["relations"]),
        heads=heads,
        tails=tails,
        relation_ids=relation_ids,
    )


def cached_graph(
    cache_dir: Path, name: str, sources: Sequence[Path], build: Callable[[], CompactGraph]
) -> tuple[CompactGraph, bool]:
    """The graph from `cache_dir` when its sources are unchanged, else `build()` saved there.

    Args:
        cache_dir: where caches live (the service passes ``GLASSBOX_HOME/kg``).
        name: a readable prefix of the cache entry (e.g. ``biomedical``).
        sources: the files the build reads; their paths, sizes and mtimes key the entry.
        build: makes the graph on a miss.

    Returns:
        ``(graph, hit)``: hit is True when the graph came from the cache.
    """
    directory = cache_dir / f"{name}-{cache_key(sources, name)[:20]}"
    if (directory / "nodes.json").is_file():
        return load_graph(directory), True
    graph = build()
    save_graph(graph, directory)
    return graph, False
