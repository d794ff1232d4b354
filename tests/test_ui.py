"""The explain page at /ui, end to end in real headless Chromium driven by Selenium.

The app runs under uvicorn in a thread (sharing the session's MiniLM) with a few SciFact-like documents and a tiny
triples graph, so KG paths render. A query is typed and submitted from the keyboard; the page must draw results,
relevance bars against τ (or the uncalibrated notice), and KG path graphs, with no console errors.

The browser is Debian's `chromium` + `chromium-driver`: installed here with apt-get when missing and we are root;
otherwise missing in CI (`CI` set) fails and missing locally skips. Selenium uses the local chromedriver, never a
downloaded one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import torch
import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.testclient import TestClient
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from adapters import ARM_FEATURES, CosineAdapter, EncoderSignature
from service.api import create_app
from service.encoder import SentenceTransformerEncoder
from service.settings import FilterSettings, KgSettings, PipelineSettings, Settings
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = PROJECT_ROOT / "docs" / "ui-screenshot.png"
QUERY = "Amitriptyline is an effective treatment for chronic tension-type headaches."
TRIPLES = """\
amitriptyline\ttreats\ttension-type headache
tension-type headache\tis a\theadache
migraine\tis a\theadache
amitriptyline\tis a\ttricyclic antidepressant
nortriptyline\tis a\ttricyclic antidepressant
tricyclic antidepressant\ttreats\tdepression
propranolol\tprevents\tmigraine
atorvastatin\tlowers\tldl cholesterol
"""
DOCUMENTS = [
    {
        "id": "22995579",
        "title": "Amitriptyline is effective in chronic but not in episodic tension-type headache",
        "text": "The tricyclic antidepressant amitriptyline is an effective drug for the prophylactic treatment of "
        "chronic tension-type headache. In a placebo-controlled crossover trial amitriptyline reduced the area "
        "under the headache curve by 30%.",
    },
    {
        "id": "4983",
        "title": "Nortriptyline for major depression in late life",
        "text": "Older adults with major depression responded to nortriptyline more often than to placebo over "
        "16 weeks of treatment.",
    },
    {
        "id": "11705328",
        "title": "Prophylaxis of migraine with propranolol or topiramate",
        "text": "Propranolol and topiramate reduced the frequency of migraine attacks; patients kept headache "
        "diaries for 12 weeks.",
    },
    {
        "id": "13734012",
        "title": "Statins and cardiovascular events",
        "text": "Atorvastatin lowers LDL cholesterol and reduces cardiovascular events in high-risk patients.",
    },
    {
        "id": "5836",
        "title": "Vitamin D supplementation and fractures",
        "text": "Daily vitamin D did not reduce fractures in community-dwelling older adults.",
    },
    {
        "id": "20381484",
        "title": "mRNA vaccines and neutralising antibodies",
        "text": "mRNA vaccines induce neutralising antibodies against SARS-CoV-2 within two weeks.",
    },
]


def browser_missing() -> str | None:
    """Why the browser cannot run, or None; installs Debian's packages first when we can (root with apt-get)."""
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{CHROMIUM} or {CHROMEDRIVER} missing; install with: apt-get install -y chromium chromium-driver"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "chromium", "chromium-driver"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:  # a fresh image has no package lists yet
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, timeout=600, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0 or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        return f"apt-get install chromium chromium-driver failed: {done.stderr.strip()[-500:]}"
    return None


@pytest.fixture(scope="module")
def driver() -> Iterator[webdriver.Chrome]:
    reason = browser_missing()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield browser
    finally:
        browser.quit()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn in a thread on a free port; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def make_app(home: Path, triples: Path, encoder: SentenceTransformerEncoder, *, filtering: bool = True) -> FastAPI:
    """Stages cosine + kg over the tiny graph; the collection is filled through the API before serving."""
    settings = Settings(
        home=home,
        pipeline=PipelineSettings(stages=["cosine", "kg"]),
        kg=KgSettings(graphs=[], triples=[triples], max_document_frequency=1.0),
        filter=FilterSettings(enabled=filtering),
    )
    with TestClient(create_app(settings, encoder=encoder)) as client:
        assert client.post("/v1/collections", json={"name": "scifact"}).status_code == 201
        response = client.post("/v1/collections/scifact/documents", json={"documents": DOCUMENTS})
        assert response.status_code == 200, response.text
    return create_app(settings, encoder=encoder)


def save_calibrated_adapter(home: Path, encoder: SentenceTransformerEncoder) -> None:
    """An untrained Cosine Adapter: by construction p ≈ sigmoid(10·s - 6), a plain increasing map with τ = 0.5."""
    torch.manual_seed(0)
    identity = encoder.identity
    adapter = CosineAdapter(identity.dimension, threshold=0.5, arm_features=ARM_FEATURES, first_stage="hybrid")
    adapter.save(home / "adapters" / "cosine", EncoderSignature(identity.name, identity.dimension))


