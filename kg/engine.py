"""The facade the service uses: load or build a graph, link texts to concepts, explain results with paths."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from kg.base import Mention, PathRationale
from kg.cache import cached_graph
from kg.embedding_linking import EmbeddingLinker, EmbeddingOptions, Encode
from kg.graph import CompactGraph
from kg.linking import (
    EntityLinker,
    LabelTable,
    LinkingOptions,
    PertainymLinker,
    StemmedLinker,
    SymbolLinker,
    inflection_key,
)
from kg.loaders.wordnet import common_words as wordnet_common_words
from kg.loaders.wordnet import pertainyms, read_synset_lemmas
from kg.paths import PathOptions, PathSearch
from kg.phenotypes import non_phenotype_terms
from kg.sets import TriplesFile, build_graph, source_files
from kg.stopwords import COMMON_WORDS
from kg.text import normalise

WORDNET_SYNSETS = "wordnet/wn30-synsets.tsv.gz"
WORDNET_RELATIONS = "wordnet/wn30-relations.tsv.gz"


class KnowledgeGraph:
    """A graph with its linker and path search: `link` documents at ingest, `link_query` and `explain` at search.

    >>> from kg.builder import GraphBuilder
    >>> b = GraphBuilder()
    >>> b.add_node("C1", "atorvastatin", "Compound"); b.add_node("D1", "hypertension", "Disease")
    >>> b.add_edge("C1", "treats", "D1")
    >>> kg = KnowledgeGraph(b.build())
    >>> query, document = kg.link_query("Do statins like atorvastatin help?"), kg.link("Hypertension in adults")
    >>> [path.render() for path in kg.explain(query, document)]
    ['atorvastatin —treats→ hypertension']
    """

    def __init__(
        self,
        graph: CompactGraph,
        linking: LinkingOptions | None = None,
        paths: PathOptions | None = None,
        common_words: Iterable[str] = COMMON_WORDS,
        linker: EntityLinker | None = None,
        word_key: Callable[[str], str] = inflection_key,
        search: PathSearch | None = None,
        embedding_linker: EmbeddingLinker | None = None,
        frequent_linker: EntityLinker | None = None,
        query_linker: StemmedLinker | None = None,
        pertainym_linker: PertainymLinker | None = None,
    ) -> None:
        """Wrap a built graph.

        Args:
            graph: the graph.
            linking: label filters (defaults: `LinkingOptions()`).
            paths: path search settings (defaults: `PathOptions()`).
            common_words: casefolded words that gene symbols may not be (see `LinkingOptions.symbol_kinds`).
            linker: a ready linker for this graph (skips building one); used by `without_frequent_labels`.
            word_key: how the query side's second path reduces words (`inflection_key`, or `snowball_key`).
            search: a ready path search over this graph (ignores `paths`); used by `without_frequent_labels`.
            embedding_linker: the query side's third path (see `with_embedding_linker`); None leaves it off.
            frequent_linker: the linker before `without_frequent_labels` (see `LinkingOptions.frequent_query_fallback`).
            query_linker: a ready stemmed linker for `linker`'s table (used by `without_frequent_labels`).
            pertainym_linker: the query side's adjective path (*cardiac* → heart); None leaves it off.
        """
        self.graph = graph
        self.linking = linking or LinkingOptions()
        self.linker = linker or EntityLinker(LabelTable.from_graph(graph, self.linking, frozenset(common_words)))
        self.word_key = word_key
        self.query_linker = query_linker or StemmedLinker(self.linker.table, word_key)
        self.symbol_linker = SymbolLinker(self.linker.table)
        self.path_search = search or PathSearch(graph, paths)
        self.embedding_linker = embedding_linker
        self.frequent_linker = frequent_linker
        self.pertainym_linker = pertainym_linker
        # concepts neither `link_query` returns nor `keeps` keeps (with `LinkingOptions.precise`)
        self.excluded = non_phenotype_terms(graph) if self.linking.precise else frozenset()

    def with_embedding_linker(
        self, encode: Encode, encoder_name: str, cache_dir: Path | None = None, options: EmbeddingOptions | None = None
    ) -> KnowledgeGraph:
        """A copy whose `link_query` also links query phrases to the concept names nearest by embedding.

        Args:
            encode: texts → (n, d) unit-length float32 rows (the serving encoder).
            encoder_name: names the encoder in the cache file's key.
            cache_dir: where the concept-name embeddings are cached (computed once: minutes on one CPU core).
            options: threshold, phrase lengths, embedded node kinds.
        """
        linker = EmbeddingLinker.for_graph(self.graph, self.linker.table, encode, encoder_name, cache_dir, options)
        return self._copy(self.linker, linker)

    def _copy(
        self,
        linker: EntityLinker,
        embedding_linker: EmbeddingLinker | None,
        frequent: EntityLinker | None = None,
        query_linker: StemmedLinker | None = None,
    ) -> KnowledgeGraph:
        return KnowledgeGraph(
            self.graph,
            self.linking,
            linker=linker,
            word_key=self.word_key,
            search=self.path_search,
            embedding_linker=embedding_linker,
            frequent_linker=frequent or self.frequent_linker,
            query_linker=query_linker or (self.query_linker if linker is self.linker else None),
            pertainym_linker=self.pertainym_linker,
        )

    @classmethod
    def load(
        cls,
        kg_dir: Path,
        names: Sequence[str] = ("biomedical",),
        cache_dir: Path | None = None,
        triples: Sequence[TriplesFile] = (),
        linking: LinkingOptions | None = None,
        paths: PathOptions | None = None,
    ) -> KnowledgeGraph:
        """Build the named graphs from `kg_dir`, or load them from `cache_dir` when their files are unchanged.

        Args:
            kg_dir: folder of the graph files (e.g. ``$GLASSBOX_DATA/kg``).
            names: graph sets or parts (``biomedical``, ``general``, ``hetionet``, ``wordnet`` ...).
            cache_dir: where built graphs are cached (the service passes ``GLASSBOX_HOME/kg``); None builds.
            triples: users' own `head<TAB>relation<TAB>tail` graphs to add.
            linking: label filters.
            paths: path search settings.

        Raises:
            UnknownGraphError: an unknown graph name.
            KgFormatError: a missing or malformed graph file.
        """
        sources = source_files(kg_dir, names, triples)

        def build() -> CompactGraph:
            return build_graph(kg_dir, names, triples)

        graph = cached_graph(cache_dir, "+".join(names), sources, build)[0] if cache_dir else build()
        options = linking or LinkingOptions()
        words: frozenset[str] = COMMON_WORDS
        adjectives = None
        common = bool(options.symbol_kinds & set(graph.kinds))
        with_pertainyms = options.query_pertainyms and (kg_dir / WORDNET_RELATIONS).is_file()
        if (kg_dir / WORDNET_SYNSETS).is_file() and (common or with_pertainyms):
            lemmas = read_synset_lemmas(kg_dir / WORDNET_SYNSETS)  # read once for both
            if common:
                words = words | wordnet_common_words(lemmas)
            if with_pertainyms:
                adjectives = PertainymLinker(pertainyms(lemmas, kg_dir / WORDNET_RELATIONS))
        return cls(graph, options, paths, words, pertainym_linker=adjectives)

    @property
    def num_nodes(self) -> int:
        """Nodes in the graph."""
        return self.graph.num_nodes

    @property
    def num_edges(self) -> int:
        """Edges in the graph."""
        return self.graph.num_edges

    @property
    def num_labels(self) -> int:
        """Distinct normalised labels the linker matches."""
        return len(self.linker.table.entries)

    def node_name(self, concept_id: str) -> str:
        """The readable name of a concept.

        Raises:
            KgError: the concept is not in the graph.
        """
        return self.graph.names[self.graph.node_index(concept_id)]

    def link(self, text: str) -> list[Mention]:
        """Mentions of concepts in a document's text: exact (normalised, whole-word) ones, gene symbols written with
        separators or Greek letters (`method` "symbol"), and with `LinkingOptions.document_stems` stemmed ones
        (`method` "stem"), each where no earlier kind overlaps; in text order."""
        found = self._exact_and_symbols(text)
        if not self.linking.document_stems:
            return found
        return self._add_stems(text, found)

    def _exact_and_symbols(self, text: str) -> list[Mention]:
        exact = self.linker.link(text)
        symbols = _outside(self.symbol_linker.link(text), exact)
        return _in_text_order([*exact, *symbols]) if symbols else exact

    def _add_stems(self, text: str, found: list[Mention]) -> list[Mention]:
        extra = _outside(self.query_linker.link(text), found)
        return _in_text_order([*found, *extra]) if extra else found

    def keeps(self, mention: Mention) -> bool:
        """True when this graph's linkers (after `without_frequent_labels`) would still find a mention that an
        unfiltered copy found: its label (exact), its stemmed key (`method` "stem") or its symbol form (`method`
        "symbol") is still matched; with `LinkingOptions.precise`, never a mention of an `excluded` concept."""
        if mention.concept_id in self.excluded:
            return False
        if mention.method == "stem":
            return self.query_linker.knows(mention.label)
        if mention.method == "symbol":
            return self.symbol_linker.knows(mention.label)
        return normalise(mention.label) in self.linker.table.entries

    def link_query(self, text: str) -> list[Mention]:
        """Exact mentions and gene symbols with separators or Greek letters (`method` "symbol"), then stemmed
        matches (`method` "stem") where no exact mention overlaps, then (with a pertainym linker) adjectives whose
        noun names a concept (`method` "pertainym": *cardiac* → heart) where neither overlaps, then (with an
        embedding linker; by default only when none of these found anything, see `EmbeddingOptions.fallback_only`)
        phrases nearest to a concept name (`method` "embedding") where none overlaps; in text order. With
        `LinkingOptions.frequent_query_fallback`, when all of these link nothing, the labels that the
        document-frequency filter dropped (`method` "frequent"). With `LinkingOptions.precise`, no path
        links an HPO term that is not a phenotype (`excluded`)."""
        exact = self._for_queries(self._exact_and_symbols(text))
        extra = self._for_queries(_outside(self.query_linker.link(text), exact))
        if self.pertainym_linker is not None:
            adjectives = self.pertainym_linker.link(text, self.linker.table)
            extra += self._for_queries(_outside(adjectives, [*exact, *extra]))
        linker = self.embedding_linker
        if linker is not None and not (linker.options.fallback_only and (exact or extra)):
            taken = sorted({(m.start, m.end) for m in [*exact, *extra]})
            extra += self._for_queries(linker.link(text, self.linker.table, taken))
        if not exact and not extra and self.frequent_linker is not None and self.linking.frequent_query_fallback:
            extra = [replace(m, method="frequent") for m in self._for_queries(self.frequent_linker.link(text))]
        return _in_text_order([*exact, *extra])

    def _for_queries(self, mentions: list[Mention]) -> list[Mention]:
        excluded = self.excluded
        return [m for m in mentions if m.concept_id not in excluded] if excluded else mentions

    def paths_between(
        self, query_concepts: Sequence[str], documents: Sequence[Sequence[str]]
    ) -> list[list[PathRationale]]:
        """The best paths from the query concepts to each document's concepts (ids; unknown ids are ignored).

        The query side is expanded once and reused for every document, which is what keeps 10 results cheap.
        """
        index = self.graph.index
        near = self.path_search.neighbourhood([index[c] for c in query_concepts if c in index])
        return self.path_search.best_paths_many(near, [[index[c] for c in doc if c in index] for doc in documents])

    def explain_many(
        self, query_mentions: Sequence[Mention], documents: Sequence[Sequence[Mention]]
    ) -> list[list[PathRationale]]:
        """`explain` for several documents (e.g. the 10 results of one query), best paths first for each."""
        query = [m.concept_id for m in query_mentions]
        return self.paths_between(query, [[m.concept_id for m in doc] for doc in documents])

    def explain(self, query_mentions: Sequence[Mention], document_mentions: Sequence[Mention]) -> list[PathRationale]:
        """The best paths (default ≤ 3 edges, best 3) from the query's concepts to the document's concepts.

        A concept that the query and the document both mention comes first, as a path with no edges (a shared
        concept, `PathRationale.shared`, score 1), unless `PathOptions.shared_concepts` is off.

        >>> from kg.builder import GraphBuilder
        >>> b = GraphBuilder()
        >>> b.add_node("C1", "atorvastatin", "Compound"); b.add_node("D1", "hypertension", "Disease")
        >>> b.add_edge("C1", "treats", "D1")
        >>> kg = KnowledgeGraph(b.build())
        >>> query = kg.link_query("Atorvastatin for hypertension?")
        >>> [p.render() for p in kg.explain(query, kg.link("Hypertension in adults"))]
        ['hypertension (in query and document)']
        """
        return self.explain_many(query_mentions, [document_mentions])[0]

    def without_frequent_labels(
        self, texts: Iterable[str], max_document_frequency: float | None = None
    ) -> KnowledgeGraph:
        """A copy whose linkers drop labels found in more than `max_document_frequency` of `texts`, and stemmed keys
        matched in more than that share (so "tumors" cannot bring back a dropped "tumor").

        Args:
            texts: a document collection (e.g. the corpus being ingested).
            max_document_frequency: the largest share of texts a label may occur in (default from `LinkingOptions`).

        Raises:
            ValueError: the share is not in (0, 1].
        """
        share = self.linking.max_document_frequency if max_document_frequency is None else max_document_frequency
        texts = list(texts)
        filtered = self.linker.without_frequent_labels(texts, share)
        stemmed = StemmedLinker(filtered.table, self.word_key).without_frequent_keys(texts, share)
        return self._copy(filtered, self.embedding_linker, self.frequent_linker or self.linker, stemmed)


def _outside(mentions: Iterable[Mention], taken: Sequence[Mention]) -> list[Mention]:
    """The mentions that overlap none of `taken`."""
    return [m for m in mentions if all(m.end <= t.start or m.start >= t.end for t in taken)]


def _in_text_order(mentions: Iterable[Mention]) -> list[Mention]:
    return sorted(mentions, key=lambda m: (m.start, m.end, m.concept_id))
