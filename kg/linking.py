"""Entity linking: whole-word Aho-Corasick matching of normalised names and synonyms, with exact char spans."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import ahocorasick  # type: ignore[import-not-found]
import snowballstemmer  # type: ignore[import-untyped]

from kg.base import Mention
from kg.graph import CompactGraph
from kg.stopwords import COMMON_WORDS, STOPWORDS
from kg.text import normalise, normalise_with_offsets

_TOKEN = re.compile(r"[^\W_]+")
_LETTERS = re.compile(r"(?<![\w\-])[^\W\d_]+(?![\w\-])")  # a word of letters only, not part of a hyphenated one
# Between two words of a stemmed match the text may hold only spaces and apostrophes (not ", . ; ( )").
_JOINER = re.compile(r"[ '\u2019]+")
# Bumped whenever the linker's output for a text changes (stores of linked documents are keyed by it).
LINKER_VERSION = 5
_SYMBOL_GAP = re.compile(r"[\s\-\u2010-\u2015]+")
_IRREGULAR = {"mice": "mouse", "men": "man", "women": "woman", "children": "child", "feet": "foot", "teeth": "tooth"}


def inflection_key(word: str) -> str:
    """A conservative word key: plurals and British spellings fold onto one form; meanings stay apart.

    >>> [inflection_key(w) for w in ["statins", "diseases", "disease", "viruses", "virus", "therapies"]]
    ['statin', 'diseas', 'diseas', 'virus', 'virus', 'therapy']
    >>> [inflection_key(w) for w in ["tumours", "tumor", "anaemia", "anemia", "mice"]]
    ['tumor', 'tumor', 'anemia', 'anemia', 'mous']
    """
    word = _IRREGULAR.get(word, word)
    if len(word) > 4 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    if len(word) > 4 and word.endswith("e") and not word.endswith("ee"):
        word = word[:-1]
    if len(word) > 5:
        word = word.replace("ae", "e").replace("oe", "e")
        if word.endswith("our"):
            word = word[:-3] + "or"
        word = word.replace("isation", "ization")
    return word


def symbol_case_matches(found: str, symbol: str) -> bool:
    """True when text `found` writes gene symbol `symbol` as a symbol: its own case, or the mouse style (first letter
    capital, the rest small: ``Bcl2`` for ``BCL2``); hyphens and spaces are ignored. Other case forms are mostly
    other things: ``polI`` (DNA polymerase I) is not the gene POLI, ``APCs`` (antigen-presenting cells) not APCS.

    >>> [symbol_case_matches(t, s) for t, s in [("BCL2", "BCL2"), ("Bcl2", "BCL2"), ("polI", "POLI"), ("APCs", "APCS")]]
    [True, True, False, False]
    >>> symbol_case_matches("GATA-3", "GATA3"), symbol_case_matches("C1orf112", "C1orf112")
    (True, True)
    """
    found, symbol = _SYMBOL_GAP.sub("", found), _SYMBOL_GAP.sub("", symbol)
    return found == symbol or (found[:1] == symbol[:1] and found[1:] == symbol[1:].lower())


# Greek letters in gene names map to the Latin capitals HGNC symbols use: IFN-gamma = IFNG, IL-1beta = IL1B.
_GREEK = {"\u03b1": "A", "\u03b2": "B", "\u03b3": "G", "\u03b4": "D", "\u03b5": "E", "\u03ba": "K"}
# A word of letters and digits, or several joined by hyphens or slashes, standing alone (not inside a longer word).
_SYMBOL_SPAN = re.compile(r"(?<![\w\-/])[^\W_]+(?:[\-/\u2010\u2011][^\W_]+)*(?![\w\-/])")


def symbol_form(text: str) -> str:
    """A gene name as written in text (``IL-10``, ``IFN-gamma`` with the letter) in symbol form: separators
    dropped, Greek letters as Latin capitals; case is kept (see `symbol_case_matches`).

    >>> [symbol_form(t) for t in ["IL-10", "IFN-\u03b3", "GSK-3\u03b2", "C/EBP\u03b1", "Bcl-2"]]
    ['IL10', 'IFNG', 'GSK3B', 'CEBPA', 'Bcl2']
    """
    return "".join(_GREEK.get(char, char) for char in re.sub(r"[\s\-/\u2010-\u2015]+", "", text))


class SymbolLinker:
    """Gene symbols written with hyphens, slashes or Greek letters (``IL-10`` → IL10, ``IFN-gamma`` written with
    the letter → IFNG), which exact matching misses; `method` "symbol", the label is the text at the span.

    >>> table = LabelTable({"il10": ("IL10", ("G1",)), "ifng": ("IFNG", ("G2",))}, frozenset({"il10", "ifng"}))
    >>> [(m.concept_id, m.label) for m in SymbolLinker(table).link("IL-10 and IFN-\u03b3, not il-10 or IL10.")]
    [('G1', 'IL-10'), ('G2', 'IFN-\u03b3')]
    """

    def __init__(self, table: LabelTable) -> None:
        self._symbols = {symbol_form(table.entries[key][0]).upper(): table.entries[key] for key in table.symbols}

    def knows(self, text: str) -> bool:
        """True when a text's symbol form names a gene this linker matches."""
        return symbol_form(text).upper() in self._symbols

    def link(self, text: str) -> list[Mention]:
        """Mentions of genes written with a separator or a Greek letter, in text order (plain forms are left to
        exact matching)."""
        mentions: list[Mention] = []
        if not self._symbols:
            return mentions
        for match in _SYMBOL_SPAN.finditer(text):
            span = match.group()
            if span.isalnum() and not any(char in _GREEK for char in span):
                continue
            form = symbol_form(span)
            found = self._symbols.get(form.upper())
            if found is not None and symbol_case_matches(form, symbol_form(found[0])):
                mentions.extend(Mention(cid, span, match.start(), match.end(), "symbol") for cid in found[1])
        return mentions


