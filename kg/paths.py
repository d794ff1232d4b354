"""Bounded path search between query and document concepts over the graph taken undirected, penalising hubs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from kg.base import Edge, PathRationale
from kg.graph import CompactGraph


@dataclass(frozen=True)
class PathOptions:
    """How paths are searched and scored.

    A path's cost is one per edge plus `hub_penalty * log(1 + degree)` for each node inside it (not its ends), plus
    `kind_penalty` for each inner node of a `penalised_kinds` kind when no query concept is of such a kind (a
    detour through a gene the query never names), plus `end_penalty * log(1 + degree)` of its document end (generic
    end points such as *Metabolism*); its score is ``1 / (1 + cost)``, at most 0.5. A concept that the query and
    the document both mention is a **shared concept**, a path with no edges, score 1 (so it ranks first).

    Attributes:
        max_length: most edges per path (1 to 3).
        max_paths: best paths kept per document.
        hub_penalty: weight of the log-degree cost of inner nodes (0 turns the hub penalty off).
        max_expand_degree: nodes with more edges than this are not expanded on the query side's second hop.
        max_expand_nodes: at most this many first-hop nodes (lowest degree first) are expanded for length-3 paths.
        shared_concepts: return shared concepts (zero-edge rationales) before paths.
        kind_penalty: extra cost of an inner node of `penalised_kinds` when the query names no such node.
        penalised_kinds: node kinds that `kind_penalty` applies to.
        end_penalty: weight of the log-degree cost of the document end of a path.
    """

    max_length: int = 3
    max_paths: int = 3
    hub_penalty: float = 1.0
    max_expand_degree: int = 500
    max_expand_nodes: int = 200
    shared_concepts: bool = True
    kind_penalty: float = 2.0
    penalised_kinds: frozenset[str] = frozenset({"Gene"})
    end_penalty: float = 0.5

    def __post_init__(self) -> None:
        if not 1 <= self.max_length <= 3:
            raise ValueError(f"max_length must be 1, 2 or 3, got {self.max_length}")
        if self.max_paths < 1:
            raise ValueError(f"max_paths must be at least 1, got {self.max_paths}")
        if min(self.hub_penalty, self.kind_penalty, self.end_penalty) < 0:
            raise ValueError(
                f"penalties must be non-negative, got {self.hub_penalty}, {self.kind_penalty}, {self.end_penalty}"
            )


@dataclass(frozen=True)
class QueryNeighbourhood:
    """What the query side reaches, computed once per query and reused for every result.

    Arrays have one entry per node n: `is_source[n]`; `first_hop[n]` the adjacency entry reaching n from a query
    concept (-1 when none); `second_hop[n]` the last entry of the best 2-edge walk to n (-1 when none);
    `via_first[n]` / `via_second[n]` the cost of a path whose last inner node is n after 1 / 2 edges (inf: none).
    """

    is_source: np.ndarray
    first_hop: np.ndarray
    second_hop: np.ndarray
    via_first: np.ndarray
    via_second: np.ndarray


class PathSearch:
    """Finds the best short paths from query concepts to each document's concepts.

    Edges may be walked either way; each returned `Edge` keeps the graph's direction and says `reversed` when the
    path walks it backwards, so every edge shown exists in the graph with that relation.
    """

    def __init__(self, graph: CompactGraph, options: PathOptions | None = None) -> None:
        self.graph = graph
        self.options = options or PathOptions()
        n, m = graph.num_nodes, graph.num_edges
        owner = np.concatenate([graph.heads, graph.tails]).astype(np.int64)
        neighbour = np.concatenate([graph.tails, graph.heads]).astype(np.int32)
        edge = np.concatenate([np.arange(m), np.arange(m)]).astype(np.int32)
        order = np.argsort(owner, kind="stable")
        self._owner = owner[order].astype(np.int32)
        self._neighbour = neighbour[order]
        self._edge = edge[order]
        by_edge = np.argsort(self._edge, kind="stable").reshape(-1, 2)  # the two entries of each edge
        self._twin = np.empty(2 * m, np.int64)
        self._twin[by_edge[:, 0]] = by_edge[:, 1]
        self._twin[by_edge[:, 1]] = by_edge[:, 0]
        counts = np.bincount(owner, minlength=n)
        self._indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self._degree = counts
        self._log_degree = np.log1p(counts)
        self._kinds: dict[frozenset[str], np.ndarray] = {}
        self._inner: dict[tuple[float, float, frozenset[str]], tuple[np.ndarray, np.ndarray]] = {}

    def _of_kinds(self, kinds: frozenset[str]) -> np.ndarray:
        """Per node: is its kind one of `kinds` (cached per kind set)."""
        found = self._kinds.get(kinds)
        if found is None:
            found = self._kinds[kinds] = np.fromiter((k in kinds for k in self.graph.kinds), bool, self.graph.num_nodes)
        return found

    def _inner_costs(self, options: PathOptions, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per node: the cost of passing through it (hub and kind penalties), and 2 + that (a 2-edge path via it);
        cached per penalty setting and whether the query names a node of a penalised kind."""
        penalise = bool(options.kind_penalty) and not self._of_kinds(options.penalised_kinds)[sources].any()
        key = (options.hub_penalty, options.kind_penalty if penalise else 0.0, options.penalised_kinds)
        found = self._inner.get(key)
        if found is None:
            inner = options.hub_penalty * self._log_degree
            if penalise:
                inner = inner + options.kind_penalty * self._of_kinds(options.penalised_kinds)
            found = self._inner[key] = (inner, 2.0 + inner)
        return found

    def _entries(self, nodes: np.ndarray) -> np.ndarray:
        """The adjacency entry indices of all `nodes`, concatenated."""
        starts, lengths = self._indptr[nodes], self._degree[nodes]
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        return offsets + np.arange(total)

    def neighbourhood(self, sources: Sequence[int], options: PathOptions | None = None) -> QueryNeighbourhood:
        """The query side's first and (bounded) second hop from the given node indices (`options` overrides)."""
        options = options or self.options
        n = self.graph.num_nodes
        source_array = _unique(np.asarray(sources, dtype=np.int64))
        is_source = np.zeros(n, bool)
        is_source[source_array] = True
        first_hop = np.full(n, -1, np.int64)
        entries = self._entries(source_array)
        reached = self._neighbour[entries]
        keep = ~is_source[reached]
        reached, entries = reached[keep], entries[keep]
        first_hop[reached[::-1]] = entries[::-1]  # the earliest entry wins
        inner, via_one = self._inner_costs(options, source_array)
        first = _unique(reached)  # the first-hop nodes, sorted
        via_first = np.full(n, np.inf)
        via_first[first] = via_one[first]
        second_hop = np.full(n, -1, np.int64)
        via_second = np.full(n, np.inf)
        if options.max_length >= 3:
            first = first[self._degree[first] <= options.max_expand_degree]
            # cheapest first: the cost of a 2-edge walk grows with the first hop's degree only
            first = first[np.argsort(self._degree[first], kind="stable")[: options.max_expand_nodes]]
            entries = self._entries(first)
            reached = self._neighbour[entries]
            keep = ~is_source[reached]
            reached, entries = reached[keep], entries[keep]
            second_hop[reached[::-1]] = entries[::-1]  # the earliest, i.e. cheapest, entry wins
            found = _unique(reached)
            cost = 2.0 + inner[self._owner[second_hop[found]]]
            via_second[found] = cost + 1.0 + inner[found]
        return QueryNeighbourhood(is_source, first_hop, second_hop, via_first, via_second)

    def best_paths(
        self, near: QueryNeighbourhood, targets: Sequence[int], options: PathOptions | None = None
    ) -> list[PathRationale]:
        """The best `max_paths` paths (distinct node sequences) from the query concepts to any of `targets`."""
        return self.best_paths_many(near, [targets], options)[0]

    def best_paths_many(
        self, near: QueryNeighbourhood, documents: Sequence[Sequence[int]], options: PathOptions | None = None
    ) -> list[list[PathRationale]]:
        """`best_paths` for several documents' target sets at once (one pass of array work for all)."""
        options = options or self.options
        per_doc = [_unique(np.asarray(targets, dtype=np.int64)) for targets in documents]
        shared = [
            self._shared(targets[near.is_source[targets]]) if options.shared_concepts else [] for targets in per_doc
        ]
        found: list[list[PathRationale]] = [items[: options.max_paths] for items in shared]
        per_doc = [targets[~near.is_source[targets]] for targets in per_doc]
        if not per_doc or not sum(t.size for t in per_doc):
            return found
        targets = np.concatenate(per_doc)
        doc_of_target = np.repeat(np.arange(len(per_doc)), [t.size for t in per_doc])
        entries = self._entries(targets)
        if entries.size == 0:
            return found
        doc = np.repeat(doc_of_target, self._degree[targets])
        other = self._neighbour[entries]
        end = np.repeat(options.end_penalty * self._log_degree[targets], self._degree[targets])
        costs = [np.where(near.is_source[other], 1.0, np.inf) + end]
        if options.max_length >= 2:
            costs.append(near.via_first[other] + end)
        if options.max_length >= 3:
            costs.append(near.via_second[other] + end)
        cost = np.concatenate(costs)
        docs = np.tile(doc, len(costs))
        finite = np.flatnonzero(np.isfinite(cost))
        order = finite[np.lexsort((finite, cost[finite], docs[finite]))]
        bounds = np.searchsorted(docs[order], np.arange(len(per_doc) + 1))
        for index in range(len(per_doc)):
            room = options.max_paths - len(found[index])
            if room <= 0:
                continue
            candidates = order[bounds[index] : bounds[index + 1]][: 8 * options.max_paths].tolist()
            found[index] = found[index] + self._paths(near, entries, candidates, cost, room)
        return found

    def _shared(self, nodes: np.ndarray) -> list[PathRationale]:
        """Shared concepts as zero-edge rationales (score 1), most specific (lowest degree) first."""
        g = self.graph
        ordered = nodes[np.argsort(self._degree[nodes], kind="stable")]
        return [PathRationale((), 1.0, g.node_ids[int(n)], g.names[int(n)]) for n in ordered]

    def _paths(
        self, near: QueryNeighbourhood, entries: np.ndarray, candidates: list[int], cost: np.ndarray, limit: int
    ) -> list[PathRationale]:
        paths: list[PathRationale] = []
        seen: set[tuple[int, ...]] = set()
        for candidate in candidates:
            length, position = divmod(candidate, entries.size)
            hops = self._walk(near, int(entries[position]), length + 1)
            nodes = (int(self._owner[hops[0]]), *(int(self._neighbour[h]) for h in hops))
            if len(set(nodes)) != len(nodes) or nodes in seen:
                continue
            seen.add(nodes)
            paths.append(PathRationale(tuple(self._edge_of(h) for h in hops), 1.0 / (1.0 + float(cost[candidate]))))
            if len(paths) == limit:
                break
        return paths

    def _walk(self, near: QueryNeighbourhood, last: int, length: int) -> list[int]:
        """The adjacency entries of a path, query side first, ending with the twin of entry `last`."""
        hops = [int(self._twin[last])]
        node = int(self._neighbour[last])  # the node next to the target, or the source for length 1
        if length >= 3:
            hop = int(near.second_hop[node])
            hops.insert(0, hop)
            node = int(self._owner[hop])
        if length >= 2:
            hops.insert(0, int(near.first_hop[node]))
        return hops

    def _edge_of(self, entry: int) -> Edge:
        """The graph edge of an adjacency entry, marked reversed when the entry walks it from tail to head."""
        g = self.graph
        edge = int(self._edge[entry])
        head, tail = int(g.heads[edge]), int(g.tails[edge])
        return Edge(
            head=g.node_ids[head],
            relation=g.relations[int(g.relation_ids[edge])],
            tail=g.node_ids[tail],
            head_name=g.names[head],
            tail_name=g.names[tail],
            reversed=int(self._owner[entry]) != head,
        )

    def paths(self, sources: Sequence[str], targets: Sequence[str], max_length: int) -> list[PathRationale]:
        """The best paths of at most `max_length` edges from `sources` to `targets` (concept ids; unknown ignored).

        Raises:
            ValueError: `max_length` is not 1, 2 or 3.
        """
        options = replace(self.options, max_length=max_length)
        index = self.graph.index
        near = self.neighbourhood([index[s] for s in sources if s in index], options)
        return self.best_paths(near, [index[t] for t in targets if t in index], options)


def _unique(values: np.ndarray) -> np.ndarray:
    """The sorted distinct values of a 1-d array (`np.unique` without its per-call overhead on small arrays)."""
    ordered = np.sort(values)
    if ordered.size < 2:
        return ordered
    keep = np.empty(ordered.size, bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]
