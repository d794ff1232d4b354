"""Public surfaces: `__all__` lists exactly what each package exports, and the dependency rule holds."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from pydantic import BaseModel

from kg import Edge, Mention, PathRationale
from service.settings import Settings
from tests.conftest import PROJECT_ROOT

CORE = ("indexes", "adapters", "kg")
FORBIDDEN = {"evaluation", "fastapi", "redis", "service", "starlette", "uvicorn"}


@pytest.mark.parametrize("package", [*CORE, "service.api", "evaluation"])
def test_all_names_exist_once(package: str) -> None:
    module = importlib.import_module(package)
    assert len(set(module.__all__)) == len(module.__all__)  # the order is ruff's (RUF022)
    assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.parametrize("package", CORE)
def test_core_packages_import_no_service_web_or_each_other(package: str) -> None:
    others = set(CORE) - {package}
    for path in Path(PROJECT_ROOT, package).rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in FORBIDDEN | others, f"{path} imports {name}"


def test_settings_read_nested_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_INDEX__FACTORY", "HNSW32")
    monkeypatch.setenv("GLASSBOX_SEARCH__MAX_TOP_K", "50")
    monkeypatch.setenv("GLASSBOX_HOME", "/tmp/elsewhere")
    settings = Settings()
    assert (settings.index.factory, settings.search.max_top_k) == ("HNSW32", 50)
    assert settings.collections_dir == Path("/tmp/elsewhere/collections")


def test_settings_reject_bad_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GLASSBOX_INDEX__DEVICE", "tpu")
    with pytest.raises(ValueError, match="tpu"):
        Settings()


def test_kg_rationale_renders_and_mentions_check_spans() -> None:
    edges = (
        Edge("C1", "treats", "D1", "atorvastatin", "hypertension"),
        Edge("D1", "resembles", "D2", "hypertension", "stroke"),
    )
    assert PathRationale(edges, 0.5).render() == "atorvastatin —treats→ hypertension —resembles→ stroke"
    assert not Mention("D1", "stroke", 0, 6).is_faithful_to("Stroke risk", normalise=False)
    assert Mention("D1", "stroke", 0, 6).is_faithful_to("Stroke risk")


def test_readme_documents_every_setting() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    names = []
    for name, field in Settings.model_fields.items():
        section = field.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            names += [f"GLASSBOX_{name.upper()}__{sub.upper()}" for sub in section.model_fields]
        else:
            names.append(f"GLASSBOX_{name.upper()}")
    missing = [n for n in names if f"`{n}`" not in readme]
    assert not missing, f"README settings table lacks {missing}"
