"""BEIR-format datasets for evaluation: corpus, queries (text only) and graded qrels per split."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from evaluation.errors import DatasetFormatError
from indexes import Document
from service.datasets import read_documents

Qrels = dict[str, dict[str, int]]
SPLITS = ("train", "dev", "test")
DEV_FRACTION = 0.15
DEV_SEED = 13


@dataclass(frozen=True)
class Split:
    """The queries and graded judgements of one split; `source` says where a derived split came from."""

    name: str
    qrels: Qrels
    source: str


def read_queries(path: Path) -> dict[str, str]:
    """Query id -> text. Only `_id` and `text` are read: `metadata` may hold the answers (SciFact's does)."""
    queries: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                queries[str(record["_id"])] = str(record["text"])
            except (ValueError, KeyError, TypeError) as exc:
                raise DatasetFormatError(f"{path}:{line_number}: not a BEIR query ({exc})") from exc
    return queries


def read_qrels(path: Path) -> Qrels:
    """`query-id<TAB>corpus-id<TAB>score` lines (header optional, CRLF tolerated) -> query -> doc -> grade."""
    qrels: Qrels = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for line_number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if line_number == 1 and fields[0] == "query-id":
                continue
            if len(fields) != 3:
                raise DatasetFormatError(f"{path}:{line_number}: expected 3 tab-separated fields, got {line!r}")
            try:
                grade = int(float(fields[2]))
            except ValueError as exc:
                raise DatasetFormatError(f"{path}:{line_number}: grade {fields[2]!r} is not a number") from exc
            qrels.setdefault(fields[0], {})[fields[1]] = grade
    return qrels


def relevant_only(qrels: Qrels) -> Qrels:
    """Keep judgements with grade > 0 and the queries that have at least one."""
    kept = {q: {d: g for d, g in docs.items() if g > 0} for q, docs in qrels.items()}
    return {q: docs for q, docs in kept.items() if docs}


def split_dev_from_train(train: Qrels, fraction: float = DEV_FRACTION, seed: int = DEV_SEED) -> tuple[Qrels, Qrels]:
    """(train without dev, dev): a seeded `fraction` of train's queries, the same on every machine.

    >>> rest, dev = split_dev_from_train({str(i): {"d": 1} for i in range(20)})
    >>> len(dev), len(rest), sorted(dev) == sorted(split_dev_from_train({str(i): {"d": 1} for i in range(20)})[1])
    (3, 17, True)
    """
    ids = sorted(train)
    random.Random(seed).shuffle(ids)
    dev_ids = set(ids[: round(len(ids) * fraction)])
    return (
        {q: d for q, d in train.items() if q not in dev_ids},
        {q: d for q, d in train.items() if q in dev_ids},
    )


@dataclass(frozen=True)
class BeirDataset:
    """A BEIR directory: `corpus.jsonl`, `queries.jsonl`, `qrels/{train,dev,test}.tsv`."""

    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    def documents(self) -> list[Document]:
        return list(read_documents(self.path))

    def queries(self) -> dict[str, str]:
        path = self.path / "queries.jsonl"
        if not path.is_file():
            raise DatasetFormatError(f"{self.path} has no queries.jsonl")
        return read_queries(path)

    def split(self, name: str) -> Split:
        """Graded qrels of `name`; a missing dev split is a seeded 15 % of train (and train loses those)."""
        if name not in SPLITS:
            raise DatasetFormatError(f"unknown split {name!r}; expected one of {', '.join(SPLITS)}")
        qrels_dir = self.path / "qrels"
        path = qrels_dir / f"{name}.tsv"
        if path.is_file() and not (name == "train" and not (qrels_dir / "dev.tsv").is_file()):
            return Split(name, read_qrels(path), f"qrels/{name}.tsv")
        if name in ("dev", "train") and (qrels_dir / "train.tsv").is_file():
            rest, dev = split_dev_from_train(read_qrels(qrels_dir / "train.tsv"))
            source = f"seeded {DEV_FRACTION:.0%} of qrels/train.tsv queries (seed {DEV_SEED})"
            if name == "dev":
                return Split("dev", dev, source)
            return Split("train", rest, f"qrels/train.tsv without the dev queries ({source})")
        raise DatasetFormatError(f"{self.path} has no qrels/{name}.tsv")
