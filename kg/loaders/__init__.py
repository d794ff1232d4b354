"""One loader per graph file format; each adds nodes and edges to a `GraphBuilder`."""

from kg.loaders.conceptnet import load_conceptnet
from kg.loaders.hetionet import load_hetionet, read_metaedges
from kg.loaders.hpo import load_genes_to_phenotype, load_phenotype_annotations
from kg.loaders.obo import OboTerm, load_obo, read_obo
from kg.loaders.triples import load_triples
from kg.loaders.wordnet import common_words, load_wordnet, pertainyms, read_synset_lemmas

__all__ = [
    "OboTerm",
    "common_words",
    "load_conceptnet",
    "load_genes_to_phenotype",
    "load_hetionet",
    "load_obo",
    "load_phenotype_annotations",
    "load_triples",
    "load_wordnet",
    "pertainyms",
    "read_metaedges",
    "read_obo",
    "read_synset_lemmas",
]
