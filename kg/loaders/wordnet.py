"""WordNet 3.0 TSVs: synsets (lemmas as names and synonyms) and pointers, one direction of each inverse pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from kg.builder import GraphBuilder
from kg.loaders._rows import format_error, read_tsv

# WordNet lists both directions of inverse pointers; one readable direction of each is kept (paths walk edges
# both ways anyway). Symmetric pointers are kept once per synset pair.
RELATIONS = MappingProxyType(
    {
        "hypernym": "is a kind of",
        "instance_hypernym": "is an instance of",
        "member_holonym": "is a member of",
        "part_holonym": "is a part of",
        "substance_holonym": "is a substance of",
        "topic_domain": "has topic",
        "region_domain": "has region",
        "usage_domain": "has usage",
        "entailment": "entails",
        "cause": "causes",
        "attribute": "is an attribute of",
        "pertainym": "pertains to",
        "participle_of": "is a participle of",
    }
)
SYMMETRIC = MappingProxyType(
    {
        "derivationally_related": "is derivationally related to",
        "similar_to": "is similar to",
        "antonym": "is the opposite of",
        "also_see": "see also",
        "verb_group": "is in a verb group with",
    }
)
INVERSES = frozenset(
    {
        "hyponym",
        "instance_hyponym",
        "member_meronym",
        "part_meronym",
        "substance_meronym",
        "member_of_topic_domain",
        "member_of_region_domain",
        "member_of_usage_domain",
    }
)
_SS_TYPES = frozenset("nvasr")


def _synset(synset_id: str) -> str:
    return f"wn:{synset_id}"


def read_synset_lemmas(path: Path) -> dict[str, list[str]]:
    """Synset id → its lemmas (``|``-separated in the file, underscores already spaces).

    Raises:
        KgFormatError: a row without 5 fields or a synset id that is not ``<offset>-<n|v|a|r>``.
    """
    lemmas = {}
    for number, (synset_id, ss_type, _lexname, words, _gloss) in read_tsv(path, columns=5, header="synset_id"):
        offset, _, pos = synset_id.partition("-")
        if not offset.isdigit() or pos not in _SS_TYPES or ss_type not in _SS_TYPES:
            raise format_error(path, number, f"synset id {synset_id!r} is not '<offset>-<n|v|a|r>'")
        lemmas[synset_id] = [word for word in words.split("|") if word]
    return lemmas


def common_words(lemmas: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Every single-word lemma of `read_synset_lemmas`, casefolded: the common-word list for the ambiguity filter."""
    return frozenset(word.casefold() for words in lemmas.values() for word in words if " " not in word)


def load_wordnet(builder: GraphBuilder, synsets: Path, relations: Path) -> None:
    """Add WordNet synsets (`wn:<id>`, named by their first lemma) and their pointers as readable relations.

    Raises:
        KgFormatError: a malformed row, or an unknown pointer name.
    """
    lemmas = read_synset_lemmas(synsets)
    for synset_id, words in lemmas.items():
        if words:
            builder.add_node(_synset(synset_id), words[0], "Synset", words[1:])
    for number, fields in read_tsv(relations, columns=4, header="source", exact=False):
        source, pointer, target = fields[0], fields[1], fields[2]
        if pointer in INVERSES:
            continue
        if source not in lemmas or target not in lemmas:
            raise format_error(relations, number, f"pointer between unknown synsets {source!r} → {target!r}")
        if pointer in SYMMETRIC:
            if source < target:
                builder.add_edge(_synset(source), SYMMETRIC[pointer], _synset(target))
        elif pointer in RELATIONS:
            builder.add_edge(_synset(source), RELATIONS[pointer], _synset(target))
        else:
            raise format_error(relations, number, f"unknown pointer {pointer!r}")


def pertainyms(lemmas: Mapping[str, Sequence[str]], relations: Path) -> dict[str, tuple[str, ...]]:
    """Adjective (casefolded) → the lemmas of the one noun synset WordNet says it pertains to (`pertainym`
    pointers: *cardiac* → heart, *hepatic* → liver, *vaginal* → vagina). An adjective that pertains to several
    noun synsets (*mental*: mind, and chin) is left out: which one the text means is unknown.

    Args:
        lemmas: `read_synset_lemmas` of the synsets file.
        relations: the pointers file.

    Raises:
        KgFormatError: a malformed row, or a pointer between unknown synsets.
    """
    targets: dict[str, set[str]] = {}
    for number, fields in read_tsv(relations, columns=4, header="source", exact=False):
        source, pointer, target = fields[0], fields[1], fields[2]
        if pointer != "pertainym" or not source.endswith("-a") or not target.endswith("-n"):
            continue
        if source not in lemmas or target not in lemmas:
            raise format_error(relations, number, f"pointer between unknown synsets {source!r} → {target!r}")
        word = fields[4].casefold() if len(fields) > 4 else ""
        if not word:
            raise format_error(relations, number, "a pertainym pointer without its source word")
        targets.setdefault(word, set()).add(target)
    return {word: tuple(lemmas[next(iter(nouns))]) for word, nouns in sorted(targets.items()) if len(nouns) == 1}
