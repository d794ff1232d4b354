"""The `glassbox` command line: ingest, serve, search."""

from __future__ import annotations

import ipaddress
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from indexes import IndexesError
from service.errors import ConfigurationError, GlassboxError, InvalidRequestError
from service.log_format import configure_logging
from service.settings import COLLECTION_NAME_PATTERN, Settings

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
    reencode: bool = typer.Option(
        False, "--reencode", help="re-encode documents that are unchanged, bypassing the embedding cache"
    ),
    chunk_size: int = typer.Option(512, "--chunk-size", min=1, help="documents per durable write"),
) -> None:
    """Encode a dataset's documents and upsert them into a collection (resumable: unchanged docs are skipped).

    Embeddings go through the cache under GLASSBOX_HOME/cache that training and evaluation read, so a corpus is
    encoded once for all of them (and for other collections of the same texts)."""
    from service.datasets import read_documents, resolve_dataset
    from service.embedding_cache import CachingEncoder, embedding_cache_path
    from service.encoder_factory import load_encoder, open_registry
    from service.ingest import ingest_documents

    def body() -> None:
        settings = Settings()
        path = resolve_dataset(dataset, settings)
        documents = list(read_documents(path))
        encoder = load_encoder(settings)
        registry = open_registry(settings, encoder)
        cache = None if reencode else CachingEncoder(encoder, embedding_cache_path(settings.home))
        try:
            target = registry.get_or_create(collection, index)
            report = ingest_documents(
                target, cache or encoder, documents, chunk_size=chunk_size, skip_unchanged=not reencode
            )
            count = len(target)
        finally:
            registry.close_all()
            if cache is not None:
                cache.close()
        reused = "" if cache is None else f"; embedding cache: {cache.hits} reused, {cache.misses} encoded"
        typer.echo(
            f"{collection}: read {report.read}, wrote {report.written}, skipped {report.skipped} unchanged "
            f"in {report.seconds:.1f} s ({report.docs_per_second:.1f} docs/s); {count} documents{reused}"
        )

    _run(body)


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine (`localhost` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # any other name may resolve to a reachable interface


def check_exposure(settings: Settings, host: str) -> None:
    """Refuse to serve without API keys beyond loopback unless GLASSBOX_ALLOW_ANONYMOUS says so."""
    if settings.api_keys or settings.allow_anonymous or is_loopback(host):
        return
    raise ConfigurationError(
        f"refusing to serve on --host {host} without authentication: set GLASSBOX_API_KEYS (make a key with "
        "`glassbox keys create`), or GLASSBOX_ALLOW_ANONYMOUS=true to serve it open, or use --host 127.0.0.1"
    )


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
) -> None:
    """Serve the REST API (OpenAPI docs at /docs)."""
    import uvicorn

    from service.api import create_app
    from service.log_format import configure_logging

    settings = Settings()
    _run(lambda: check_exposure(settings, host))
    configure_logging(settings.log_level, settings.log_format or "json")
    # log_config=None: uvicorn's own loggers go through the handler above; the app's middleware writes the
    # access log (route template, status, duration, request id), so uvicorn's is off
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
        log_config=None,
        access_log=False,
    )


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


