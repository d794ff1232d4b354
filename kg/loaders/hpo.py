"""HPO annotations: disease → phenotype (`phenotype.hpoa`) and gene → phenotype (`genes_to_phenotype.txt`)."""

from __future__ import annotations

from pathlib import Path

from kg.builder import GraphBuilder
from kg.loaders._rows import format_error, read_tsv

HAS_PHENOTYPE = "has phenotype"
GENE_PHENOTYPE = "is associated with phenotype"
HPOA_COLUMNS = 12


def load_phenotype_annotations(builder: GraphBuilder, path: Path) -> None:
    """Add `disease —has phenotype→ HP term` for each phenotype row (aspect P) that is not negated (qualifier NOT).

    Disease nodes take their id (``OMIM:619340``) and name from the file; HP terms are expected from `hp.obo`.

    Raises:
        KgFormatError: a row with fewer than 12 fields, or an hpo_id that is not ``HP:...``.
    """
    for number, fields in read_tsv(path, columns=HPOA_COLUMNS, header="database_id", exact=False):
        disease, name, qualifier, hpo_id, aspect = fields[0], fields[1], fields[2], fields[3], fields[10]
        if not hpo_id.startswith("HP:"):
            raise format_error(path, number, f"hpo_id {hpo_id!r} is not an HP term")
        if aspect != "P" or qualifier == "NOT":
            continue
        builder.add_node(disease, name, "Disease")
        builder.add_edge(disease, HAS_PHENOTYPE, hpo_id)


def load_genes_to_phenotype(builder: GraphBuilder, path: Path) -> None:
    """Add `Gene::<ncbi id> —is associated with phenotype→ HP term` (ids as Hetionet's, so genes merge).

    Raises:
        KgFormatError: a row with fewer than 4 fields, or a gene id that is not a number.
    """
    for number, fields in read_tsv(path, columns=4, header="ncbi_gene_id", exact=False):
        gene, symbol, hpo_id, hpo_name = fields[0], fields[1], fields[2], fields[3]
        if not gene.isdigit():
            raise format_error(path, number, f"ncbi_gene_id {gene!r} is not a number")
        builder.add_node(f"Gene::{gene}", symbol, "Gene")
        builder.add_node(hpo_id, hpo_name, "Phenotype")
        builder.add_edge(f"Gene::{gene}", GENE_PHENOTYPE, hpo_id)
