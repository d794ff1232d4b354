"""The knowledge-graph path stage: per result, paths from the query's concepts to the document's, with spans.

Scores and the keep-mask pass through unchanged: the stage explains, it does not rank. Only the best
`explain_top` candidates by the scores it receives are explained (the ones a search can return when top_k ≤
explain_top); the others say `"explained": false`.

Per collection, on first use: labels found in more than `max_document_frequency` of the collection's documents
are dropped (recomputed when the collection has grown or shrunk by more than 10 %), and documents' mentions are
read from `GLASSBOX_HOME/kg/mentions/<collection>.sqlite`, linking (and storing) those not stored yet.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexes import Collection, Document, FloatArray
from kg import KnowledgeGraph, Mention, PathOptions, PathRationale, TriplesFile, cache_key, source_files
from kg.embedding_linking import EmbeddingOptions
from kg.graph import CompactGraph
from kg.linking import LINKER_VERSION, LinkingOptions
from kg.text import normalise
from service.encoder import Encoder
from service.mention_store import FieldMention, MentionStore
from service.settings import Settings
from service.stages import Candidate, QueryContext, StageResult

logger = logging.getLogger(__name__)
_REFRESH_SHARE = 0.1  # recompute a collection's frequent labels when its size has changed by more than this
_DocumentKey = tuple[str, str, str]  # id, title, text: mentions depend on nothing else


@dataclass(frozen=True)
class _CollectionState:
    size: int
    graph: KnowledgeGraph  # with the collection's frequent labels dropped
    store: MentionStore | None
    dropped: int
    # recently explained documents' filtered mentions (bounded, least recently used dropped first)
    recent: OrderedDict[_DocumentKey, list[FieldMention]]


def link_document(graph: KnowledgeGraph, document: Document) -> list[FieldMention]:
    """Mentions (exact, and stemmed with `LinkingOptions.document_stems`) in a document's title and text, each with
    the field its span indexes."""
    return [
        FieldMention(field, mention)
        for field, value in (("title", document.title), ("text", document.text))
        for mention in graph.link(value)
    ]


def collection_texts(collection: Collection, chunk: int = 1000) -> list[str]:
    """``title + " " + text`` of every document in the collection (for the document-frequency filter)."""
    ids = collection.index.doc_ids()
    texts: list[str] = []
    for offset in range(0, len(ids), chunk):
        texts += [f"{d.title} {d.text}" for d in collection.get(ids[offset : offset + chunk]).values()]
    return texts


class KgPathStage:
    """Explains the top candidates with knowledge-graph paths; see the module docstring.

    Args:
        graph: the loaded graph (with an embedding linker for queries when configured).
        mentions_dir: where per-collection mention stores live; None links documents on every request.
        graphs: the graph names, reported per query.
        explain_top: how many candidates (best by incoming score) are explained.
        max_document_frequency: per-collection label filter share.
        linker_key: identifies graph, linkers and query-linking options (in `version`, so response caches part
            when any of them changes).
        store_key: identifies what document linking depends on (graph files, linker version): stores written
            under another key are emptied. Default `linker_key`; query-only options need not re-link documents.
        mention_cache: per collection, how many documents' filtered mentions are kept in memory (0: read the
            store on every request).
    """

    name = "kg"

    def __init__(
        self,
        graph: KnowledgeGraph,
        mentions_dir: Path | None = None,
        *,
        graphs: Sequence[str] = (),
        explain_top: int = 10,
        max_document_frequency: float = 0.05,
        linker_key: str = "",
        store_key: str | None = None,
        mention_cache: int = 4096,
    ) -> None:
        self.graph = graph
        self._mention_cache = mention_cache
        self._mentions_dir = mentions_dir
        self._graphs = list(graphs)
        self._explain_top = explain_top
        self._max_df = max_document_frequency
        self._linker_key = linker_key
        self.store_key = linker_key if store_key is None else store_key
        self._collections: dict[str, _CollectionState] = {}
        self._lock = threading.Lock()

    @property
    def version(self) -> str:
        """The graph and linker (their source files' hash) and the explanation options: response-cache keys carry it.

        A stage built around an in-memory graph without a key is this process's alone (never shared via Redis).
        """
        graph = self._linker_key or f"process-{os.getpid()}-graph-{id(self.graph):x}"
        return f"kg:{graph}:top={self._explain_top}:df={self._max_df}"

    @classmethod
    def from_settings(cls, settings: Settings, encoder: Encoder | None = None) -> KgPathStage:
        """Load (or build and cache under GLASSBOX_HOME/kg) the configured graphs; with an encoder and an
        embedding threshold, add the embedding path for queries (concept-name embeddings cached there too).

        Raises:
            KgError: an unknown graph name or a missing or malformed graph file.
        """
        config = settings.kg
        kg_dir, cache_dir = settings.data / "kg", settings.home / "kg"
        triples = [TriplesFile(path) for path in config.triples]
        start = time.perf_counter()
        graph = KnowledgeGraph.load(
            kg_dir,
            config.graphs,
            cache_dir=cache_dir,
            triples=triples,
            linking=LinkingOptions(
                frequent_query_fallback=config.frequent_query_fallback,
                precise=config.precise_linking,
                query_pertainyms=config.query_pertainyms,
            ),
            paths=PathOptions(max_length=config.max_hops, max_paths=config.paths_per_result),
        )
        documents_key = cache_key(source_files(kg_dir, config.graphs, triples), "+".join(config.graphs))
        documents_key += f"/linker-{LINKER_VERSION}"
        key = f"{documents_key}/frequent-{config.frequent_query_fallback}"
        key += f"/precise-{config.precise_linking}/pertainyms-{graph.pertainym_linker is not None}"
        if encoder is not None and config.embedding_threshold is not None:
            identity = encoder.identity
            name = f"{identity.name}@{identity.revision}/{identity.backend}"
            options = EmbeddingOptions(
                threshold=config.embedding_threshold,
                static=config.embedding_static,
                require_lexical_match=config.precise_linking,
            )
            graph = graph.with_embedding_linker(lambda texts: encoder.encode(texts), name, cache_dir, options)
            key += f"/{name}/{config.embedding_threshold}/static-{config.embedding_static}"
        logger.info(
            "kg loaded in %.1f s: %s, %d nodes, %d edges",
            time.perf_counter() - start,
            "+".join(config.graphs),
            graph.num_nodes,
            graph.num_edges,
        )
        return cls(
            graph,
            cache_dir / "mentions",
            graphs=[*config.graphs, *(str(path) for path in config.triples)],
            explain_top=config.explain_top,
            max_document_frequency=config.max_document_frequency,
            linker_key=hashlib.sha256(key.encode()).hexdigest(),
            store_key=hashlib.sha256(documents_key.encode()).hexdigest(),
        )

    def prepare(self, collection: Collection) -> None:
        """Compute the collection's frequent labels now (else the first search of it does)."""
        self._state(collection)

    def _state(self, collection: Collection | None) -> _CollectionState:
        if collection is None:
            return _CollectionState(0, self.graph, None, 0, OrderedDict())
        with self._lock:
            size = len(collection)
            state = self._collections.get(collection.name)
            if state is not None and abs(size - state.size) <= _REFRESH_SHARE * max(state.size, 1):
                return state
            filtered = self.graph.without_frequent_labels(collection_texts(collection), self._max_df)
            store = state.store if state is not None else None
            if store is None and self._mentions_dir is not None:
                store = MentionStore(self._mentions_dir / f"{collection.name}.sqlite", self.store_key)
            dropped = self.graph.num_labels - filtered.num_labels
            state = _CollectionState(size, filtered, store, dropped, OrderedDict())
            self._collections[collection.name] = state
            return state

    def _document_mentions(self, state: _CollectionState, documents: Sequence[Document]) -> list[list[FieldMention]]:
        recent = state.recent
        keys = [(doc.id, doc.title, doc.text) for doc in documents]
        with self._lock:
            cached = {key: recent[key] for key in keys if key in recent}
            for key in cached:
                recent.move_to_end(key)
        todo = [doc for doc, key in zip(documents, keys, strict=True) if key not in cached]
        if todo:
            hashes = {doc.id: doc.content_hash for doc in todo}
            stored = state.store.get(hashes) if state.store is not None else {}
            missing = {doc.id: link_document(self.graph, doc) for doc in todo if doc.id not in stored}
            if missing and state.store is not None:
                state.store.put((doc_id, hashes[doc_id], mentions) for doc_id, mentions in missing.items())
            found = {**stored, **missing}
            graph = state.graph
            labels: dict[tuple[str, str, str], bool] = {}  # keeps() per label, method and concept
            for doc in todo:
                kept = []
                for m in found[doc.id]:
                    label = (m.mention.label, m.mention.method, m.mention.concept_id)
                    if label not in labels:
                        labels[label] = graph.keeps(m.mention)
                    if labels[label]:
                        kept.append(m)
                cached[(doc.id, doc.title, doc.text)] = kept
            if self._mention_cache > 0:
                with self._lock:
                    for doc in todo:
                        key = (doc.id, doc.title, doc.text)
                        recent[key] = cached[key]
                    while len(recent) > self._mention_cache:
                        recent.popitem(last=False)
        return [cached[key] for key in keys]

    def apply(self, query: QueryContext, candidates: Sequence[Candidate], scores: FloatArray) -> StageResult:
        start = time.perf_counter()
        state = self._state(query.collection)
        graph = state.graph
        query_mentions = graph.link_query(query.text)
        order = [int(i) for i in np.argsort(-scores, kind="stable")[: self._explain_top]]
        documents = [candidates[i].document for i in order]
        mentions = self._document_mentions(state, documents)
        paths = graph.explain_many(query_mentions, [[m.mention for m in doc] for doc in mentions])
        explanations: list[Mapping[str, Any]] = [_unexplained() for _ in candidates]
        for index, doc_mentions, doc_paths in zip(order, mentions, paths, strict=True):
            explanations[index] = self._explain(
                query.text, candidates[index].document, query_mentions, doc_mentions, doc_paths
            )
        return StageResult(
            scores=scores,
            keep=np.ones(len(candidates), dtype=bool),
            query_explanation={
                "linked_concepts": [{**self._concept(m, query.text), "method": m.method} for m in query_mentions],
                "graphs": self._graphs,
                "explained": len(order),
                "frequent_labels_dropped": state.dropped,
                "latency_ms": round((time.perf_counter() - start) * 1000.0, 3),
            },
            candidate_explanations=explanations,
            summaries=[
                {"rationales": [path["rendered"] for path in explained.get("paths", [])]}
                if explained.get("paths")
                else {}
                for explained in explanations
            ],
        )

    def _concept(self, mention: Mention, text: str) -> dict[str, Any]:
        return {
            "id": mention.concept_id,
            "name": self.graph.node_name(mention.concept_id),
            "start": mention.start,
            "end": mention.end,
            "text": text[mention.start : mention.end],
        }

    def _explain(
        self,
        query_text: str,
        document: Document,
        query_mentions: Sequence[Mention],
        document_mentions: Sequence[FieldMention],
        paths: Sequence[PathRationale],
    ) -> dict[str, Any]:
        sources = {path.source for path in paths}
        targets = list(dict.fromkeys(path.target for path in paths))
        first_query = {m.concept_id: m for m in reversed(query_mentions)}
        first_document = {m.mention.concept_id: m for m in reversed(document_mentions)}
        document_concepts = []
        for target in targets:
            found = first_document[target]
            span = found.mention
            document_concepts.append(
                {
                    "id": target,
                    "name": self.graph.node_name(target),
                    "field": found.field,
                    "start": span.start,
                    "end": span.end,
                    "text": (document.title if found.field == "title" else document.text)[span.start : span.end],
                }
            )
        return {
            "explained": True,
            "query_concepts": [self._concept(m, query_text) for m in first_query.values() if m.concept_id in sources],
            "document_concepts": document_concepts,
            "paths": [_path(path) for path in paths],
        }


def _unexplained() -> dict[str, Any]:
    return {"explained": False, "query_concepts": [], "document_concepts": [], "paths": []}


def _path(path: PathRationale) -> dict[str, Any]:
    return {
        "shared": path.shared,
        "nodes": [path.source, *(edge.end for edge in path.edges)],
        "relations": [edge.relation for edge in path.edges],
        "edges": [{"head": edge.head, "relation": edge.relation, "tail": edge.tail} for edge in path.edges],
        "rendered": path.render(),
        "score": round(path.score, 6),
    }


def unfaithful(
    graph: CompactGraph, query: str, title: str, text: str, query_info: Mapping[str, Any], result: Mapping[str, Any]
) -> list[str]:
    """What is not faithful in one result's `kg` breakdown (empty when all is): edges missing from the graph,
    paths that do not chain from a query concept to a document concept, spans whose text differs, a shared concept
    (a path with no edges) that is not both a query concept and a document concept with faithful spans.

    Args:
        graph: the loaded graph.
        query, title, text: the query and the result's fields.
        query_info: the response's `query.kg`.
        result: the result's `breakdown.kg`.
    """
    problems: list[str] = []
    fields = {"title": title, "text": text}
    linked = {c["id"] for c in query_info.get("linked_concepts", [])}
    for concept in query_info.get("linked_concepts", []):
        if normalise(query[concept["start"] : concept["end"]]) != normalise(concept["text"]):
            problems.append(f"query span {concept}")
    for concept in result.get("query_concepts", []):
        if query[concept["start"] : concept["end"]] != concept["text"]:
            problems.append(f"query concept span {concept}")
    document = {c["id"] for c in result.get("document_concepts", [])}
    in_query = {c["id"] for c in result.get("query_concepts", [])}
    for concept in result.get("document_concepts", []):
        found = fields[concept["field"]][concept["start"] : concept["end"]]
        if (
            not Mention(concept["id"], concept["text"], concept["start"], concept["end"]).is_faithful_to(
                fields[concept["field"]]
            )
            or found != concept["text"]
        ):
            problems.append(f"document span {concept}")
    for path in result.get("paths", []):
        nodes = path["nodes"]
        if nodes[0] not in linked or nodes[0] not in in_query or nodes[-1] not in document:
            problems.append(f"path ends {nodes[0]} .. {nodes[-1]} are not linked concepts")
        if len(nodes) != len(path["edges"]) + 1 or path.get("shared", False) != (not path["edges"]):
            problems.append(f"path {nodes} has {len(path['edges'])} edges")
        for step, edge in enumerate(path["edges"]):
            if not graph.has_edge(edge["head"], edge["relation"], edge["tail"]):
                problems.append(f"edge {edge} is not in the graph")
            if step + 1 < len(nodes) and {edge["head"], edge["tail"]} != {nodes[step], nodes[step + 1]}:
                problems.append(f"edge {edge} does not join {nodes[step]} and {nodes[step + 1]}")
    return problems
