"""Merge nodes that two biomedical graphs both hold (DO ↔ Hetionet diseases, HPO ↔ Hetionet side effects)."""

from __future__ import annotations

from collections import defaultdict

from kg.builder import GraphBuilder


def merge_cross_references(builder: GraphBuilder) -> dict[str, int]:
    """Merge the same concept held by two graphs into one node; return how many merges of each sort.

    - ``DOID:x`` (Disease Ontology) into Hetionet's ``Disease::DOID:x`` (DO names become synonyms there).
    - Hetionet ``Side Effect::<UMLS CUI>`` into the one HPO term with that ``UMLS:`` xref (skipped when several).
    - HPO annotation diseases ``OMIM:n`` into the one DO term with that ``OMIM:`` xref (skipped unless one-to-one).

    Genes need no merge: `genes_to_phenotype` rows already use Hetionet's ``Gene::<entrez>`` ids.
    """
    counts = {"disease_ontology": 0, "side_effect": 0, "omim": 0}
    for node_id in builder.node_ids():
        if node_id.startswith("DOID:") and builder.has_node(f"Disease::{node_id}"):
            builder.merge(node_id, into=f"Disease::{node_id}")
            counts["disease_ontology"] += 1
    by_umls: dict[str, list[str]] = defaultdict(list)
    by_omim: dict[str, list[str]] = defaultdict(list)
    for node_id, xrefs in builder.xrefs().items():
        for xref in xrefs:
            if node_id.startswith("HP:") and xref.startswith("UMLS:"):
                by_umls[xref.removeprefix("UMLS:")].append(node_id)
            elif node_id.startswith("DOID:") and xref.startswith("OMIM:"):
                by_omim[xref].append(node_id)
    for cui, terms in by_umls.items():
        side_effect = f"Side Effect::{cui}"
        if len(terms) == 1 and builder.has_node(side_effect):
            builder.merge(side_effect, into=terms[0])
            counts["side_effect"] += 1
    omim_of: dict[str, list[str]] = defaultdict(list)
    for omim, terms in by_omim.items():
        for term in terms:
            omim_of[term].append(omim)
    for omim, terms in by_omim.items():
        if len(terms) == 1 and len(omim_of[terms[0]]) == 1 and builder.has_node(omim):
            # a DO term already merged into Hetionet is followed there by GraphBuilder.build
            builder.merge(omim, into=terms[0])
            counts["omim"] += 1
    return counts
