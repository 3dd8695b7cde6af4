"""End to end: quickstart.ipynb in JupyterLab, in headless Chromium, run by clicking "Run All".

Needs Debian's ``chromium`` (``.ci/install-browser`` installs it) and the ``playwright``
package, which drives that browser through ``executable_path`` (no browser download).
Screenshots go to ``test-artifacts/`` (or ``$DATAMULTIPROC_ARTIFACTS``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.notebook.conftest import ARTIFACTS, NOTEBOOKS

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900), pytest.mark.usefixtures("jupyter_path")]

CHROMIUM = Path(os.environ.get("DATAMULTIPROC_CHROMIUM", "/usr/bin/chromium"))
TOKEN = "datamultiproc-e2e"
SAMPLES = 200

# Every cell stays in the DOM (no virtual scrolling), and no news pop-up covers the page.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false"},
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[str]:
    """Serve tmp_path (holding copies of quickstart.ipynb and inspect.ipynb) with JupyterLab."""
    for name in ("quickstart.ipynb", "inspect.ipynb"):
        shutil.copy(NOTEBOOKS / name, tmp_path / name)
    settings = tmp_path / ".lab-settings"
    for name, values in LAB_SETTINGS.items():
        path = settings / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    env = {
        **os.environ,
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / ".lab-workspaces"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / ".jupyter-config"),
    }
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "jupyterlab.log"
    log = log_path.open("wb")
    server = subprocess.Popen(
        [
            sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
            "--ip=127.0.0.1", f"--port={port}", f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={tmp_path}",
        ],
        cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _wait_for_server(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"JupyterLab exited with {server.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within 90 s:\n{log.read_text()[-3000:]}")


def test_quickstart_in_jupyterlab_shows_the_progress_panel_reaching_its_total(lab: str) -> None:
    with _browser_page("jupyterlab-quickstart.png") as page:
        _open_and_run_all(page, f"{lab}/lab/tree/quickstart.ipynb?token={TOKEN}")
        _check_quickstart(page)


def test_stop_button_in_jupyterlab_ends_the_run(lab: str, tmp_path: Path) -> None:
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    code = (
        "import time\n"
        "from datamultiproc import BaseSample, Processor\n\n"
        "class Item(BaseSample):\n    value: int\n\n"
        "class Slow(Processor):\n"
        "    def process(self, sample):\n        time.sleep(0.05)\n        return sample\n\n"
        "items = [Item(id=f'i{n}', value=n) for n in range(4000)]\n"
        "result = Slow().run(items, workers=2, progress=True)\n"
        "print('status:', result.status, 'ok:', result.n_ok)"
    )
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook = new_notebook(cells=[new_code_cell(code)], metadata={"kernelspec": kernelspec})
    nbformat.write(notebook, tmp_path / "stop.ipynb")
    with _browser_page("jupyterlab-stop.png") as page:
        from playwright.sync_api import expect

        _open_and_run_all(page, f"{lab}/lab/tree/stop.ipynb?token={TOKEN}")
        summary = page.locator(".datamultiproc-progress-summary")
        # Click once some samples are done, so that the results so far are not empty.
        expect(summary).to_contain_text(re.compile(r"\b[1-9][\d,]*/4,000 samples"), timeout=120_000)
        page.locator(".datamultiproc-progress-stop").click()
        expect(summary).to_contain_text("Interrupted", timeout=60_000)
        output = page.locator(".jp-OutputArea-output").filter(has_text="status: interrupted")
        expect(output).to_have_count(1, timeout=60_000)
        match = re.search(r"ok: (\d+)", output.inner_text())
        assert match is not None
        assert 0 < int(match.group(1)) < 4000


def test_inspect_in_jupyterlab_shows_samples_and_traces_with_thumbnails(lab: str) -> None:
    """Screenshots of a sample and a trace, in the light and the dark theme, go to the artifacts."""
    from playwright.sync_api import expect

    with _browser_page("jupyterlab-inspect.png", width=1800) as page:  # room for a trace
        _open_and_run_all(page, f"{lab}/lab/tree/inspect.ipynb?token={TOKEN}")
        expect(page.locator(".widget-toggle-buttons")).to_have_count(1, timeout=300_000)
        displays = page.locator(".jp-RenderedHTML .dmp")  # not the browser widget's
        expect(displays).to_have_count(4, timeout=60_000)  # sample, 2 traces, result sample
        sample, trace = displays.nth(0), displays.nth(1)
        expect(trace).to_contain_text("cache miss: new configuration")
        for display in (sample, trace):
            images = display.locator("img")
            assert images.count() >= 1
            for index in range(images.count()):
                loaded = images.nth(index).evaluate("img => img.complete && img.naturalWidth")
                assert loaded > 0  # the PNG decoded in the browser
        browser = page.locator(".jp-OutputArea-output").filter(
            has=page.locator(".widget-toggle-buttons")
        )
        shown = {"sample": sample, "trace": trace, "browse": browser}
        _screenshots(page, shown, theme="light")
        _switch_to_dark_theme(page)
        _screenshots(page, shown, theme="dark")


def _screenshots(page: Any, elements: dict[str, Any], *, theme: str) -> None:
    for name, element in elements.items():
        element.scroll_into_view_if_needed()
        page.wait_for_timeout(300)
        element.screenshot(path=str(ARTIFACTS / f"{name}-display-{theme}.png"))


def _switch_to_dark_theme(page: Any) -> None:
    from playwright.sync_api import expect

    page.click('.lm-MenuBar-item:has-text("Settings")')
    page.locator('.lm-Menu-itemLabel:text-is("Theme")').hover()
    page.locator('.lm-Menu-itemLabel:text-is("JupyterLab Dark")').click()
    expect(page.locator('body[data-jp-theme-light="false"]')).to_have_count(1, timeout=30_000)


@contextlib.contextmanager
def _browser_page(screenshot: str, *, width: int = 1280) -> Iterator[Any]:
    """Yield a Chromium page; save a screenshot of it to the artifacts at the end."""
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: run .ci/install-browser (as root) to install it")
    sync_api = pytest.importorskip(
        "playwright.sync_api",
        reason="the playwright package is not installed (pip install playwright)",
    )
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": width, "height": 900})
        try:
            yield page
        finally:
            page.screenshot(path=str(ARTIFACTS / screenshot))
            browser.close()


def _open_and_run_all(page: Any, url: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.wait_for_selector(".jp-NotebookPanel .jp-Cell", timeout=120_000)
    # The kernel is ready once the status bar says so (the toolbar says "idle" earlier).
    expect(page.locator(".jp-StatusBar-Widget").filter(has_text="| Idle")).to_have_count(
        1, timeout=120_000
    )
    first_prompt = page.locator(".jp-CodeCell .jp-InputPrompt").first
    for _attempt in range(3):
        page.click('.lm-MenuBar-item:has-text("Run")')
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        try:  # a click before the kernel connection settles can go unheard: then click again
            expect(first_prompt).to_contain_text(re.compile(r"\[(\*|\d+)\]"), timeout=20_000)
            break
        except AssertionError:
            continue


def _check_quickstart(page: Any) -> None:
    from playwright.sync_api import expect

    panels = page.locator(".datamultiproc-progress")
    expect(panels).to_have_count(2, timeout=300_000)  # the first run and the rerun
    summaries = page.locator(".datamultiproc-progress-summary")
    for index in range(2):
        expect(summaries.nth(index)).to_contain_text(
            f"Complete · {SAMPLES}/{SAMPLES} samples", timeout=300_000
        )
    expect(
        page.locator(".jp-OutputArea-output").filter(has_text="saved samples: 200")
    ).to_have_count(1, timeout=120_000)
    # The bar itself is full, drawn green, and the table has the pipeline's stages.
    bar = page.locator(".datamultiproc-progress-bar .progress-bar").first
    width = bar.evaluate("element => element.style.width || element.style.height")
    assert width == "100%"
    assert "progress-bar-success" in (bar.get_attribute("class") or "")
    expect(page.locator(".datamultiproc-progress-stages").first).to_contain_text("Scale")
    panel = panels.first
    panel.scroll_into_view_if_needed()
    panel.screenshot(path=str(ARTIFACTS / "progress-panel.png"))
