"""The web service end to end in headless Chromium (Debian's package, driven by Playwright): upload
the bundled sample through the page, wait for the results, read the table, download gradings.csv."""
from __future__ import annotations

import csv
import io
import os
import shutil
import socket
import threading
import time

import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
import uvicorn
from conftest import SAMPLE_T2

from spinecore.serve import ServeSettings, create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
#: Flags for Chromium on a machine with a closed network and no display (see .ci/run).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RESULT_TIMEOUT_MS = 240_000
#: CI sets this so that a missing browser fails the run instead of skipping the test.
REQUIRE_BROWSER = os.environ.get("SPINECORE_REQUIRE_BROWSER") == "1"
#: Where to save the results page's screenshot (the README's), when set.
SCREENSHOT_DIR = os.environ.get("SPINECORE_SCREENSHOT_DIR")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    """``spinecore serve`` as it runs for a user: uvicorn on localhost, one worker process."""
    app = create_app(ServeSettings(tmp_path_factory.mktemp("browser-data"), jobs=1))
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)


@pytest.fixture(scope="module")
def browser():
    if CHROMIUM is None:
        if REQUIRE_BROWSER:
            pytest.fail("SPINECORE_REQUIRE_BROWSER=1 but no chromium on PATH (apt-get install chromium)")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    with playwright.sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


def test_upload_the_sample_through_the_page_and_download_the_gradings(live_server, browser, tmp_path):
    page = browser.new_page(accept_downloads=True, viewport={"width": 1280, "height": 900})
    page.goto(live_server + "/")
    page.set_input_files("#file-input", str(SAMPLE_T2))
    page.uncheck("#tta")
    page.click("#upload-button")
    page.wait_for_url("**/jobs/*")
    page.wait_for_selector("#results", state="visible", timeout=RESULT_TIMEOUT_MS)
    assert page.inner_text("#job-error") == ""

    header = [cell.inner_text() for cell in page.locator("#gradings thead th").all()]
    rows = [[cell.inner_text() for cell in row.locator("th, td").all()] for row in page.locator("#gradings tbody tr").all()]
    with page.expect_download() as download:
        page.click("#downloads a[download='gradings.csv']")
    saved = tmp_path / "gradings.csv"
    download.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text())))

    assert header[0] == "Level" and "pfirrmann" in header and header[-1] == "QC flags"
    assert [row[0] for row in rows] == [row["level"] for row in table] and len(rows) >= 5
    for shown, written in zip(rows, table):
        pfirrmann = shown[header.index("pfirrmann")]
        assert pfirrmann.startswith(f"{written['pfirrmann']} (")
        assert shown[-1] == written["flags"].replace(";", ", ")

    slider = page.locator("#slice-slider")
    first_slice = page.get_attribute("#slice-image", "src")
    slider.fill("0")
    assert page.get_attribute("#slice-image", "src") != first_slice and page.inner_text("#slice-label").startswith("slice 1 of")
    assert page.evaluate("document.getElementById('overview').naturalWidth") > 0
    if SCREENSHOT_DIR:
        slider.fill(str(int(page.get_attribute("#slice-slider", "max")) // 2))
        page.screenshot(path=os.path.join(SCREENSHOT_DIR, "serve_results.png"), full_page=True)
