"""Every KG file format loads from small fixtures; malformed lines raise KgFormatError naming file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from kg import GraphBuilder, KgFormatError, TriplesFile, UnknownGraphError, build_graph, resolve_parts
from kg.crosslinks import merge_cross_references
from kg.loaders import (
    common_words,
    load_conceptnet,
    load_genes_to_phenotype,
    load_hetionet,
    load_obo,
    load_phenotype_annotations,
    load_triples,
    load_wordnet,
    read_metaedges,
    read_synset_lemmas,
)


def write(path: Path, text: str) -> Path:
    """Write a fixture, gzipped when the name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


METAEDGES = (
    "metaedge\tabbreviation\tedges\n"
    "Compound - treats - Disease\tCtD\t755\n"
    "Gene > regulates > Gene\tGr>G\t1\n"
    "Compound - binds - Gene\tCbG\t1\n"
)
NODES = (
    "id\tname\tkind\n"
    "Compound::DB01076\tAtorvastatin\tCompound\n"
    "Disease::DOID:10763\thypertension\tDisease\n"
    "Gene::3156\tHMGCR\tGene\n"
    "Side Effect::C0020538\tHypertension\tSide Effect\n"
)
SIF = "source\tmetaedge\ttarget\nCompound::DB01076\tCtD\tDisease::DOID:10763\nCompound::DB01076\tCbG\tGene::3156\n"
DO = """format-version: 1.2

[Term]
id: DOID:10763
name: hypertension
synonym: "HTN" EXACT []
synonym: "high blood pressure" RELATED []
is_a: DOID:1287 ! cardiovascular system disease

[Term]
id: DOID:1287
name: cardiovascular system disease
xref: OMIM:100000

[Term]
id: DOID:9999
name: old term
is_obsolete: true

[Typedef]
id: part_of
name: part of
"""
HP = """format-version: 1.2

[Term]
id: HP:0000822
name: Hypertension
synonym: "High blood pressure" EXACT layperson []
xref: UMLS:C0020538

[Term]
id: HP:0000118
name: Phenotypic abnormality
"""
HPOA = (
    "#description: test\n"
    "database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\tbio\n"
    "OMIM:100000\tSome syndrome\t\tHP:0000822\tPMID:1\tPCS\t\t\t\t\tP\tx\n"
    "OMIM:100000\tSome syndrome\tNOT\tHP:0000118\tPMID:1\tPCS\t\t\t\t\tP\tx\n"
    "OMIM:100000\tSome syndrome\t\tHP:0000118\tPMID:1\tPCS\t\t\t\t\tI\tx\n"
)
G2P = (
    "ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id\n"
    "3156\tHMGCR\tHP:0000822\tHypertension\t-\tOMIM:1\n"
    "3156\tHMGCR\tHP:0000822\tHypertension\t-\tOMIM:2\n"
)
SYNSETS = (
    "synset_id\tss_type\tlexname\tlemmas\tgloss\n"
    '02084071-n\tn\tnoun.animal\tdog|domestic dog|Canis familiaris\ta member of the genus Canis "quoted\n'
    "02083346-n\tn\tnoun.animal\tcanine|canid\tany of various fissiped mammals\n"
    "01320314-v\tv\tverb.body\tbark\tmake barking sounds\n"
)
RELATIONS = (
    "source\trelation\ttarget\tkind\tsource_word\n"
    "02084071-n\thypernym\t02083346-n\tS\t\n"
    "02083346-n\thyponym\t02084071-n\tS\t\n"
    "02084071-n\tderivationally_related\t01320314-v\tL\tdog\n"
    "01320314-v\tderivationally_related\t02084071-n\tL\tbark\n"
)
CONCEPTNET = (
    "head\trelation\ttail\tsplit\n"
    "dog\tCapableOf\tbark\ttrain100k\n"
    "dog\tNotCapableOf\tfly\ttrain100k\n"
    "dog\tIsA\tpet\tdev1_pos\n"
)


def test_hetionet_nodes_edges_and_readable_metaedges(tmp_path: Path) -> None:
    builder = GraphBuilder()
    metaedges = write(tmp_path / "metaedges.tsv", METAEDGES)
    assert read_metaedges(metaedges) == {"CtD": "treats", "Gr>G": "regulates", "CbG": "binds"}
    load_hetionet(builder, write(tmp_path / "n.tsv.gz", NODES), [write(tmp_path / "e.sif.gz", SIF)], metaedges)
    graph = builder.build()
    assert graph.num_nodes == 4 and graph.num_edges == 2
    assert graph.has_edge("Compound::DB01076", "treats", "Disease::DOID:10763")
    assert graph.names[graph.node_index("Gene::3156")] == "HMGCR"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("source\tmetaedge\ttarget\nCompound::DB01076\tCtD\n", 2, "expected 3 tab-separated fields"),
        ("source\tmetaedge\ttarget\nCompound::DB01076\tCtD\tDisease::X\nA\tXyZ\tB\n", 3, "unknown metaedge 'XyZ'"),
    ],
)
def test_hetionet_malformed_rows_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    edges = write(tmp_path / "bad.sif", text)
    with pytest.raises(KgFormatError, match=rf"bad\.sif:{line}: {problem}"):
        load_hetionet(GraphBuilder(), write(tmp_path / "n.tsv", NODES), [edges], write(tmp_path / "m.tsv", METAEDGES))


