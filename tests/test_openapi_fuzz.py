"""Schemathesis against the served OpenAPI schema, in-process: no 5xx, and every response is one the schema declares.

Auth is on, and every request carries a key with read and write on every collection, so cases reach the routes.
Cases are bounded (a few hundred in all) and derandomized: the same cases run on every machine.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from service.api import create_app
from service.api_keys import new_key_entry
from service.encoder import SentenceTransformerEncoder
from service.settings import KgSettings, Settings

pytestmark = pytest.mark.slow
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,  # on each success, re-sends without a key and with a made-up one: both must be refused
]
EXAMPLES_PER_VARIANT = 10  # per operation and variant below: ~30 runs x 10 = ~300 cases
DOCS: list[dict[str, Any]] = [
    {"id": "statin", "title": "Statins", "text": "Atorvastatin lowers LDL cholesterol.", "metadata": {"year": 2020}},
    {"id": "vaccine", "title": "Vaccines", "text": "mRNA vaccines induce antibodies.", "metadata": {"year": 2021}},
]


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, encoder: SentenceTransformerEncoder
) -> Iterator[tuple[FastAPI, OpenApiSchema, str]]:
    """The app with auth on and a tiny collection, its schema as served, and an all-scope key."""
    key, entry = new_key_entry("fuzzer", ["*"], ["*"])
    home: Path = tmp_path_factory.mktemp("fuzz") / "home"
    # experiments the fuzzer defines may name the kg stage: give it a tiny graph of its own, not the biomedical ones
    triples = home.parent / "tiny-graph.tsv"
    triples.write_text("atorvastatin\ttreats\thypertension\nhypertension\tresembles\tstroke\n")
    kg = KgSettings(graphs=[], triples=[triples])
    app = create_app(Settings(home=home, api_keys=[entry], kg=kg), encoder=encoder)
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)  # starts the app's lifespan
    with asgi.get_client(cast(Any, app)) as client:
        headers = {"X-API-Key": key}
        assert client.post("/v1/collections", json={"name": "papers"}, headers=headers).status_code == 201
        response = client.post("/v1/collections/papers/documents", json={"documents": DOCS}, headers=headers)
        assert response.status_code == 200, response.text
    try:
        yield app, schema, key
    finally:
        asgi.shutdown_lifespans()


def operation_ids() -> list[str]:
    app = create_app(Settings(home=Path("/nonexistent")))  # routes only; the lifespan never runs
    return [f"{method.upper()} {path}" for path, item in app.openapi()["paths"].items() for method in item]


# (generation mode, collection pinned or None): random collection names mostly meet 404s, so each operation under
# /v1/collections/{collection} also runs against the real collection, where searches and upserts do real work
VARIANTS = [("positive", None), ("negative", None), ("positive", "papers")]


@pytest.mark.parametrize("operation_id", operation_ids())
@pytest.mark.parametrize(("mode", "collection"), VARIANTS, ids=["positive", "negative", "positive-on-papers"])
def test_operation_answers_only_what_the_schema_declares(
    served: tuple[FastAPI, OpenApiSchema, str], operation_id: str, mode: str, collection: str | None
) -> None:
    app, schema, key = served
    method, path = operation_id.split(" ", 1)
    operation = schema[path][method]
    definition = operation.definition.raw
    if mode == "negative" and not (definition.get("parameters") or definition.get("requestBody")):
        pytest.skip("no inputs to make invalid")
    if collection is not None and ("{collection}" not in path or operation_id == "DELETE /v1/collections/{collection}"):
        pytest.skip("no collection to pin (or it would delete the one the other cases use)")
    pinned = {"collection": collection} if collection is not None else None
    strategy = operation.as_strategy(generation_mode=schemathesis.GenerationMode(mode), path_parameters=pinned)

    @settings(
        max_examples=EXAMPLES_PER_VARIANT,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS, app=app)

    check()