def snowball_key(word: str) -> str:
    """Snowball (Porter2) English stem: more recall than `inflection_key`, much less precision (general → generalized).

    >>> snowball_key("diabetic"), snowball_key("diabetes")
    ('diabet', 'diabet')
    """
    return str(snowballstemmer.stemmer("english").stemWord(word))


@dataclass(frozen=True)
class LinkingOptions:
    """Which labels the linker keeps.

    Attributes:
        min_label_chars: shortest label kept (normalised characters).
        max_concepts_per_label: a label naming more concepts than this is too ambiguous and dropped.
        symbol_kinds: node kinds whose labels are dropped when they are common words (gene symbols such as CAT).
        max_document_frequency: with `without_frequent_labels`, the largest share of documents a label may occur in.
        document_stems: `KnowledgeGraph.link` (documents) adds stemmed matches (`method` "stem") where no exact
            match overlaps, as `link_query` does for queries ("tumours" in a document finds *tumor*).
        frequent_query_fallback: `KnowledgeGraph.link_query` links a query's labels that the document-frequency
            filter dropped (exactly, `method` "frequent") when no other path links anything.
        precise: no HPO term that is not a phenotype (*Moderate*, *Very rare*, *Chronic*: `kg.phenotypes`) is
            linked in queries (`KnowledgeGraph.link_query`) or kept from documents' mentions (`KnowledgeGraph.keeps`;
            `link` itself is unchanged, so stored mentions serve both settings); pair it with
            `EmbeddingOptions.require_lexical_match`.
        query_pertainyms: `KnowledgeGraph.load` adds the adjective path for queries (`PertainymLinker`) when the
            WordNet files are in the graph folder.
    """

    min_label_chars: int = 3
    max_concepts_per_label: int = 5
    symbol_kinds: frozenset[str] = frozenset({"Gene"})
    max_document_frequency: float = 0.05
    document_stems: bool = True
    frequent_query_fallback: bool = True
    precise: bool = False
    query_pertainyms: bool = True


