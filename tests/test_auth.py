"""API-key auth: every route of the app, with no key, a wrong key and a key of the wrong scope; keys never logged.

The route table below must name every route the app serves (a test enumerates `app.routes`), so a new route
cannot ship without an auth expectation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import ValidationError
from starlette.routing import Mount
from typer.testing import CliRunner

from service.api import create_app
from service.api_keys import Principal, Scope, check_keys, find_key, grants, hash_key, new_key_entry
from service.cli import app as cli_app
from service.cli import check_exposure, is_loopback, settings_problems
from service.encoder import SentenceTransformerEncoder
from service.errors import ConfigurationError
from service.settings import ApiKeySettings, ExperimentDefinition, Settings
from tests.test_api import DOCS, assert_error

PUBLIC = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/ui"}
# every protected route: the scope it needs on the collection "papers" (None: any valid key) and a request body
# that succeeds with that scope
ROUTES: dict[tuple[str, str], tuple[Scope | None, dict[str, Any] | None]] = {
    ("POST", "/v1/collections"): ("write", {"name": "papers"}),
    ("GET", "/v1/collections"): (None, None),
    ("GET", "/v1/collections/{collection}"): ("read", None),
    ("DELETE", "/v1/collections/{collection}"): ("write", None),
    ("POST", "/v1/collections/{collection}/documents"): ("write", {"documents": [{"id": "new", "text": "new"}]}),
    ("GET", "/v1/collections/{collection}/documents/{doc_id}"): ("read", None),
    ("DELETE", "/v1/collections/{collection}/documents/{doc_id}"): ("write", None),
    ("POST", "/v1/collections/{collection}/documents/delete"): ("write", {"ids": ["statin"]}),
    ("POST", "/v1/collections/{collection}/search"): ("read", {"query": "cholesterol"}),
    ("POST", "/v1/collections/{collection}/search/batch"): ("read", {"queries": [{"query": "cholesterol"}]}),
    ("POST", "/v1/collections/{collection}/context"): ("read", {"query": "cholesterol", "token_budget": 50}),
    ("POST", "/v1/experiments"): (
        "write",  # on every collection the experiment names ("*" when it names none)
        {
            "id": "new-exp",
            "variants": [{"name": "a", "first_stage": "dense", "stages": []}, {"name": "b"}],
            "collections": ["papers"],
        },
    ),
    ("GET", "/v1/experiments"): (None, None),  # any valid key; the list shows the experiments it may read
    ("GET", "/v1/experiments/{experiment}"): ("read", None),
    # any valid key: the random impression id is what ties feedback to a search
    ("POST", "/v1/feedback"): (None, {"impression_id": "exp:" + "0" * 32, "doc_id": "statin"}),
}
EXPERIMENT = ExperimentDefinition.model_validate(
    {"id": "exp", "variants": [{"name": "dense", "first_stage": "dense", "stages": []}, {"name": "served"}],
     "collections": ["papers"]}
)  # fmt: skip
ADMIN, ADMIN_ENTRY = new_key_entry("admin", ["*"], ["*"])
READER, READER_ENTRY = new_key_entry("reader", ["papers"], [])
WRITER, WRITER_ENTRY = new_key_entry("writer", [], ["papers"])
OTHER, OTHER_ENTRY = new_key_entry("other", ["other"], ["other"])
ENTRIES = [ADMIN_ENTRY, READER_ENTRY, WRITER_ENTRY, OTHER_ENTRY]
KEY_FOR_SCOPE = {"read": READER, "write": WRITER}
WRONG_SCOPE = {"read": WRITER, "write": READER}  # write does not imply read, nor read write


def app_routes() -> list[str]:
    """`METHOD path` for every route and mount the app serves (read from `app.routes`, not from a list)."""
    app = create_app(Settings(home=Path("/nonexistent"), api_keys=ENTRIES))  # the lifespan never runs
    found = []
    for context in iter_route_contexts(app.routes):  # included routers flattened, with their prefixes
        if isinstance(context.route, Mount):
            found.append(f"GET {context.path}")
        else:
            found += [f"{method} {context.path}" for method in sorted(context.methods or ()) if method != "HEAD"]
    assert len(found) > len(PUBLIC), found
    return found


def protected_routes() -> list[str]:
    return [route for route in app_routes() if route.split(" ", 1)[1] not in PUBLIC]


def request(client: TestClient, route: str, headers: dict[str, str]) -> Any:
    method, path = route.split(" ", 1)
    if (method, path) not in ROUTES:
        pytest.fail(f"{route} is not in this module's ROUTES table: add its scope (or make it public on purpose)")
    _, body = ROUTES[(method, path)]
    url = path.replace("{collection}", "papers").replace("{doc_id}", "statin").replace("{experiment}", "exp")
    return client.request(method, url, json=body, headers=headers)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, encoder: SentenceTransformerEncoder) -> Iterator[TestClient]:
    """Auth on, with the collection "papers" (the requests below are refused, so they change nothing)."""
    settings = Settings(home=tmp_path_factory.mktemp("auth") / "home", api_keys=ENTRIES, experiments=[EXPERIMENT])
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        admin = {"X-API-Key": ADMIN}
        assert test_client.post("/v1/collections", json={"name": "papers"}, headers=admin).status_code == 201
        upsert = test_client.post("/v1/collections/papers/documents", json={"documents": DOCS}, headers=admin)
        assert upsert.status_code == 200
        yield test_client


@pytest.fixture
def fresh_client(tmp_path: Path, encoder: SentenceTransformerEncoder) -> Iterator[TestClient]:
    """Like `client`, for requests that change things."""
    settings = Settings(home=tmp_path / "home", api_keys=ENTRIES, experiments=[EXPERIMENT])
    with TestClient(create_app(settings, encoder=encoder)) as test_client:
        admin = {"X-API-Key": ADMIN}
        assert test_client.post("/v1/collections", json={"name": "papers"}, headers=admin).status_code == 201
        assert test_client.post("/v1/collections/papers/documents", json={"documents": DOCS}, headers=admin)
        yield test_client


def test_every_route_is_public_or_in_the_table() -> None:
    routes = set(app_routes())
    assert {f"{method} {path}" for method, path in ROUTES} <= routes  # the table names no stale route
    assert "POST /v1/collections/{collection}/search" in routes and "GET /healthz" in routes


@pytest.mark.slow
@pytest.mark.parametrize("route", protected_routes())
def test_missing_key_is_401_with_challenge(client: TestClient, route: str) -> None:
    response = request(client, route, {})
    assert_error(response, 401, "unauthorized", "X-API-Key")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="glassbox"'


@pytest.mark.slow
@pytest.mark.parametrize("route", protected_routes())
@pytest.mark.parametrize(
    "headers",
    [{"X-API-Key": "gbx_not-a-key"}, {"Authorization": "Bearer gbx_not-a-key"}, {"X-API-Key": ADMIN + "x"}],
    ids=["header", "bearer", "near-miss"],
)
def test_wrong_key_is_401(client: TestClient, route: str, headers: dict[str, str]) -> None:
    response = request(client, route, headers)
    assert_error(response, 401, "unauthorized", "not valid")
    assert "gbx_" not in response.text


@pytest.mark.slow
@pytest.mark.parametrize("route", protected_routes())
@pytest.mark.parametrize("which", ["other-scope", "other-collection"])
def test_wrong_scope_key_is_403_naming_collection_and_scope(client: TestClient, route: str, which: str) -> None:
    method, path = route.split(" ", 1)
    scope, _ = ROUTES[(method, path)]
    if scope is None:
        pytest.skip("any valid key may list; the list is filtered (test_list_shows_only_readable_collections)")
    key = WRONG_SCOPE[scope] if which == "other-scope" else OTHER
    error = assert_error(request(client, route, {"X-API-Key": key}), 403, "forbidden", "'papers'", scope)
    holder = {entry.sha256: entry.name for entry in ENTRIES}[hash_key(key)]
    assert error["details"] == {"key": holder, "scope": scope, "collection": "papers"}


@pytest.mark.slow
@pytest.mark.parametrize("route", protected_routes())
def test_right_scope_succeeds(fresh_client: TestClient, route: str) -> None:
    method, path = route.split(" ", 1)
    scope, _ = ROUTES[(method, path)]
    if (method, path) == ("POST", "/v1/collections"):
        admin = {"X-API-Key": ADMIN}
        assert fresh_client.delete("/v1/collections/papers", headers=admin).status_code == 200  # to create it
    key = KEY_FOR_SCOPE[scope] if scope is not None else OTHER
    response = request(fresh_client, route, {"X-API-Key": key})
    assert 200 <= response.status_code < 300, response.text


@pytest.mark.slow
def test_list_shows_only_readable_collections(fresh_client: TestClient) -> None:
    admin = {"X-API-Key": ADMIN}
    assert fresh_client.post("/v1/collections", json={"name": "other"}, headers=admin).status_code == 201

    def names(key: str) -> list[str]:
        response = fresh_client.get("/v1/collections", headers={"X-API-Key": key})
        return [c["name"] for c in response.json()["collections"]]

    assert sorted(names(ADMIN)) == ["other", "papers"]
    assert (names(READER), names(OTHER), names(WRITER)) == (["papers"], ["other"], [])


@pytest.mark.slow
def test_bearer_form_and_header_precedence(client: TestClient) -> None:
    search = {"query": "cholesterol", "top_k": 1}
    url = "/v1/collections/papers/search"
    assert client.post(url, json=search, headers={"Authorization": f"Bearer {READER}"}).status_code == 200
    assert client.post(url, json=search, headers={"Authorization": f"bearer {READER}"}).status_code == 200
    assert_error(client.post(url, json=search, headers={"Authorization": f"Basic {READER}"}), 401, "unauthorized")
    both = {"X-API-Key": WRITER, "Authorization": f"Bearer {READER}"}  # X-API-Key is checked first
    assert_error(client.post(url, json=search, headers=both), 403, "forbidden", "writer")


@pytest.mark.slow
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/ui/"])
def test_public_routes_need_no_key(client: TestClient, path: str) -> None:
    assert client.get(path).status_code == 200


@pytest.mark.slow
def test_without_keys_auth_is_off(client: TestClient, tmp_path: Path, encoder: SentenceTransformerEncoder) -> None:
    with TestClient(create_app(Settings(home=tmp_path / "home"), encoder=encoder)) as open_client:
        assert open_client.post("/v1/collections", json={"name": "papers"}).status_code == 201
        assert open_client.get("/v1/collections").json()["collections"][0]["name"] == "papers"


def test_openapi_declares_the_schemes_and_auth_errors(tmp_path: Path) -> None:
    schema = create_app(Settings(home=tmp_path / "home", api_keys=ENTRIES)).openapi()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "X-API-Key",
        "description": "an API key (see GLASSBOX_API_KEYS)",
    }
    assert schemes["Bearer"]["scheme"] == "bearer"
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            protected = path.startswith("/v1/")
            assert ("security" in operation) == protected, (method, path)
            if protected:
                assert operation["security"] == [{"ApiKey": []}, {"Bearer": []}]
                assert {"401", "403"} <= set(operation["responses"]), (method, path)
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every record from every logger at DEBUG, including loggers that do not propagate to the root."""
    caplog.set_level(logging.DEBUG)
    loggers = [logger for logger in logging.root.manager.loggerDict.values() if isinstance(logger, logging.Logger)]
    saved = [(logger, logger.level) for logger in loggers]
    detached = [logger for logger in loggers if not logger.propagate]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    for logger in detached:
        logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in detached:
            logger.removeHandler(caplog.handler)
        for logger, level in saved:
            logger.setLevel(level)


