"""HPO terms that are not phenotypes: the branches beside *Phenotypic abnormality* (clinical modifiers such as
*Moderate* or *Distal*, frequencies such as *Very rare*, modes of inheritance, clinical course, past medical
history). Linked in a query they are rarely what it is about."""

from __future__ import annotations

import numpy as np

from kg.graph import CompactGraph
from kg.loaders.obo import IS_A

PHENOTYPE_ROOT = "HP:0000118"  # Phenotypic abnormality
HPO_PREFIX = "HP:"


def non_phenotype_terms(graph: CompactGraph, root: str = PHENOTYPE_ROOT) -> frozenset[str]:
    """Ids of the HPO terms (``HP:`` ids) that do not descend from `root` by `is a` edges; empty when the graph
    has no `root`.

    >>> from kg.builder import GraphBuilder
    >>> b = GraphBuilder()
    >>> for term, name in [("HP:0000118", "Phenotypic abnormality"), ("HP:1", "Fever"), ("HP:2", "Moderate")]:
    ...     b.add_node(term, name, "Phenotype")
    >>> b.add_node("HP:0000001", "All", "Phenotype")
    >>> b.add_edge("HP:1", IS_A, "HP:0000118"); b.add_edge("HP:0000118", IS_A, "HP:0000001")
    >>> b.add_edge("HP:2", IS_A, "HP:0000001")
    >>> sorted(non_phenotype_terms(b.build()))
    ['HP:0000001', 'HP:2']
    """
    index = graph.index
    if root not in index or IS_A not in graph.relations:
        return frozenset()
    is_a = graph.relations.index(IS_A)
    mask = graph.relation_ids == is_a
    children: dict[int, list[int]] = {}
    for child, parent in zip(graph.heads[mask].tolist(), graph.tails[mask].tolist(), strict=True):
        children.setdefault(parent, []).append(child)
    below = np.zeros(graph.num_nodes, dtype=bool)
    below[index[root]] = True
    stack = [index[root]]
    while stack:
        for child in children.get(stack.pop(), ()):
            if not below[child]:
                below[child] = True
                stack.append(child)
    return frozenset(
        node for position, node in enumerate(graph.node_ids) if node.startswith(HPO_PREFIX) and not below[position]
    )