@dataclass(frozen=True)
class LabelTable:
    """Normalised label → (a readable form of it, the concepts it names); `symbols` are labels of symbol kinds
    (gene symbols), which only ever match exactly: stemming "life" must not find the gene LIF."""

    entries: dict[str, tuple[str, tuple[str, ...]]]
    symbols: frozenset[str] = frozenset()

    @classmethod
    def from_graph(
        cls, graph: CompactGraph, options: LinkingOptions, common_words: Collection[str] = COMMON_WORDS
    ) -> LabelTable:
        """The labels of every node that has at least one edge, after the length, stop-word, common-word and
        ambiguity filters.

        Args:
            graph: the graph.
            options: the filter settings.
            common_words: casefolded words that a `symbol_kinds` label may not be (e.g. WordNet's lemmas).
        """
        concepts: dict[str, list[str]] = {}
        readable: dict[str, str] = {}
        symbols: set[str] = set()
        degree = graph.degree
        for index in range(graph.num_nodes):
            if not degree[index]:
                continue
            node_id, kind = graph.node_ids[index], graph.kinds[index]
            for label in (graph.names[index], *graph.synonyms[index]):
                key = normalise(label)
                if len(key) < options.min_label_chars or key in STOPWORDS or not any(c.isalpha() for c in key):
                    continue
                if kind in options.symbol_kinds:
                    if key in common_words:
                        continue
                    symbols.add(key)
                ids = concepts.setdefault(key, [])
                if node_id not in ids:
                    ids.append(node_id)
                readable.setdefault(key, label)
        entries = {
            key: (readable[key], tuple(ids))
            for key, ids in concepts.items()
            if len(ids) <= options.max_concepts_per_label
        }
        return cls(entries, frozenset(symbols & entries.keys()))

    def without(self, keys: Collection[str]) -> LabelTable:
        """The table less the given normalised labels."""
        kept = {key: value for key, value in self.entries.items() if key not in keys}
        return LabelTable(kept, self.symbols & kept.keys())


@dataclass(frozen=True)
class _Match:
    start: int
    end: int
    key: str


class EntityLinker:
    """Finds graph concepts in text: whole words only, longest non-overlapping matches, spans into the original.

    >>> table = LabelTable({"hypertension": ("hypertension", ("D1",)), "blood pressure": ("blood pressure", ("P1",))})
    >>> linker = EntityLinker(table)
    >>> text = "High Blood-Pressure, i.e. hypertensions or hypertension."
    >>> [(m.concept_id, m.start, m.end) for m in linker.link(text)]
    [('P1', 5, 19), ('D1', 43, 55)]
    """

    def __init__(self, table: LabelTable) -> None:
        self.table = table
        self._automaton = _automaton(table.entries)

    def _matches(self, normalised: str) -> list[_Match]:
        """Whole-word matches in a normalised text, overlapping ones included."""
        found: list[_Match] = []
        if not self.table.entries:
            return found
        length = len(normalised)
        for last, key in self._automaton.iter(normalised):
            start = last - len(key) + 1
            if start > 0 and normalised[start - 1].isalnum():
                continue
            if last + 1 < length and normalised[last + 1].isalnum():
                continue
            found.append(_Match(start, last + 1, key))
        return found

    def link(self, text: str) -> list[Mention]:
        """Mentions of concepts in `text`, in text order; a label naming several concepts gives one per concept.

        A gene symbol matches only when written as one (`symbol_case_matches`).
        """
        normalised, origins = normalise_with_offsets(text)
        mentions: list[Mention] = []
        symbols, entries = self.table.symbols, self.table.entries
        matches = [
            match
            for match in self._matches(normalised)
            if match.key not in symbols
            or symbol_case_matches(text[origins[match.start] : origins[match.end - 1] + 1], entries[match.key][0])
        ]
        for match in _longest_first(matches):
            label, ids = entries[match.key]
            start, end = origins[match.start], origins[match.end - 1] + 1
            mentions.extend(Mention(concept_id, label, start, end) for concept_id in ids)
        return mentions

    def document_frequency(self, texts: Iterable[str]) -> tuple[Counter[str], int]:
        """How many of `texts` contain each normalised label (whole words, overlaps counted), and how many texts."""
        counts: Counter[str] = Counter()
        total = 0
        for text in texts:
            total += 1
            counts.update({match.key for match in self._matches(normalise_with_offsets(text)[0])})
        return counts, total

    def without_frequent_labels(self, texts: Iterable[str], max_document_frequency: float) -> EntityLinker:
        """A linker without the labels found in more than `max_document_frequency` of `texts` (e.g. "patients").

        Raises:
            ValueError: `max_document_frequency` is not in (0, 1].
        """
        if not 0 < max_document_frequency <= 1:
            raise ValueError(f"max_document_frequency must be in (0, 1], got {max_document_frequency}")
        counts, total = self.document_frequency(texts)
        frequent = {key for key, count in counts.items() if count > max_document_frequency * total}
        return EntityLinker(self.table.without(frequent))