@app.command("simulate-ab")
def simulate_ab(
    dataset: str = typer.Option(..., "--dataset", help="BEIR directory; its test queries are replayed"),
    variants: str = typer.Option(..., "--variants", help="two evaluation variants A,B, e.g. dense,hybrid"),
    mode: str = typer.Option("ab", "--mode", help="ab (split traffic) or interleave (team-draft, one mixed list)"),
    queries: int = typer.Option(2000, "--queries", min=1, help="simulated search requests (impressions)"),
    out: Path = typer.Option(..., "--out", help="report JSON"),
    adapters: Path | None = typer.Option(None, "--adapters", help="directory of trained adapters"),
    seed: int = typer.Option(42, "--seed", help="seed of queries, assignment and clicks"),
    repetitions: int = typer.Option(200, "--repetitions", min=1, help="simulated experiments per traffic level"),
    user_spread: float = typer.Option(
        0.0, "--user-spread", min=0.0, max=1.0, help="users' click propensities vary by up to ± this share"
    ),
) -> None:
    """Simulate an online experiment: clicks from a position-biased model over qrels; winner, p-value, traffic."""
    from evaluation.click_model import PositionBiasedClickModel
    from evaluation.simulate_ab import SimulationConfig, simulate_on_dataset
    from evaluation.variants import check_variant_names
    from service.encoder_factory import load_encoder

    def body() -> None:
        names = [name.strip() for name in variants.split(",") if name.strip()]
        if len(names) != 2 or names[0] == names[1]:
            raise InvalidRequestError("--variants", variants, "give two different variants, e.g. dense,hybrid")
        if mode not in ("ab", "interleave"):
            raise InvalidRequestError("--mode", mode, "mode is 'ab' or 'interleave'")
        check_variant_names(names)  # fail fast, before loading the model
        settings = Settings()
        config = SimulationConfig(
            (names[0], names[1]), mode="ab" if mode == "ab" else "interleave", impressions=queries, seed=seed,
            repetitions=repetitions, click_model=PositionBiasedClickModel(user_spread=user_spread),
        )  # fmt: skip
        report = simulate_on_dataset(Path(dataset), config, settings, load_encoder(settings), adapters=adapters)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        needed = report["traffic_needed"]
        typer.echo(
            f"{mode}: winner {report['winner']} (true: {report['true_winner']}), p = {report['p_value']:.3g} "
            f"over {queries} impressions; traffic for {needed['ab']['power']:.0%} power: "
            f"A/B {needed['ab']['impressions']}, interleaving {needed['interleave']['impressions']}"
        )
        typer.echo(f"wrote {out}")

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


keys_app = typer.Typer(help="API keys: GLASSBOX_API_KEYS holds their SHA-256 digests and scopes.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _scope_names(option: str, values: list[str]) -> list[str]:
    names = [name.strip() for value in values for name in value.split(",") if name.strip()]
    for name in names:
        if name != "*" and not COLLECTION_NAME_PATTERN.match(name):
            raise InvalidRequestError(option, name, "must be a collection name or '*'")
    return list(dict.fromkeys(names))


@keys_app.command("create")
def create_key_command(
    name: str = typer.Option(..., "--name", help="who holds the key (named in 403 errors and logs)"),
    read: list[str] = typer.Option([], "--read", help="collections it may read, comma-separated or repeated; '*' all"),
    write: list[str] = typer.Option(
        [], "--write", help="collections it may change (write does not imply read); '*' all"
    ),
) -> None:
    """Make a random API key: print it once, and the GLASSBOX_API_KEYS entry (its digest and scopes) to add."""
    from service.api_keys import new_key_entry

    def body() -> None:
        readable, writable = _scope_names("--read", read), _scope_names("--write", write)
        if not readable and not writable:
            raise typer.BadParameter("give the key at least one scope: --read, --write or both")
        key, entry = new_key_entry(name, readable, writable)
        typer.echo(f"API key for {name!r} (shown once; store it now, only its digest is kept):\n{key}")
        typer.echo("Add this entry to the JSON list in GLASSBOX_API_KEYS:")
        typer.echo(entry.model_dump_json())

    _run(body)


def settings_problems(exc: ValidationError | SettingsError) -> str:
    """The settings' problems, one a line; an API key entry's input is never shown (it may be a pasted key)."""
    if isinstance(exc, SettingsError):
        return str(exc)
    problems = []
    for error in exc.errors(include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        problem = f"{location}: {error['msg']}"
        if error["loc"][:1] != ("api_keys",):
            problem += f" (got {error['input']!r})"
        problems.append(problem)
    return "\n  ".join(["", *problems])


def main() -> None:
    """Console-script entry point."""
    try:
        settings = Settings()
    except (ValidationError, SettingsError) as exc:
        typer.echo(f"error: invalid GLASSBOX_* settings: {settings_problems(exc)}", err=True)
        sys.exit(2)
    configure_logging(settings.log_level, settings.log_format or "text")  # `serve` switches to json by default
    app()
