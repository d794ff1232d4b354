"""The `glassbox` command line: ingest, serve, search."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError

from indexes import IndexesError
from service.errors import GlassboxError, InvalidRequestError
from service.settings import Settings

app = typer.Typer(
    help="Glassbox: retrieval that shows its work. Settings come from GLASSBOX_* environment variables.",
    no_args_is_help=True,
    add_completion=False,
)
T = TypeVar("T")


def _run(action: Callable[[], T]) -> T:
    """Run a command body; known errors print one line to stderr and exit 2."""
    try:
        return action()
    except (GlassboxError, IndexesError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from exc


@app.command()
def ingest(
    collection: str = typer.Option(..., "--collection", help="collection to create or update"),
    dataset: str = typer.Option(
        ..., "--dataset", help="BEIR directory, JSONL file of {id,title,text,metadata}, or beir:NAME"
    ),
    index: str | None = typer.Option(None, "--index", help="FAISS factory string for a new collection"),
    reencode: bool = typer.Option(False, "--reencode", help="re-encode documents that are unchanged"),
    chunk_size: int = typer.Option(512, "--chunk-size", min=1, help="documents per durable write"),
) -> None:
    """Encode a dataset's documents and upsert them into a collection (resumable: unchanged docs are skipped)."""
    from service.datasets import read_documents, resolve_dataset
    from service.encoder_factory import load_encoder, open_registry
    from service.ingest import ingest_documents

    def body() -> None:
        settings = Settings()
        path = resolve_dataset(dataset, settings)
        documents = list(read_documents(path))
        encoder = load_encoder(settings)
        registry = open_registry(settings, encoder)
        try:
            target = registry.get_or_create(collection, index)
            report = ingest_documents(target, encoder, documents, chunk_size=chunk_size, skip_unchanged=not reencode)
            count = len(target)
        finally:
            registry.close_all()
        typer.echo(
            f"{collection}: read {report.read}, wrote {report.written}, skipped {report.skipped} unchanged "
            f"in {report.seconds:.1f} s ({report.docs_per_second:.1f} docs/s); {count} documents"
        )

    _run(body)


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
) -> None:
    """Serve the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from service.api import create_app

    settings = Settings()
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level.lower())


@app.command()
def search(
    query: str = typer.Argument(..., help="query text"),
    collection: str = typer.Option(..., "--collection"),
    top_k: int = typer.Option(10, "--top-k", min=1),
    as_json: bool = typer.Option(False, "--json", help="print the same JSON the REST API returns"),
) -> None:
    """Search a collection in-process (read-only; works while a server holds the collection)."""
    from service.api.routes.search import search_response
    from service.api.schemas import SearchRequest
    from service.api.validation import check_search
    from service.encoder_factory import load_encoder, open_registry
    from service.pipeline import SearchQuery
    from service.stage_factory import build_pipeline

    def body() -> None:
        settings = Settings()
        check_search(SearchRequest(query=query, top_k=top_k), settings.search)
        encoder = load_encoder(settings)
        registry = open_registry(settings, encoder, read_only=True)
        try:
            pipeline = build_pipeline(settings, encoder, registry)
            outcome = pipeline.search(collection, SearchQuery(query, top_k))
        finally:
            registry.close_all()
        if as_json:
            typer.echo(json.dumps(search_response(outcome).model_dump(), indent=2))
            return
        for rank, item in enumerate(outcome.results, start=1):
            typer.echo(f"{rank:>3}  {item.score:.4f}  {item.doc_id}  {item.title[:90]}")
        typer.echo(f"({outcome.timings_ms['total']:.1f} ms, variant {outcome.variant})")

    _run(body)


@app.command()
def evaluate(
    dataset: str = typer.Option(..., "--dataset", help="BEIR directory (corpus.jsonl, queries.jsonl, qrels/)"),
    variants: str = typer.Option("dense", "--variants", help="comma-separated variants; dense is always included"),
    split: str = typer.Option("test", "--split", help="train, dev (a seeded 15 % of train when absent) or test"),
    out: Path = typer.Option(..., "--out", help="report JSON; FILE.md and FILE-*.png are written beside it"),
    adapters: Path | None = typer.Option(None, "--adapters", help="directory of trained adapters"),
    top_k: int = typer.Option(100, "--top-k", min=1, help="ranking depth scored (Recall@100 needs 100)"),
    drop_self_hits: bool = typer.Option(False, "--drop-self-hits", help="drop a hit whose id is the query id"),
) -> None:
    """Evaluate variants side by side on a BEIR split: ranx metrics, paired tests against dense, plots."""
    # The evaluation harness sits above the service (it drives the pipeline); only this front door imports it.
    from evaluation import EvaluationConfig, markdown_table, run_evaluation, write_outputs
    from evaluation.variants import check_variant_names
    from service.encoder_factory import load_encoder

    def body() -> None:
        settings = Settings()
        config = EvaluationConfig(
            dataset=Path(dataset),
            variants=variants.split(","),
            split=split,
            top_k=top_k,
            drop_self_hits=drop_self_hits,
            adapters=adapters,
        )
        check_variant_names(config.variants)  # fail fast, before loading the model
        encoder = load_encoder(settings)
        result = run_evaluation(config, settings, encoder)
        written = write_outputs(result, out)
        typer.echo(markdown_table(result.report))
        typer.echo("wrote " + ", ".join(str(path) for path in written))

    _run(body)


train_app = typer.Typer(help="Train adapters on a BEIR dataset's train split (selected on dev).", no_args_is_help=True)
app.add_typer(train_app, name="train")


@train_app.command("cosine")
def train_cosine_command(
    dataset: str = typer.Option(..., "--dataset", help="BEIR directory with qrels/train.tsv (dev.tsv optional)"),
    out: Path | None = typer.Option(None, "--out", help="artifact folder; default GLASSBOX_HOME/adapters/cosine"),
    family: str = typer.Option("linear", "--family", help="monotone map family: linear or power"),
    target_recall: float | None = typer.Option(
        None, "--target-recall", min=0.0, max=1.0, help="choose τ for this dev recall instead of max F1"
    ),
    seed: int = typer.Option(13, "--seed"),
) -> None:
    """Train the Cosine Adapter (calibrated relevance filter) and choose its threshold τ on dev."""
    from adapters import FAMILIES, CosineTrainingConfig
    from evaluation.train_cosine import train_cosine
    from service.encoder_factory import load_encoder

    def body() -> None:
        if family not in FAMILIES:
            raise InvalidRequestError("--family", family, f"must be one of {', '.join(FAMILIES)}")
        settings = Settings()
        target = out or settings.adapters_dir / "cosine"
        config = CosineTrainingConfig(
            family=family, target_recall=target_recall, seed=seed, min_results=settings.filter.min_results
        )
        encoder = load_encoder(settings)
        report = train_cosine(Path(dataset), target, settings, encoder, config)
        dev = report["dev_returned_set"]
        typer.echo(
            f"cosine adapter -> {target}: τ {report['threshold']:.4f}; dev F1 {dev['f1']:.4f} "
            f"(P {dev['precision']:.4f}, R {dev['recall']:.4f}, mean kept {dev['mean_kept']:.2f}), "
            f"ECE {report['dev_ece']:.4f}, PR-AUC {report['dev_pr_auc']:.4f} "
            f"(raw cosine {report['dev_pr_auc_raw_cosine']:.4f}); best epoch {report['best_epoch']} "
            f"of {report['epochs_run']}, {report['seconds']:.0f} s"
        )

    _run(body)


@train_app.command("fusion")
def train_fusion_command(
    dataset: str = typer.Option(
        ..., "--dataset", help="BEIR directory with qrels (dev.tsv, else a seeded part of train)"
    ),
    out: Path | None = typer.Option(None, "--out", help="artifact folder; default GLASSBOX_HOME/adapters/fusion"),
) -> None:
    """Tune the hybrid first stage's dense weight for nDCG@10 on train+dev; serving reads it when none is set."""
    from evaluation.train_fusion import train_fusion
    from service.encoder_factory import load_encoder

    def body() -> None:
        settings = Settings()
        target = out or settings.adapters_dir / "fusion"
        report = train_fusion(Path(dataset), target, settings, load_encoder(settings))
        typer.echo(
            f"fusion -> {target}: dense weight {report['dense_weight']}; train+dev nDCG@10 {report['ndcg@10']:.4f} "
            f"over {report['queries']} queries (dense {report['ndcg@10_dense']:.4f}, "
            f"bm25 {report['ndcg@10_bm25']:.4f}, rrf {report['ndcg@10_rrf']:.4f}), {report['seconds']:.0f} s"
        )

    _run(body)