@pytest.mark.slow
def test_keys_and_digests_never_reach_the_logs(
    tmp_path: Path, encoder: SentenceTransformerEncoder, all_logs: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path / "home", api_keys=ENTRIES)
    wrong = "gbx_" + "q" * 43
    # keys (real and wrong ones presented) and digests, by a prefix long enough to be unique
    secrets = [secret[:16] for secret in (ADMIN, READER[4:], WRITER, OTHER, wrong, *(e.sha256 for e in ENTRIES))]
    with TestClient(create_app(settings, encoder=encoder)) as client:
        for headers in (
            {"X-API-Key": ADMIN},
            {"Authorization": f"Bearer {READER}"},
            {"X-API-Key": WRITER},  # 403 on reads
            {"X-API-Key": READER[:-1]},  # 401, one character short of a real key
            {"Authorization": f"Bearer {wrong}"},  # 401
            {"X-API-Key": OTHER},
            {},
        ):
            client.post("/v1/collections", json={"name": "papers"}, headers=headers)
            client.post("/v1/collections/papers/documents", json={"documents": DOCS}, headers=headers)
            client.post("/v1/collections/papers/search", json={"query": "statins"}, headers=headers)
            client.get("/v1/collections", headers=headers)
    records = all_logs.records
    assert any("refused" in record.getMessage() for record in records)  # the failures were logged, without keys
    for record in records:
        text = f"{record.getMessage()} {vars(record)!r}"
        leaked = [secret for secret in secrets if secret in text]
        assert not leaked, f"{record.name} logged a key or digest: {leaked}"