class StemmedLinker:
    """The query side's second path: labels match when their words match after reduction to a word key.

    With the default `inflection_key`, finds e.g. "statins" for "statin", "tumours" for "tumor" or "diabetic
    neuropathies" for "diabetic neuropathy". Each mention's label is the text at its span (`method` "stem"), so it is
    faithful by construction. Labels written in capitals (abbreviations such as ``ODD``, ``AIDS``) take no part.

    >>> table = LabelTable({"statin": ("statin", ("C1",)), "alzheimer's disease": ("Alzheimer's disease", ("D1",))})
    >>> [(m.concept_id, m.label) for m in StemmedLinker(table).link("Statins and Alzheimer's diseases")]
    [('C1', 'Statins'), ('D1', "Alzheimer's diseases")]
    """

    def __init__(self, table: LabelTable, word_key: Callable[[str], str] = inflection_key) -> None:
        self._word_key = word_key
        entries: dict[str, tuple[str, tuple[str, ...]]] = {}
        memo: dict[str, str] = {}
        for key, (label, ids) in table.entries.items():
            if key in table.symbols or label.isupper():  # abbreviations: "ODD" must not find "odds", "AIDS" "aid"
                continue
            stemmed = " ".join(self._label_stems(_TOKEN.findall(key), memo))
            if len(stemmed) < 3:
                continue
            if stemmed in entries:
                merged = tuple(dict.fromkeys((*entries[stemmed][1], *ids)))
                entries[stemmed] = (entries[stemmed][0], merged)
            else:
                entries[stemmed] = (label, ids)
        self._set_entries(entries)

    def _set_entries(self, entries: dict[str, tuple[str, tuple[str, ...]]]) -> None:
        self._entries = entries
        self._ids = {key: ids for key, (_label, ids) in entries.items()}
        self._automaton = _automaton(entries)

    def key(self, text: str) -> str:
        """The stemmed key of a text (e.g. a stem mention's span): its words' keys joined by spaces."""
        return " ".join(self._stems(_TOKEN.findall(normalise(text))))

    def knows(self, text: str) -> bool:
        """True when a text's stemmed key is one this linker matches (after `without_frequent_keys`)."""
        return self.key(text) in self._ids

    def without_frequent_keys(self, texts: Iterable[str], max_document_frequency: float) -> StemmedLinker:
        """A copy without the stemmed keys matched in more than `max_document_frequency` of `texts`: the
        document-frequency filter on the keys themselves (``tumors`` and ``tumour`` both count for ``tumor``).

        Raises:
            ValueError: `max_document_frequency` is not in (0, 1].
        """
        if not 0 < max_document_frequency <= 1:
            raise ValueError(f"max_document_frequency must be in (0, 1], got {max_document_frequency}")
        counts: Counter[str] = Counter()
        total = 0
        for text in texts:
            total += 1
            counts.update({match.key for match in self._key_matches(text)[0]})
        copy = object.__new__(StemmedLinker)
        copy._word_key = self._word_key
        limit = max_document_frequency * total
        copy._set_entries({key: value for key, value in self._entries.items() if counts[key] <= limit})
        return copy

    def _stems(self, words: Sequence[str]) -> list[str]:
        return [self._word_key(word) for word in words]

    def _label_stems(self, words: Sequence[str], memo: dict[str, str]) -> list[str]:
        out = []
        for word in words:
            key = memo.get(word)
            if key is None:
                key = memo[word] = self._word_key(word)
            out.append(key)
        return out

    def _key_matches(self, text: str) -> tuple[list[_Match], list[int]]:
        """Matches (character offsets into the normalised text, stemmed key) and the offset map to `text`."""
        normalised, origins = normalise_with_offsets(text)
        if not self._ids:
            return [], origins
        tokens = list(_TOKEN.finditer(normalised))
        stems = self._stems([token.group() for token in tokens])
        starts, position = {}, 0
        for index, stem in enumerate(stems):
            starts[position] = index
            position += len(stem) + 1
        stemmed = " ".join(stems)
        matches = []
        for last, key in self._automaton.iter(stemmed):
            start = last - len(key) + 1
            first = starts.get(start)
            end_token = starts.get(last + 2) if last + 1 < len(stemmed) else len(tokens)
            if first is None or end_token is None:
                continue
            words = tokens[first:end_token]
            gaps = (normalised[a.end() : b.start()] for a, b in pairwise(words))
            if all(_JOINER.fullmatch(gap) for gap in gaps):
                matches.append(_Match(words[0].start(), words[-1].end(), key))
        return matches, origins

    def link(self, text: str) -> list[Mention]:
        """Mentions whose words match a label's words after stemming, longest non-overlapping first."""
        matches, origins = self._key_matches(text)
        mentions: list[Mention] = []
        for match in _longest_first(matches):
            start, end = origins[match.start], origins[match.end - 1] + 1
            mentions.extend(Mention(cid, text[start:end], start, end, "stem") for cid in self._ids[match.key])
        return mentions


