"""Collects nodes, edges and cross-reference merges from the loaders and builds one `CompactGraph`."""

from __future__ import annotations

from array import array
from collections.abc import Iterable

import numpy as np

from kg.errors import KgError
from kg.graph import CompactGraph


class GraphBuilder:
    """Accumulates a graph from several files: nodes are created on first mention and named when declared.

    >>> b = GraphBuilder()
    >>> b.add_node("D1", "hypertension", "Disease")
    >>> b.add_edge("C1", "treats", "D1")
    >>> g = b.build()
    >>> g.names, g.relations
    (('hypertension', 'C1'), ('treats',))
    """

    def __init__(self) -> None:
        self._index: dict[str, int] = {}
        self._ids: list[str] = []
        self._names: list[str | None] = []
        self._kinds: list[str] = []
        self._synonyms: dict[int, list[str]] = {}
        self._xrefs: dict[str, list[str]] = {}
        self._relation_index: dict[str, int] = {}
        self._heads = array("i")
        self._tails = array("i")
        self._relations = array("i")
        self._merges: dict[str, str] = {}

    def _intern(self, node_id: str) -> int:
        index = self._index.get(node_id)
        if index is None:
            index = self._index[node_id] = len(self._ids)
            self._ids.append(node_id)
            self._names.append(None)
            self._kinds.append("")
        return index

    def has_node(self, node_id: str) -> bool:
        """True when the node was declared or used by an edge."""
        return node_id in self._index

    def node_ids(self) -> list[str]:
        """Every node id seen so far, in first-seen order."""
        return list(self._ids)

    def add_node(self, node_id: str, name: str, kind: str = "", synonyms: Iterable[str] = ()) -> None:
        """Declare a node; a second declaration keeps the first name and kind and adds the new name as a synonym."""
        index = self._intern(node_id)
        if self._names[index] is None:
            self._names[index] = name
        elif name != self._names[index]:
            self._synonyms.setdefault(index, []).append(name)
        if kind and not self._kinds[index]:
            self._kinds[index] = kind
        extra = [s for s in synonyms if s]
        if extra:
            self._synonyms.setdefault(index, []).extend(extra)

    def add_xrefs(self, node_id: str, xrefs: Iterable[str]) -> None:
        """Record cross-references of a node (e.g. ``UMLS:C0020538``) for `kg.crosslinks` to merge on."""
        self._xrefs.setdefault(node_id, []).extend(xrefs)

    def xrefs(self) -> dict[str, list[str]]:
        """Node id → its recorded cross-references."""
        return self._xrefs

    def add_edge(self, head: str, relation: str, tail: str) -> None:
        """Add the edge `head —relation→ tail`, creating unnamed nodes as needed."""
        rel = self._relation_index.get(relation)
        if rel is None:
            rel = self._relation_index[relation] = len(self._relation_index)
        self._heads.append(self._intern(head))
        self._tails.append(self._intern(tail))
        self._relations.append(rel)

    def merge(self, node_id: str, into: str) -> None:
        """Make `node_id` the same node as `into`: its edges move there, its names become synonyms there.

        Raises:
            KgError: either node is unknown.
        """
        for known in (node_id, into):
            if known not in self._index:
                raise KgError(f"cannot merge: node {known!r} is unknown")
        if node_id != into:
            self._merges[node_id] = into

    def build(self) -> CompactGraph:
        """The graph: merges resolved, self-loops and duplicate edges dropped, unnamed nodes named by their id."""
        n = len(self._ids)
        if n >= 1 << 26 or len(self._relation_index) > 1024:
            raise KgError(f"graph too large to pack: {n} nodes (max 2**26), {len(self._relation_index)} relations")
        target = np.arange(n, dtype=np.int64)
        for alias, canonical in self._merges.items():
            root = canonical
            seen = {alias}
            while root in self._merges:
                if root in seen:
                    raise KgError(f"merging {alias!r} runs in a cycle through {root!r}")
                seen.add(root)
                root = self._merges[root]
            target[self._index[alias]] = self._index[root]
        keep = target == np.arange(n)
        new_index = np.cumsum(keep) - 1
        remap = new_index[target]

        synonyms: dict[int, list[str]] = {}
        for index, words in self._synonyms.items():
            synonyms.setdefault(int(target[index]), []).extend(words)
        for alias in self._merges:
            index = self._index[alias]
            words = [self._names[index] or alias, *self._synonyms.get(index, [])]
            synonyms.setdefault(int(target[index]), []).extend(words)

        kept = np.flatnonzero(keep).tolist()
        names = tuple(self._names[i] or self._ids[i] for i in kept)
        node_synonyms = tuple(_distinct(synonyms.get(i, ()), name) for i, name in zip(kept, names, strict=True))

        heads = remap[np.frombuffer(self._heads, dtype=np.int32)] if self._heads else np.zeros(0, np.int64)
        tails = remap[np.frombuffer(self._tails, dtype=np.int32)] if self._tails else np.zeros(0, np.int64)
        relations = np.frombuffer(self._relations, dtype=np.int32).astype(np.int64)
        key = (heads << 36) | (tails << 10) | relations
        key = key[heads != tails]
        unique = np.unique(key)
        return CompactGraph(
            node_ids=tuple(self._ids[i] for i in kept),
            names=names,
            kinds=tuple(self._kinds[i] for i in kept),
            synonyms=node_synonyms,
            relations=tuple(self._relation_index),
            heads=(unique >> 36).astype(np.int32),
            tails=((unique >> 10) & ((1 << 26) - 1)).astype(np.int32),
            relation_ids=(unique & 1023).astype(np.int32),
        )


def _distinct(words: Iterable[str], name: str) -> tuple[str, ...]:
    """Synonyms in first-seen order, without repeats or the name itself (case-insensitively)."""
    seen = {name.casefold()}
    out = []
    for word in words:
        folded = word.casefold()
        if folded not in seen:
            seen.add(folded)
            out.append(word)
    return tuple(out)