# --- keys, settings and the CLI ---------------------------------------------------------------------------------


def test_keys_are_random_and_only_digests_are_kept() -> None:
    key, entry = new_key_entry("ingest", ["*"], ["scifact"])
    assert key.startswith("gbx_") and len(key) == 47 and key != new_key_entry("ingest", ["*"], [])[0]
    assert entry.sha256 == hash_key(key) and key not in entry.model_dump_json()
    assert find_key(key, [READER_ENTRY, entry]) is entry and find_key(key + "x", [entry]) is None
    principal = Principal.of(entry)
    assert principal.can("read", "anything") and principal.can("write", "scifact")
    assert not principal.can("write", "nfcorpus") and not Principal.of(WRITER_ENTRY).can("read", "papers")
    assert grants(["*"], "x") and not grants([], "x")


def test_settings_read_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_API_KEYS", json.dumps([READER_ENTRY.model_dump()]))
    assert Settings().api_keys == [READER_ENTRY]


def test_settings_errors_never_echo_a_pasted_key() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(api_keys=[{"name": "oops", "sha256": ADMIN}])
    text = settings_problems(caught.value)
    assert "api_keys.0.sha256" in text and "never the key itself" in text and ADMIN not in text
    with pytest.raises(ValidationError, match="'Bad'"):
        ApiKeySettings(name="x", sha256=hash_key("k"), read=["Bad"])


