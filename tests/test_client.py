"""The Python client (sync and async), the LangChain retriever, the RAG context endpoint and online experiments,
all against the live app served by uvicorn on a free port."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from glassbox_client import AsyncGlassboxClient, GlassboxAPIError, GlassboxClient
from glassbox_client.langchain import GlassboxRetriever
from service.api import create_app
from service.encoder import SentenceTransformerEncoder
from service.settings import ExperimentDefinition, Settings
from tests.servers import free_port

pytestmark = pytest.mark.slow
DOCUMENTS = [
    {"id": "statin", "title": "Statins", "text": "Statins lower LDL cholesterol and reduce heart attacks. " * 6},
    {"id": "aspirin", "title": "Aspirin", "text": "Aspirin reduces fever and inhibits platelet aggregation. " * 6},
    {"id": "insulin", "title": "Insulin", "text": "Insulin regulates blood glucose in diabetes. " * 6},
    {"id": "vaccine", "title": "Vaccines", "text": "Vaccines train the immune system against viruses. " * 6},
]
EXPERIMENTS = [
    ExperimentDefinition.model_validate(
        {"id": "ab", "variants": [{"name": "dense", "first_stage": "dense", "stages": []}, {"name": "served"}]}
    ),
    ExperimentDefinition.model_validate(
        {
            "id": "tdi",
            "mode": "interleave",
            "variants": [{"name": "bm25", "first_stage": "bm25", "stages": []}, {"name": "served"}],
        }
    ),
]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory, encoder: SentenceTransformerEncoder) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("client") / "home"
    app = create_app(Settings(home=home, experiments=EXPERIMENTS), encoder=encoder)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the app did not start in 60 s"
    url = f"http://127.0.0.1:{port}"
    with GlassboxClient(url) as client:
        client.create_collection("papers")
        client.upsert("papers", DOCUMENTS)
    yield url
    server.should_exit = True
    thread.join(timeout=30)


def test_sync_client_searches_and_reads_errors(base_url: str) -> None:
    with GlassboxClient(base_url) as client:
        response = client.search("papers", "what lowers cholesterol?", top_k=2)
        assert response.results[0].id == "statin" and len(response.results) == 2
        assert response.variant == "hybrid+cosine" and response.experiment is None
        assert "dense" in response.results[0].breakdown
        with pytest.raises(GlassboxAPIError) as raised:
            client.search("nope", "anything")
        assert raised.value.status == 404 and raised.value.code == "collection_not_found"
        assert raised.value.request_id  # the server's X-Request-ID comes back on errors


@pytest.mark.parametrize("budget", [1, 40, 120, 5000])
def test_context_respects_its_budget_and_returns_only_kept_passages(base_url: str, budget: int) -> None:
    with GlassboxClient(base_url) as client:
        searched = client.search("papers", "heart attacks and cholesterol", top_k=4)
        context = client.context("papers", "heart attacks and cholesterol", token_budget=budget, top_k=4)
    kept = [r.id for r in searched.results if r.kept]
    assert context.tokens == sum(p.tokens for p in context.passages) <= budget
    assert [p.id for p in context.passages] + context.left_out == kept  # every kept result, in order, once
    assert all(p.rationale.startswith(f"rank {i}") for i, p in enumerate(context.passages, start=1))
    if budget == 5000:
        assert not context.left_out and not any(p.truncated for p in context.passages)
    assert context.tokenizer.endswith("all-MiniLM-L6-v2")


def test_async_client(base_url: str) -> None:
    async def run() -> tuple[str, int]:
        async with AsyncGlassboxClient(base_url) as client:
            response = await client.search("papers", "blood glucose", top_k=1)
            context = await client.context("papers", "blood glucose", token_budget=30, top_k=1)
            return response.results[0].id, context.tokens

    top, tokens = asyncio.run(run())
    assert top == "insulin" and 0 < tokens <= 30


def test_langchain_retriever_sync_and_async(base_url: str) -> None:
    with GlassboxClient(base_url) as client:
        retriever = GlassboxRetriever(collection="papers", client=client, top_k=2)
        documents = retriever.invoke("immune system viruses")
    assert documents[0].metadata["id"] == "vaccine" and documents[0].page_content.startswith("Vaccines")
    assert "breakdown" not in documents[0].metadata and "explanation" in documents[0].metadata

    async def run() -> str:
        async with AsyncGlassboxClient(base_url) as async_client:
            retriever = GlassboxRetriever(collection="papers", async_client=async_client, top_k=1)
            found = await retriever.ainvoke("platelets and fever")
            return str(found[0].metadata["id"])

    assert asyncio.run(run()) == "aspirin"


def test_ab_experiment_assignment_feedback_and_report(base_url: str) -> None:
    with GlassboxClient(base_url) as client:
        seen: dict[str, str] = {}
        for unit in [f"user-{i}" for i in range(30)] * 2:  # every unit twice: the same variant both times
            response = client.search("papers", "cholesterol", top_k=2, experiment="ab", unit_id=unit)
            exposure = response.experiment
            assert exposure is not None and exposure.mode == "ab"
            assert seen.setdefault(unit, exposure.variant) == exposure.variant
            assert response.variant == ("dense" if exposure.variant == "dense" else "hybrid+cosine")
            client.feedback(exposure.impression_id, response.results[0].id)
        report = client.experiment_report("ab")
        assert set(seen.values()) == {"dense", "served"}
        assert report["impressions"] == 60
        assert sum(v["impressions"] for v in report["variants"].values()) == 60
        assert all(v["ctr"] == 1.0 and v["mrr"] == 1.0 for v in report["variants"].values())
        with pytest.raises(GlassboxAPIError) as raised:
            client.search("papers", "cholesterol", experiment="ab")  # no unit id
        assert raised.value.status == 422 and raised.value.details["field"] == "unit_id"
        with pytest.raises(GlassboxAPIError) as raised:
            client.feedback("ab:not-an-impression", "statin")
        assert raised.value.status == 422
        with pytest.raises(GlassboxAPIError) as raised:
            client.experiment_report("missing")
        assert raised.value.status == 404 and raised.value.code == "experiment_not_found"


def test_interleaving_serves_one_mixed_list_and_credits_clicks(base_url: str) -> None:
    with GlassboxClient(base_url) as client:
        for i in range(20):
            response = client.search("papers", "insulin and diabetes", top_k=3, experiment="tdi", unit_id=f"s{i}")
            exposure = response.experiment
            assert exposure is not None and exposure.teams is not None
            assert len(exposure.teams) == len(response.results) and set(exposure.teams) <= {"bm25", "served"}
            clicked = response.results[exposure.teams.index("served")].id if "served" in exposure.teams else None
            if clicked is not None:
                client.feedback(exposure.impression_id, clicked)
        report = client.experiment_report("tdi")
    assert report["mode"] == "interleave" and report["impressions"] == 20
    assert report["variants"]["bm25"]["wins"] == 0 and report["variants"]["served"]["wins"] > 0
