"""The `glassbox` CLI: ingest (BEIR dir, JSONL, beir:NAME over HTTP), resumable re-ingest, search."""

from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexes import Collection
from service.cli import app

pytestmark = pytest.mark.slow
N_DOCS = 30


@pytest.fixture
def tiny_beir(tmp_path: Path, data_dir: Path) -> Path:
    """A BEIR-format directory holding the first SciFact documents (a temporary copy, outside the project)."""
    target = tmp_path / "tiny"
    target.mkdir()
    with (data_dir / "beir" / "scifact" / "corpus.jsonl").open() as source:
        lines = [next(source) for _ in range(N_DOCS)]
    (target / "corpus.jsonl").write_text("".join(lines))
    return target


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"GLASSBOX_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}


def invoke(env: dict[str, str], *args: str) -> tuple[int, str]:
    """Exit code and standard output (progress bars and logs go to standard error)."""
    result = CliRunner().invoke(app, list(args), env=env)
    return result.exit_code, result.stdout if result.exit_code == 0 else result.output


def test_ingest_beir_dir_is_resumable_and_searchable(tiny_beir: Path, env: dict[str, str]) -> None:
    code, out = invoke(env, "ingest", "--collection", "sf", "--dataset", str(tiny_beir))
    assert code == 0, out
    assert f"wrote {N_DOCS}, skipped 0" in out and f"{N_DOCS} documents" in out
    assert f"embedding cache: 0 reused, {N_DOCS} encoded" in out
    code, out = invoke(env, "ingest", "--collection", "sf", "--dataset", str(tiny_beir))
    assert code == 0 and f"wrote 0, skipped {N_DOCS}" in out
    # another collection of the same texts reuses the embeddings the first ingest cached
    code, out = invoke(env, "ingest", "--collection", "sf2", "--dataset", str(tiny_beir))
    assert code == 0 and f"embedding cache: {N_DOCS} reused, 0 encoded" in out, out
    code, out = invoke(env, "ingest", "--collection", "sf2", "--dataset", str(tiny_beir), "--reencode")
    assert code == 0 and f"wrote {N_DOCS}, skipped 0" in out and "embedding cache" not in out, out
    first = json.loads((tiny_beir / "corpus.jsonl").read_text().splitlines()[3])
    code, out = invoke(env, "search", "--collection", "sf", "--top-k", "3", "--json", first["title"])
    assert code == 0, out
    body = json.loads(out)
    assert body["results"][0]["id"] == first["_id"] and len(body["results"]) == 3
    code, out = invoke(env, "search", "--collection", "sf", first["title"])
    assert code == 0 and first["_id"] in out.splitlines()[0]


def test_ingest_jsonl_with_metadata_and_errors(tmp_path: Path, env: dict[str, str]) -> None:
    good = tmp_path / "docs.jsonl"
    good.write_text(
        json.dumps({"id": "a", "title": "Aspirin", "text": "fever", "metadata": {"k": 1}})
        + "\n\n"
        + json.dumps({"id": 2, "text": "statins"})
        + "\n"
    )
    code, out = invoke(env, "ingest", "--collection", "j", "--dataset", str(good), "--index", "HNSW32")
    assert code == 0 and "wrote 2" in out, out
    collection = Collection.open(Path(env["GLASSBOX_HOME"]) / "collections" / "j", read_only=True)
    assert collection.config.factory == "HNSW32"
    assert collection.get(["a", "2"])["a"].metadata == {"k": 1}
    collection.close()
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "ok"}\n{"title": "no id"}\n')
    code, out = invoke(env, "ingest", "--collection", "j", "--dataset", str(bad))
    assert code == 2 and "bad.jsonl:2" in out and "id" in out
    code, out = invoke(env, "ingest", "--collection", "j", "--dataset", str(tmp_path / "absent"))
    assert code == 2 and "does not exist" in out
    code, out = invoke(env, "search", "--collection", "nope", "query")
    assert code == 2 and "'nope' does not exist" in out


def test_ingest_refuses_a_collection_held_by_another_writer(tiny_beir: Path, env: dict[str, str]) -> None:
    assert invoke(env, "ingest", "--collection", "sf", "--dataset", str(tiny_beir))[0] == 0
    holder = Collection.open(Path(env["GLASSBOX_HOME"]) / "collections" / "sf")
    try:
        code, out = invoke(env, "ingest", "--collection", "sf", "--dataset", str(tiny_beir))
        assert code == 2 and "open for writing in another process" in out
    finally:
        holder.close()


@pytest.fixture
def beir_server(tmp_path: Path, tiny_beir: Path) -> Iterator[str]:
    """A local HTTP server offering tiny.zip laid out like the official BEIR archives (tiny/corpus.jsonl)."""
    served = tmp_path / "served"
    served.mkdir()
    with zipfile.ZipFile(served / "tiny.zip", "w") as bundle:
        bundle.write(tiny_beir / "corpus.jsonl", "tiny/corpus.jsonl")
    (served / "broken.zip").write_text("not a zip")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{{name}}.zip"
    server.shutdown()
    server.server_close()


def test_ingest_beir_name_downloads_once(beir_server: str, env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "GLASSBOX_BEIR_URL": beir_server}
    code, out = invoke(env, "ingest", "--collection", "dl", "--dataset", "beir:tiny")
    assert code == 0 and f"wrote {N_DOCS}" in out, out
    unpacked = Path(env["GLASSBOX_HOME"]) / "datasets" / "tiny" / "corpus.jsonl"
    assert unpacked.is_file()
    code, out = invoke(env, "ingest", "--collection", "dl", "--dataset", "beir:tiny")
    assert code == 0 and f"skipped {N_DOCS}" in out
    code, out = invoke(env, "ingest", "--collection", "dl", "--dataset", "beir:missing")
    assert code == 2 and "cannot download BEIR dataset 'missing'" in out
    code, out = invoke(env, "ingest", "--collection", "dl", "--dataset", "beir:broken")
    assert code == 2 and "not a zip archive" in out
    assert not (Path(env["GLASSBOX_HOME"]) / "datasets" / "broken").exists()
    shutil.rmtree(Path(env["GLASSBOX_HOME"]) / "datasets")