def test_duplicate_entries_are_refused_by_name() -> None:
    again = ApiKeySettings(name="reader", sha256=hash_key("other"), read=["*"])
    with pytest.raises(ConfigurationError, match=r"repeated: \['reader'\]"):
        check_keys([READER_ENTRY, again])
    twin = READER_ENTRY.model_copy(update={"name": "twin"})
    with pytest.raises(ConfigurationError, match=r"\['reader', 'twin'\] hold the same key") as caught:
        create_app(Settings(api_keys=[READER_ENTRY, twin]))
    assert READER_ENTRY.sha256 not in str(caught.value)


def test_cli_creates_a_key_whose_entry_authenticates_it() -> None:
    result = CliRunner().invoke(cli_app, ["keys", "create", "--name", "ingest", "--read", "*", "--write", "a,b"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    key, entry = lines[1], ApiKeySettings.model_validate_json(lines[-1])
    assert (entry.name, entry.read, entry.write) == ("ingest", ["*"], ["a", "b"])
    assert find_key(key, Settings(api_keys=[entry]).api_keys) == entry
    bad = CliRunner().invoke(cli_app, ["keys", "create", "--name", "x", "--write", "Not/A/Name"])
    assert bad.exit_code == 2 and "'Not/A/Name'" in bad.output


def test_serve_refuses_a_public_host_without_keys(tmp_path: Path) -> None:
    env = {"GLASSBOX_HOME": str(tmp_path), "GLASSBOX_API_KEYS": "[]", "GLASSBOX_ALLOW_ANONYMOUS": "false"}
    result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "1"], env=env)
    assert result.exit_code == 2
    assert "refusing to serve on --host 0.0.0.0 without authentication" in result.output
    assert "GLASSBOX_API_KEYS" in result.output and "GLASSBOX_ALLOW_ANONYMOUS=true" in result.output
    check_exposure(Settings(), "127.0.0.1")  # loopback: fine without keys
    check_exposure(Settings(allow_anonymous=True), "0.0.0.0")
    check_exposure(Settings(api_keys=[READER_ENTRY]), "0.0.0.0")
    assert [is_loopback(h) for h in ("localhost", "127.0.0.2", "::1", "[::1]", "0.0.0.0", "example.org", "::")] == [
        True,
        True,
        True,
        True,
        False,
        False,
        False,
    ]