def _automaton(entries: dict[str, tuple[str, tuple[str, ...]]]) -> ahocorasick.Automaton:
    automaton = ahocorasick.Automaton()
    for key in entries:
        automaton.add_word(key, key)
    if entries:
        automaton.make_automaton()
    return automaton


def _longest_first(matches: list[_Match]) -> list[_Match]:
    """The longest matches that do not overlap a longer (or equally long, earlier) one, in text order."""
    taken: list[_Match] = []
    for match in sorted(matches, key=lambda m: (m.start - m.end, m.start)):
        if all(match.end <= other.start or match.start >= other.end for other in taken):
            taken.append(match)
    return sorted(taken, key=lambda m: m.start)


class PertainymLinker:
    """The query side's adjective path: an adjective links to the concept that the noun it pertains to names
    (`kg.loaders.wordnet.pertainyms`: *cardiac* → heart, *hepatic* → liver), when the current table keeps that
    noun (not a gene symbol); `method` "pertainym", the label is the adjective as written.

    >>> table = LabelTable({"heart": ("heart", ("A1",)), "liver": ("liver", ("A2",))})
    >>> linker = PertainymLinker({"cardiac": ("heart", "bosom"), "hepatic": ("liver",), "renal": ("kidney",)})
    >>> [(m.concept_id, m.label, m.start) for m in linker.link("Cardiac and renal, not hepatically", table)]
    [('A1', 'Cardiac', 0)]
    """

    def __init__(self, pertainyms: Mapping[str, Sequence[str]]) -> None:
        self._nouns = {word: tuple(normalise(noun) for noun in nouns) for word, nouns in pertainyms.items()}

    def __len__(self) -> int:
        return len(self._nouns)

    def link(self, text: str, table: LabelTable) -> list[Mention]:
        """Mentions of the adjectives in `text` whose noun `table` keeps (its first such lemma), in text order."""
        mentions: list[Mention] = []
        for match in _LETTERS.finditer(text):
            for key in self._nouns.get(match.group().casefold(), ()):
                if key in table.entries and key not in table.symbols:
                    ids = table.entries[key][1]
                    mentions.extend(Mention(cid, match.group(), match.start(), match.end(), "pertainym") for cid in ids)
                    break
        return mentions