@pytest.fixture
def triples(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-graph.tsv"
    path.write_text(TRIPLES)
    return path


def search_from_keyboard(browser: webdriver.Chrome, url: str, *, api_key: str = "", top_k: int = 10) -> list[Any]:
    browser.get(f"{url}/ui")
    wait = WebDriverWait(browser, 20)
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#collection option[value='scifact']"))
    for control in browser.find_elements(By.CSS_SELECTOR, "#search-form input, #search-form select"):
        label = browser.find_elements(By.CSS_SELECTOR, f"label[for='{control.get_attribute('id')}']")
        assert label and label[0].text, f"control {control.get_attribute('id')} has no label"
    if api_key:
        browser.find_element(By.ID, "api-key").send_keys(api_key)
    results_wanted = browser.find_element(By.ID, "top-k")
    results_wanted.clear()
    results_wanted.send_keys(str(top_k))
    query = browser.find_element(By.ID, "query")
    query.send_keys(QUERY, Keys.ENTER)  # Enter in the form submits it: no mouse needed
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, "#results li.result"))
    results: list[Any] = browser.find_elements(By.CSS_SELECTOR, "#results li.result")
    return results


def console_errors(browser: webdriver.Chrome) -> list[dict[str, Any]]:
    return [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


def assert_kg_paths_drawn(browser: webdriver.Chrome) -> None:
    graphs = browser.find_elements(By.CSS_SELECTOR, "#results svg.kg-path")
    assert graphs, "no KG path drawn"
    labels = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#results svg.kg-path .edge-label")]
    assert "treats" in labels or "is a" in labels, labels
    assert browser.find_elements(By.CSS_SELECTOR, "#results svg.kg-path .node rect")
    marked = [m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "#results li.result mark")]
    assert {"amitriptyline", "tension-type headache", "headache"} <= set(marked), marked  # in title and text


def test_explain_page_uncalibrated_cosine_and_kg_paths(
    driver: webdriver.Chrome, tmp_path: Path, triples: Path, encoder: SentenceTransformerEncoder
) -> None:
    with serve(make_app(tmp_path / "home", triples, encoder)) as url:
        results = search_from_keyboard(driver, url)
        assert results[0].get_attribute("data-id") == "22995579"
        assert len(results) == len(DOCUMENTS)  # uncalibrated: every candidate kept
        notices = driver.find_elements(By.CSS_SELECTOR, "#results .uncalibrated-notice")
        assert len(notices) == len(results) and "not calibrated" in notices[0].text
        assert not driver.find_elements(By.CSS_SELECTOR, ".relevance-bar")
        assert "uncalibrated" in driver.find_element(By.ID, "calibration-body").text
        assert driver.find_elements(By.CSS_SELECTOR, "#calibration-body svg.histogram rect.bin")
        assert "IMRNN" in driver.find_element(By.ID, "results").text  # absent stage named, not an error
        assert_kg_paths_drawn(driver)
        assert console_errors(driver) == []


def test_explain_page_relevance_bars_against_tau_and_api_key(
    driver: webdriver.Chrome, tmp_path: Path, triples: Path, encoder: SentenceTransformerEncoder
) -> None:
    home = tmp_path / "home"
    save_calibrated_adapter(home, encoder)
    app = make_app(home, triples, encoder, filtering=False)  # every result, on both sides of τ
    keys_seen: list[str | None] = []

    @app.middleware("http")
    async def record_api_key(request: Request, call_next: Any) -> Response:
        if request.url.path.endswith("/search"):
            keys_seen.append(request.headers.get("x-api-key"))
        response: Response = await call_next(request)
        return response

    with serve(app) as url:
        results = search_from_keyboard(driver, url, api_key="secret-key", top_k=3)  # 3: a readable screenshot
        assert keys_seen == ["secret-key"]
        assert results[0].get_attribute("data-id") == "22995579"
        bars = driver.find_elements(By.CSS_SELECTOR, "#results .relevance-bar")
        assert len(bars) == len(results)
        assert driver.find_elements(By.CSS_SELECTOR, "#results .relevance-bar .tau-marker")
        assert len(results) == 3
        assert "kept: above τ" in results[0].text and "below τ: kept, the filter is off" in results[-1].text
        assert driver.find_elements(By.CSS_SELECTOR, "#calibration-body svg.histogram line.tau")
        assert "reliability diagram needs relevance labels" in driver.find_element(By.ID, "calibration-body").text
        assert_kg_paths_drawn(driver)
        assert console_errors(driver) == []
        page, chrome = driver.execute_script(
            "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]"
        )
        driver.set_window_size(1280, min(int(page) + int(chrome), 8000))  # the whole page in one picture
        SCREENSHOT.parent.mkdir(exist_ok=True)
        assert driver.save_screenshot(str(SCREENSHOT))