@train_app.command("imrnn")
def train_imrnn_command(
    dataset: str = typer.Option(..., "--dataset", help="BEIR directory with qrels/train.tsv (dev.tsv optional)"),
    out: Path | None = typer.Option(None, "--out", help="artifact folder; default GLASSBOX_HOME/adapters/imrnn"),
    epochs: int = typer.Option(60, "--epochs", min=1, help="most epochs (early stopping on dev nDCG@10)"),
    listwise_weight: float = typer.Option(
        1.0, "--listwise-weight", min=0.0, help="weight of the listwise term; 0 trains the paper's margin loss alone"
    ),
    seed: int = typer.Option(13, "--seed"),
) -> None:
    """Train IMRNN (query/document modulation re-scorer); choose λ on dev (0 unless it beats raw cosine)."""
    from adapters import ImrnnTrainingConfig
    from evaluation.train_imrnn import train_imrnn
    from service.encoder_factory import load_encoder

    def body() -> None:
        settings = Settings()
        target = out or settings.adapters_dir / "imrnn"
        config = ImrnnTrainingConfig(epochs=epochs, listwise_weight=listwise_weight, seed=seed)
        report = train_imrnn(Path(dataset), target, settings, load_encoder(settings), config)
        rounds = ", ".join(f"{k}: {v:.4f}" for k, v in report["dev_ndcg@10_by_iterations"].items())
        typer.echo(
            f"imrnn -> {target}: λ {report['blend']}; dev nDCG@10 {report['dev_ndcg@10']:.4f} "
            f"(raw cosine {report['dev_ndcg@10_raw']:.4f}); by iterations {{{rounds}}}; best epoch "
            f"{report['best_epoch']} of {report['epochs_run']}, {report['seconds']:.0f} s"
        )

    _run(body)


def main() -> None:
    """Console-script entry point."""
    try:
        settings = Settings()
    except ValidationError as exc:
        typer.echo(f"error: invalid GLASSBOX_* settings: {exc}", err=True)
        sys.exit(2)
    logging.basicConfig(
        level=settings.log_level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app()