def test_obo_names_exact_synonyms_is_a_and_no_obsolete_terms(tmp_path: Path) -> None:
    builder = GraphBuilder()
    load_obo(builder, write(tmp_path / "do.obo.gz", DO), "Disease")
    graph = builder.build()
    assert set(graph.node_ids) == {"DOID:10763", "DOID:1287"}
    assert graph.synonyms[graph.node_index("DOID:10763")] == ("HTN",)  # RELATED synonyms are not kept
    assert graph.has_edge("DOID:10763", "is a", "DOID:1287")
    assert builder.xrefs() == {"DOID:1287": ["OMIM:100000"]}


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("[Term]\nid: X:1\nname: x\nsynonym: no quotes EXACT []\n", 4, "synonym without quoted text"),
        ("[Term]\nid: X:1\nname x\n", 3, "expected 'tag: value'"),
        ("\n[Term]\nname: x\n", 2, r"\[Term\] without id or name"),
    ],
)
def test_obo_malformed_lines_name_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    with pytest.raises(KgFormatError, match=rf"bad\.obo:{line}: {problem}"):
        load_obo(GraphBuilder(), write(tmp_path / "bad.obo", text), "Disease")


def test_hpo_annotations_disease_and_gene_phenotypes(tmp_path: Path) -> None:
    builder = GraphBuilder()
    load_obo(builder, write(tmp_path / "hp.obo", HP), "Phenotype")
    load_phenotype_annotations(builder, write(tmp_path / "phenotype.hpoa", HPOA))
    load_genes_to_phenotype(builder, write(tmp_path / "g2p.txt.gz", G2P))
    graph = builder.build()
    assert graph.has_edge("OMIM:100000", "has phenotype", "HP:0000822")
    assert not graph.has_edge("OMIM:100000", "has phenotype", "HP:0000118")  # NOT qualifier; aspect I
    assert graph.has_edge("Gene::3156", "is associated with phenotype", "HP:0000822")
    assert graph.num_edges == 2  # the duplicated gene row is one edge
    assert graph.names[graph.node_index("OMIM:100000")] == "Some syndrome"


def test_hpo_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(KgFormatError, match=r"g2p\.txt:2: ncbi_gene_id 'x' is not a number"):
        load_genes_to_phenotype(GraphBuilder(), write(tmp_path / "g2p.txt", "ncbi_gene_id\ta\tb\tc\nx\tA\tHP:1\tn\n"))
    bad_hpoa = HPOA + "OMIM:1\tname\n"
    with pytest.raises(KgFormatError, match=r"p\.hpoa:6: expected 12 tab-separated fields, got 2"):
        load_phenotype_annotations(GraphBuilder(), write(tmp_path / "p.hpoa", bad_hpoa))


def test_wordnet_synsets_relations_once_and_quotes_kept(tmp_path: Path) -> None:
    builder = GraphBuilder()
    synsets = write(tmp_path / "syn.tsv.gz", SYNSETS)
    load_wordnet(builder, synsets, write(tmp_path / "rel.tsv.gz", RELATIONS))
    graph = builder.build()
    dog = graph.node_index("wn:02084071-n")
    assert graph.names[dog] == "dog" and graph.synonyms[dog] == ("domestic dog", "Canis familiaris")
    assert graph.num_edges == 2  # hyponym is the inverse of hypernym; the symmetric pointer is kept once
    assert graph.has_edge("wn:02084071-n", "is a kind of", "wn:02083346-n")
    assert graph.has_edge("wn:01320314-v", "is derivationally related to", "wn:02084071-n")
    assert {"dog", "canine", "bark"} <= common_words(read_synset_lemmas(synsets))


def test_wordnet_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    synsets = write(tmp_path / "syn.tsv", SYNSETS)
    bad = write(tmp_path / "rel.tsv", RELATIONS + "02084071-n\tfriend_of\t02083346-n\tS\t\n")
    with pytest.raises(KgFormatError, match=r"rel\.tsv:6: unknown pointer 'friend_of'"):
        load_wordnet(GraphBuilder(), synsets, bad)
    with pytest.raises(KgFormatError, match=r"syn2\.tsv:2: synset id 'dog' is not"):
        load_wordnet(GraphBuilder(), write(tmp_path / "syn2.tsv", "synset_id\tx\ty\tz\tw\ndog\tn\tx\tdog\tg\n"), bad)


