"""Experiment events and reports: the embedded log survives a reopen; the Redis Streams log loses nothing while its
Redis is down; reports compute CTR, MRR of clicks and interleaving credit from events."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from service.experiments.events import ExperimentEvent, RedisStreamEventLog, SqliteEventLog
from service.experiments.report import experiment_report
from service.settings import ExperimentDefinition
from tests.servers import RedisServer

AB = ExperimentDefinition.model_validate(
    {"id": "exp", "variants": [{"name": "dense", "first_stage": "dense", "stages": []}, {"name": "full"}]}
)
INTERLEAVED = ExperimentDefinition.model_validate(
    {"id": "tdi", "mode": "interleave", "variants": [{"name": "dense"}, {"name": "full"}]}
)


def impression(
    experiment: str, number: int, variant: str, docs: list[str], teams: list[str] | None = None
) -> ExperimentEvent:
    payload = {"variant": variant, "doc_ids": docs} | ({"teams": teams} if teams else {})
    return ExperimentEvent(experiment, "impression", f"{experiment}:{number:032x}", payload)


def click(experiment: str, number: int, doc: str) -> ExperimentEvent:
    return ExperimentEvent(experiment, "feedback", f"{experiment}:{number:032x}", {"doc_id": doc, "type": "click"})


def test_definitions_are_validated() -> None:
    with pytest.raises(ValueError, match="exactly two"):
        ExperimentDefinition.model_validate(
            {"id": "x", "mode": "interleave", "variants": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}
        )
    with pytest.raises(ValueError, match="unique"):
        ExperimentDefinition.model_validate({"id": "x", "variants": [{"name": "a"}, {"name": "a"}]})


def test_embedded_log_keeps_events_in_order_across_reopen(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "events.sqlite")
    events = [impression("exp", i, "dense", ["a", "b"]) for i in range(5)] + [click("exp", 2, "b")]
    for event in events:
        log.append(event)
    log.close()
    reopened = SqliteEventLog(tmp_path / "events.sqlite")
    assert reopened.events("exp") == events
    assert reopened.events("other") == []
    reopened.close()


def test_ab_report_counts_ctr_and_mrr_of_clicks() -> None:
    events = [
        impression("exp", 1, "dense", ["a", "b", "c"]),
        impression("exp", 2, "dense", ["a", "b", "c"]),
        impression("exp", 3, "full", ["b", "a"]),
        impression("exp", 4, "full", ["b", "a"]),
        click("exp", 1, "c"),  # rank 3
        click("exp", 3, "b"),  # rank 1
        click("exp", 4, "a"),  # rank 2
        click("exp", 4, "b"),  # rank 1 is the first clicked position
        click("exp", 99, "a"),  # no such impression
    ]
    report = experiment_report(AB, events)
    dense, full = report["variants"]["dense"], report["variants"]["full"]
    assert (dense["impressions"], dense["clicked_impressions"], dense["ctr"]) == (2, 1, 0.5)
    assert dense["mrr"] == pytest.approx((1 / 3 + 0) / 2)
    assert (full["ctr"], full["mrr"]) == (1.0, 1.0)
    assert full["vs_control"]["control"] == "dense" and 0 <= full["vs_control"]["p_value_mrr"] <= 1
    assert report["feedback_without_impression"] == 1 and report["impressions"] == 4


def test_interleaving_report_credits_the_team_with_more_clicks() -> None:
    events = []
    for number in range(20):
        events.append(impression("tdi", number, "interleave", ["x", "y"], ["full", "dense"]))
        events.append(click("tdi", number, "x"))  # every click goes to full's document
    report = experiment_report(INTERLEAVED, events)
    assert report["variants"] == {"dense": {"wins": 0}, "full": {"wins": 20}}
    assert report["winner"] == "full" and report["p_value"] < 0.001


@pytest.mark.slow
def test_redis_log_loses_nothing_while_redis_is_down(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "redis")
    log = RedisStreamEventLog(server.url, SqliteEventLog(tmp_path / "outbox.sqlite"), retry_s=0.2)
    try:
        sent = [impression("exp", i, "dense", ["a"]) for i in range(30)]
        for event in sent[:10]:
            log.append(event)
        assert server.client().xlen(RedisStreamEventLog.stream("exp")) == 10
        server.kill()
        for event in sent[10:20]:
            log.append(event)  # never raises: the outbox takes them
        assert log.status() == "down"
        assert log.events("exp") == sent[10:20]  # the stream is gone with its server; the outbox still answers
        server.start()  # an empty Redis on the same port
        for event in sent[20:]:
            log.append(event)  # queued behind the waiting ones, so the stream stays in order
        deadline = time.monotonic() + 10
        while log.status() != "ok" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert log.status() == "ok"
        assert log.events("exp") == sent[10:]  # all forwarded, in order, none twice
        assert server.client().xlen(RedisStreamEventLog.stream("exp")) == 20
    finally:
        log.close()
        server.kill()
