"""`glassbox evaluate` end to end on a tiny BEIR dataset with the real encoder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from evaluation import BeirDataset, EvaluationConfig, VariantError, build_variants, run_evaluation, write_outputs
from evaluation.variants import check_variant_names
from service.api import create_app
from service.cli import app
from service.encoder import SentenceTransformerEncoder
from service.errors import EncoderMismatchError
from service.settings import Settings

pytestmark = pytest.mark.slow

DOCS = {
    "statin": ("Statins", "Atorvastatin lowers LDL cholesterol and cardiovascular risk."),
    "aspirin": ("Aspirin", "Aspirin reduces fever, pain and platelet aggregation."),
    "vaccine": ("Vaccines", "mRNA vaccines induce neutralising antibodies against the spike protein."),
    "insulin": ("Insulin", "Insulin resistance precedes type 2 diabetes."),
    "sleep": ("Sleep", "Sleep deprivation impairs memory consolidation."),
    "coffee": ("Coffee", "Caffeine intake is associated with alertness and reduced fatigue."),
    "s1": ("Self", "A query whose id equals this document's id, as in ArguAna."),
}
QUERIES = {
    "t1": "Which drug lowers cholesterol?",
    "t2": "Do vaccines produce antibodies?",
    "t3": "What impairs memory?",
    "t4": "Quantum chromodynamics of gluons",
    "s1": "A query whose id equals this document's id, as in ArguAna.",
    **{f"tr{i}": f"training question number {i} about medicine" for i in range(20)},
}


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n" for i, (t, x) in DOCS.items())
    )
    (root / "queries.jsonl").write_text(
        "".join(
            json.dumps({"_id": q, "text": t, "metadata": {"answer": "never read"}}) + "\n" for q, t in QUERIES.items()
        )
    )
    test = ["t1\tstatin\t2", "t2\tvaccine\t1", "t3\tsleep\t1", "t3\tcoffee\t0", "t4\tinsulin\t1", "s1\taspirin\t1"]
    (root / "qrels" / "test.tsv").write_bytes(("query-id\tcorpus-id\tscore\r\n" + "\r\n".join(test) + "\r\n").encode())
    train = [f"tr{i}\tstatin\t1" for i in range(20)]
    (root / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(train) + "\n")
    return root


def run(dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder, **options: object) -> dict:  # type: ignore[type-arg]
    config = EvaluationConfig(dataset=dataset, **options)  # type: ignore[arg-type]
    return run_evaluation(config, settings, encoder, progress=False).report


def test_dense_report_has_the_contracted_shape(
    tiny_dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    config = EvaluationConfig(dataset=tiny_dataset, variants=["dense"])
    result = run_evaluation(config, settings, encoder, progress=False)
    report = result.report
    assert (report["dataset"], report["split"], report["queries"]) == ("tiny", "test", 5)
    dense = report["variants"]["dense"]
    assert set(dense) == {"ndcg@10", "recall@10", "recall@100", "mrr@10", "map@100", "first_stage", "latency_ms"}
    assert dense["first_stage"] == "dense"
    assert set(dense["latency_ms"]) == {"p50", "p95"}
    assert report["comparisons"] == {}
    assert result.rankings["dense"]["t1"][0] == "statin"
    assert result.rankings["dense"]["s1"][0] == "s1"  # kept: self-hits are dropped only when asked
    assert dense["recall@100"] == pytest.approx(1.0)  # every document is retrieved at depth 100
    written = write_outputs(result, tmp_path / "out" / "report.json")
    assert [p.name for p in written] == ["report.json", "report.md", "report-metrics.png", "report-deltas.png"]
    assert json.loads(written[0].read_text())["variants"]["dense"]["ndcg@10"] == dense["ndcg@10"]
    assert "| dense |" in written[1].read_text()
    assert all(p.stat().st_size > 1000 for p in written[2:])


def test_same_command_twice_gives_identical_metrics_and_uses_the_cache(
    tiny_dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder
) -> None:
    first = run(tiny_dataset, settings, encoder)
    second = run(tiny_dataset, settings, encoder)
    metrics = {k: v for k, v in first["variants"]["dense"].items() if k != "latency_ms"}
    assert metrics == {k: v for k, v in second["variants"]["dense"].items() if k != "latency_ms"}
    assert first["embedding_cache"] == {"hits": 0, "misses": len(DOCS)}
    assert second["embedding_cache"] == {"hits": len(DOCS), "misses": 0}


def test_lexical_and_hybrid_variants_run_their_own_first_stage(
    tiny_dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder
) -> None:
    result = run_evaluation(
        EvaluationConfig(dataset=tiny_dataset, variants=["bm25", "hybrid"]), settings, encoder, progress=False
    )
    variants = result.report["variants"]
    assert [variants[name]["first_stage"] for name in ("dense", "bm25", "hybrid")] == ["dense", "bm25", "hybrid"]
    assert set(result.report["comparisons"]) == {"bm25", "hybrid"}
    assert result.rankings["bm25"]["t1"] != result.rankings["dense"]["t1"]  # BM25 returns only term matches
    assert len(result.rankings["hybrid"]["t1"]) >= len(result.rankings["bm25"]["t1"])


def test_self_hits_can_be_dropped(tiny_dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder) -> None:
    config = EvaluationConfig(dataset=tiny_dataset, drop_self_hits=True)
    result = run_evaluation(config, settings, encoder, progress=False)
    assert "s1" not in result.rankings["dense"]["s1"]
    assert result.report["drop_self_hits"] is True


def test_dev_split_is_derived_from_train_and_recorded(
    tiny_dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder
) -> None:
    report = run(tiny_dataset, settings, encoder, split="dev")
    assert report["queries"] == 3  # 15 % of 20 training queries
    assert "seeded 15%" in report["split_source"]
    assert (
        BeirDataset(tiny_dataset).split("train").qrels.keys().isdisjoint(BeirDataset(tiny_dataset).split("dev").qrels)
    )


def test_unknown_and_unavailable_variants_are_clear_errors(
    settings: Settings, encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    with pytest.raises(VariantError, match="unknown variant 'densest'; available: bm25, cosine, dense, full, hybrid"):
        check_variant_names(["dense", "densest"])
    with pytest.raises(VariantError, match="needs a trained IMRNN adapter"):
        build_variants(["imrnn"], tmp_path / "no-adapters", encoder.identity, settings)
    with pytest.raises(VariantError, match="needs a trained Cosine Adapter"):
        build_variants(["full"], tmp_path / "no-adapters", encoder.identity, settings)
    assert check_variant_names([" dense ", "dense"]) == ["dense"]
    with pytest.raises(VariantError, match="needs a trained Cosine Adapter"):
        build_variants(["cosine"], tmp_path / "no-adapters", encoder.identity, settings)


def test_train_cosine_then_evaluate_the_cosine_variant_and_serve_it(
    tiny_dataset: Path, settings: Settings, encoder: SentenceTransformerEncoder, tmp_path: Path
) -> None:
    env = {"GLASSBOX_HOME": str(settings.home), "HF_HUB_OFFLINE": "1"}
    trained = CliRunner().invoke(app, ["train", "cosine", "--dataset", str(tiny_dataset)], env=env)
    assert trained.exit_code == 0, trained.output
    artifact = settings.home / "adapters" / "cosine"
    assert {"config.json", "model.safetensors", "report.json", "reliability.png"} <= {
        p.name for p in artifact.iterdir()
    }
    report = json.loads((artifact / "report.json").read_text())
    assert report["dev_source"].startswith("seeded 15%") and 0 < report["threshold"] < 1

    result = run_evaluation(
        EvaluationConfig(dataset=tiny_dataset, variants=["cosine"]), settings, encoder, progress=False
    )
    block = result.report["variants"]["cosine"]["filter"]
    assert {"precision", "recall", "f1", "mean_kept", "pr_auc", "pr_auc_raw_cosine", "p_at_r95", "ece"} <= set(block)
    assert set(block["baseline_global_cutoff"]) == {"precision", "recall", "f1", "threshold"}
    assert set(block["baseline_best_top_k"]) == {"precision", "recall", "f1", "k"}
    assert block["mean_kept"] >= 1.0  # min_results = 1
    assert all(len(ranked) >= 1 for ranked in result.rankings["cosine"].values())
    assert result.report["comparisons"]["cosine"]["baseline"] == "dense"

    with TestClient(create_app(settings, encoder=encoder)) as client:
        assert client.post("/v1/collections", json={"name": "c"}).status_code == 201
        docs = [{"id": i, "title": t, "text": x} for i, (t, x) in DOCS.items()]
        assert client.post("/v1/collections/c/documents", json={"documents": docs}).status_code == 200
        body = client.post("/v1/collections/c/search", json={"query": "Which drug lowers cholesterol?"}).json()
    cosine = body["query"]["cosine"]
    assert cosine["calibrated"] is True and cosine["threshold"] == pytest.approx(report["threshold"])
    assert set(cosine["parameters"]) == {"a", "b"} and cosine["parameters"]["a"] > 0
    assert 1 <= len(body["results"]) == cosine["kept"]
    for item in body["results"]:
        assert 0.0 <= item["relevance"] <= 1.0 and item["kept"] is True
        assert item["breakdown"]["cosine"]["relevance"] == item["relevance"]
        assert item["breakdown"]["cosine"]["above_threshold"] == (item["relevance"] >= cosine["threshold"])
    relevances = [item["relevance"] for item in body["results"]]
    assert relevances == sorted(relevances, reverse=True)  # monotone: the dense order is kept
    assert all(r >= cosine["threshold"] for r in relevances[1:])


def test_adapter_for_another_encoder_fails_start_up(settings: Settings, encoder: SentenceTransformerEncoder) -> None:
    from adapters import CosineAdapter, EncoderSignature

    CosineAdapter(768).save(settings.adapters_dir / "cosine", EncoderSignature("other/model", 768))
    with pytest.raises(EncoderMismatchError, match="other/model"), TestClient(create_app(settings, encoder=encoder)):
        pass


def test_cli_writes_report_files(tiny_dataset: Path, tmp_path: Path) -> None:
    env = {"GLASSBOX_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    out = tmp_path / "eval" / "tiny.json"
    args = ["evaluate", "--dataset", str(tiny_dataset), "--variants", "dense", "--out", str(out)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    assert "| dense |" in result.stdout and out.is_file() and out.with_suffix(".md").is_file()
    bad = CliRunner().invoke(app, [*args[:3], "--variants", "dense,densest", "--out", str(out)], env=env)
    assert bad.exit_code == 2 and "unknown variant 'densest'" in bad.output