def test_conceptnet_skips_negated_relations(tmp_path: Path) -> None:
    builder = GraphBuilder()
    load_conceptnet(builder, write(tmp_path / "cn.tsv.gz", CONCEPTNET))
    graph = builder.build()
    assert graph.relations == ("capable of", "is a")
    assert graph.has_edge("cn:dog", "capable of", "cn:bark") and "cn:fly" not in graph.index


def test_conceptnet_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(KgFormatError, match=r"cn\.tsv:3: relation 'is a' is not a CamelCase name"):
        load_conceptnet(
            GraphBuilder(),
            write(tmp_path / "cn.tsv", "head\trelation\ttail\tsplit\na\tIsA\tb\tx\na\tis a\tb\tx\n"),
        )


def test_generic_triples_with_names_file(tmp_path: Path) -> None:
    builder = GraphBuilder()
    triples = write(tmp_path / "t.tsv", "# my graph\nq1\tcauses\tq2\n\nq2\tpart of\tq3\n")
    load_triples(builder, triples, write(tmp_path / "names.tsv", "q1\tSmoking\tsmoke\nq2\tLung cancer\n"))
    graph = builder.build()
    assert graph.names == ("Smoking", "Lung cancer", "q3")
    assert graph.synonyms[0] == ("smoke",)
    assert graph.has_edge("q2", "part of", "q3")


def test_generic_triples_malformed_rows_name_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(KgFormatError, match=r"t\.tsv:2: expected 3 tab-separated fields, got 4"):
        load_triples(GraphBuilder(), write(tmp_path / "t.tsv", "a\tr\tb\na\tr\tb\tc\n"))
    with pytest.raises(KgFormatError, match=r"t2\.tsv:1: empty head, relation or tail"):
        load_triples(GraphBuilder(), write(tmp_path / "t2.tsv", "a\t\tb\n"))


def test_missing_file_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(KgFormatError, match=r"nope\.tsv"):
        load_triples(GraphBuilder(), tmp_path / "nope.tsv")


def biomedical_fixture(root: Path) -> Path:
    """A miniature of the shared KG folder with the real file names."""
    write(root / "hetionet/hetionet-v1.0-nodes.tsv.gz", NODES)
    write(root / "hetionet/metaedges.tsv", METAEDGES)
    write(root / "hetionet/hetionet-v1.0-edges-subset.sif.gz", SIF)
    write(root / "hetionet/hetionet-v1.0-edges-PCiC-GpPW-rebuilt.sif.gz", "source\tmetaedge\ttarget\n")
    write(root / "disease_ontology/doid-2016-09-01.obo.gz", DO)
    write(root / "hpo/hp.obo.gz", HP)
    write(root / "hpo/phenotype.hpoa.gz", HPOA)
    write(root / "hpo/genes_to_phenotype.txt.gz", G2P)
    return root


def test_biomedical_set_merges_cross_references(tmp_path: Path) -> None:
    graph = build_graph(biomedical_fixture(tmp_path), ["biomedical"])
    hypertension = graph.node_index("Disease::DOID:10763")
    assert "DOID:10763" not in graph.index and "Side Effect::C0020538" not in graph.index
    assert "HTN" in graph.synonyms[hypertension]  # the DO synonym now names the Hetionet disease
    assert graph.has_edge("Disease::DOID:10763", "is a", "DOID:1287")
    assert graph.has_edge("DOID:1287", "has phenotype", "HP:0000822")  # OMIM:100000 merged into its one DO term
    assert "Hypertension" not in graph.synonyms[graph.node_index("HP:0000822")]  # same name, not a synonym
    assert graph.has_edge("Gene::3156", "is associated with phenotype", "HP:0000822")
    assert graph.kinds.count("Gene") == 1


def test_cross_reference_counts(tmp_path: Path) -> None:
    builder = GraphBuilder()
    load_obo(builder, write(tmp_path / "hp.obo", HP), "Phenotype")
    builder.add_node("Side Effect::C0020538", "Hypertension", "Side Effect")
    assert merge_cross_references(builder) == {"disease_ontology": 0, "side_effect": 1, "omim": 0}


def test_sets_resolve_names_and_reject_unknown(tmp_path: Path) -> None:
    assert [part.name for part in resolve_parts(["biomedical"])] == ["hetionet", "disease_ontology", "hpo"]
    with pytest.raises(UnknownGraphError, match="'medical'; known: biomedical"):
        resolve_parts(["medical"])
    with pytest.raises(KgFormatError, match="graph 'wordnet' lacks files"):
        build_graph(tmp_path, ["wordnet"])
    triples = TriplesFile(write(tmp_path / "t.tsv", "a\tr\tb\n"))
    assert build_graph(tmp_path, [], [triples]).num_edges == 1
