"""Experiment events (impressions, feedback): an embedded SQLite log, or Redis Streams with a local outbox so that
nothing is lost while Redis is down."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

logger = logging.getLogger(__name__)
EventKind = Literal["impression", "feedback"]
_COLUMNS = ("experiment", "kind", "impression_id", "payload", "created_at")


@dataclass(frozen=True)
class ExperimentEvent:
    """One event of an experiment. Impressions carry `variant`, `doc_ids` (and `teams` when interleaved); feedback
    carries `doc_id`, `type` (click or rating) and `value`."""

    experiment: str
    kind: EventKind
    impression_id: str
    payload: dict[str, Any] = field(default_factory=dict)
    created_at: float = field(default_factory=time.time)

    def encoded(self) -> dict[str, str]:
        return {
            "experiment": self.experiment,
            "kind": self.kind,
            "impression_id": self.impression_id,
            "payload": json.dumps(self.payload, separators=(",", ":")),
            "created_at": repr(self.created_at),
        }

    @classmethod
    def decoded(cls, fields: dict[str, str]) -> ExperimentEvent:
        kind: EventKind = "impression" if fields["kind"] == "impression" else "feedback"
        payload = json.loads(fields["payload"])
        return cls(fields["experiment"], kind, fields["impression_id"], payload, float(fields["created_at"]))


class EventLog(Protocol):
    """Where experiment events go; `events` returns one experiment's events in the order they were appended."""

    backend: str

    def append(self, event: ExperimentEvent) -> None: ...

    def events(self, experiment: str) -> list[ExperimentEvent]: ...

    def status(self) -> str: ...

    def close(self) -> None: ...


class SqliteEventLog:
    """Events in a SQLite file (WAL, synchronous=FULL: an acknowledged event survives a crash).

    Rows with `forwarded = 0` are, for a Redis-backed log, the outbox still to be sent.
    """

    backend = "embedded"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY AUTOINCREMENT, experiment TEXT NOT NULL, "
            "kind TEXT NOT NULL, impression_id TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL, "
            "forwarded INTEGER NOT NULL DEFAULT 0)"
        )
        self._db.execute("CREATE INDEX IF NOT EXISTS events_by_experiment ON events (experiment, seq)")
        self._lock = threading.Lock()

    def append(self, event: ExperimentEvent, *, forwarded: bool = False) -> None:
        fields = event.encoded()
        with self._lock:
            self._db.execute(
                "INSERT INTO events (experiment, kind, impression_id, payload, created_at, forwarded) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (*(fields[k] for k in ("experiment", "kind", "impression_id", "payload")), event.created_at, forwarded),
            )

    def events(self, experiment: str, *, pending_only: bool = False) -> list[ExperimentEvent]:
        query = "SELECT experiment, kind, impression_id, payload, created_at FROM events WHERE experiment = ?"
        if pending_only:
            query += " AND forwarded = 0"
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq", (experiment,)).fetchall()
        return [ExperimentEvent.decoded(dict(zip(_COLUMNS, (*r[:4], repr(r[4])), strict=True))) for r in rows]

    def pending(self, limit: int = 500) -> list[tuple[int, ExperimentEvent]]:
        """The oldest events not yet forwarded, with their sequence numbers."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, experiment, kind, impression_id, payload, created_at FROM events WHERE forwarded = 0 "
                "ORDER BY seq LIMIT ?",
                (limit,),
            ).fetchall()
        return [(r[0], ExperimentEvent.decoded(dict(zip(_COLUMNS, (*r[1:5], repr(r[5])), strict=True)))) for r in rows]

    def mark_forwarded(self, seqs: list[int]) -> None:
        with self._lock, self._transaction():
            self._db.executemany("UPDATE events SET forwarded = 1 WHERE seq = ?", [(s,) for s in seqs])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def status(self) -> str:
        return "ok"

    def close(self) -> None:
        with self._lock:
            self._db.close()


class RedisStreamEventLog:
    """Events appended to one Redis Stream per experiment (`glassbox:experiment:<id>:events`).

    While Redis is unreachable, events go to the local outbox (a `SqliteEventLog`) and are forwarded in order once it
    answers again; so are any that arrive while older ones still wait, so a stream never goes out of order. Reports
    read the stream plus whatever still waits in the outbox.
    """

    backend = "redis"

    def __init__(self, url: str, outbox: SqliteEventLog, *, timeout_s: float = 0.25, retry_s: float = 1.0) -> None:
        import redis

        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, decode_responses=True
        )
        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        self._outbox = outbox
        self._retry_s = retry_s
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._stop = threading.Event()
        self._forwarder = threading.Thread(target=self._forward_loop, name="glassbox-event-forwarder", daemon=True)
        self._forwarder.start()

    @staticmethod
    def stream(experiment: str) -> str:
        return f"glassbox:experiment:{experiment}:events"

    def append(self, event: ExperimentEvent) -> None:
        with self._lock:
            if self._down_since is None and not self._outbox.pending(limit=1):
                try:
                    self._client.xadd(self.stream(event.experiment), event.encoded())  # type: ignore[arg-type]
                    return
                except self._errors as exc:
                    self._mark_down(exc)
            self._outbox.append(event)

    def _mark_down(self, exc: Exception) -> None:
        if self._down_since is None:
            logger.warning("redis unreachable, experiment events go to the local outbox: %s", type(exc).__name__)
            self._down_since = time.monotonic()

    def flush(self) -> int:
        """Forward waiting outbox events in order; returns how many went. Stops at the first Redis error."""
        sent = 0
        while True:
            batch = self._outbox.pending()
            if not batch:
                break
            try:
                pipe = self._client.pipeline(transaction=False)
                for _, event in batch:
                    pipe.xadd(self.stream(event.experiment), event.encoded())  # type: ignore[arg-type]
                pipe.execute()
            except self._errors as exc:
                with self._lock:
                    self._mark_down(exc)
                return sent
            self._outbox.mark_forwarded([seq for seq, _ in batch])
            sent += len(batch)
        with self._lock:
            if self._down_since is not None:
                logger.info("redis reachable again: experiment events forwarded (%d waiting ones sent)", sent)
            self._down_since = None
        return sent

    def _forward_loop(self) -> None:
        while not self._stop.wait(self._retry_s):
            if self._down_since is not None or self._outbox.pending(limit=1):
                self.flush()

    def events(self, experiment: str) -> list[ExperimentEvent]:
        entries: list[Any]
        try:
            entries = list(self._client.xrange(self.stream(experiment)))  # type: ignore[arg-type]
        except self._errors as exc:
            with self._lock:
                self._mark_down(exc)
            entries = []
        decoded = [ExperimentEvent.decoded(dict(row)) for _, row in entries]
        return decoded + self._outbox.events(experiment, pending_only=True)

    def status(self) -> str:
        return "down" if self._down_since is not None else "ok"

    def close(self) -> None:
        self._stop.set()
        self._forwarder.join(timeout=2)
        self.flush()
        self._client.close()
        self._outbox.close()
