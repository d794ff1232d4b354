"""Where documents come from: BEIR directories, JSONL files of documents, and `beir:NAME` downloads."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from indexes import Document
from service.errors import DatasetError
from service.settings import Settings

logger = logging.getLogger(__name__)

BEIR_PREFIX = "beir:"
_DOWNLOAD_CHUNK = 1 << 20


def corpus_file(path: Path) -> Path:
    """The JSONL file of documents at `path`: the file itself, or a BEIR directory's corpus.jsonl."""
    if path.is_dir():
        corpus = path / "corpus.jsonl"
        if not corpus.is_file():
            raise DatasetError(f"{path} is a directory without corpus.jsonl (not a BEIR dataset)")
        return corpus
    if path.is_file():
        return path
    raise DatasetError(f"dataset {str(path)!r} does not exist")


def read_documents(path: Path) -> Iterator[Document]:
    """Documents from a BEIR corpus (`_id`, `title`, `text`, optional `metadata`) or a JSONL of `{id, ...}`.

    Raises:
        DatasetError: a line that is not a JSON object with a string or integer id (names file and line).
    """
    source = corpus_file(path)
    with source.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record: Any = json.loads(line)
            except ValueError as exc:
                raise DatasetError(f"{source}:{line_number}: not valid JSON ({exc})") from exc
            yield _document_from_record(record, source, line_number)


def _document_from_record(record: Any, source: Path, line_number: int) -> Document:
    if not isinstance(record, dict):
        raise DatasetError(f"{source}:{line_number}: expected a JSON object, got {type(record).__name__}")
    raw_id = record.get("_id", record.get("id"))
    if not isinstance(raw_id, str | int) or isinstance(raw_id, bool) or str(raw_id) == "":
        raise DatasetError(f"{source}:{line_number}: missing or invalid document id {raw_id!r}")
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise DatasetError(f"{source}:{line_number}: metadata must be an object, got {metadata!r}")
    title, text = record.get("title") or "", record.get("text") or ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise DatasetError(f"{source}:{line_number}: title and text must be strings")
    return Document(str(raw_id), title, text, metadata)


def resolve_dataset(spec: str, settings: Settings) -> Path:
    """A local path for a dataset spec: a path as given, or `beir:NAME` downloaded into GLASSBOX_HOME once."""
    if not spec.startswith(BEIR_PREFIX):
        return Path(spec)
    name = spec[len(BEIR_PREFIX) :]
    if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise DatasetError(f"invalid BEIR dataset name {name!r}")
    target = settings.datasets_dir / name
    if (target / "corpus.jsonl").is_file():
        return target
    download_beir(settings.beir_url.format(name=name), name, settings.datasets_dir)
    return target


def download_beir(url: str, name: str, datasets_dir: Path) -> Path:
    """Download a BEIR zip and unpack its `NAME/` folder into `datasets_dir/NAME` (atomically, with progress)."""
    datasets_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=datasets_dir, prefix=f".{name}-") as tmp:
        archive = Path(tmp) / f"{name}.zip"
        try:
            with urllib.request.urlopen(url, timeout=60) as response, archive.open("wb") as out:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"download {name}") as bar:
                    while chunk := response.read(_DOWNLOAD_CHUNK):
                        out.write(chunk)
                        bar.update(len(chunk))
        except urllib.error.HTTPError as exc:
            exc.close()  # an HTTPError holds the open response
            raise DatasetError(f"cannot download BEIR dataset {name!r} from {url}: {exc}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise DatasetError(f"cannot download BEIR dataset {name!r} from {url}: {exc}") from exc
        unpacked = Path(tmp) / "unpacked"
        try:
            with zipfile.ZipFile(archive) as bundle:
                for member in bundle.namelist():
                    resolved = (unpacked / member).resolve()
                    if not resolved.is_relative_to(unpacked.resolve()):
                        raise DatasetError(f"unsafe path {member!r} in {url}")
                bundle.extractall(unpacked)
        except zipfile.BadZipFile as exc:
            raise DatasetError(f"{url} is not a zip archive: {exc}") from exc
        source = unpacked / name if (unpacked / name).is_dir() else unpacked
        if not (source / "corpus.jsonl").is_file():
            raise DatasetError(f"{url} holds no {name}/corpus.jsonl")
        target = datasets_dir / name
        shutil.rmtree(target, ignore_errors=True)
        source.rename(target)
    logger.info("BEIR dataset %s unpacked into %s", name, target)
    return target
