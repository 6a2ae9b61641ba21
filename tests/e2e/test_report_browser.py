"""The HTML report in a real headless Chromium with every network request blocked: the charts render."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coalition.bus.memory import MemoryBus
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.report_render import render
from coalition.scenarios.reports import run_report
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.e2e
CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _need_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("CI"):  # as tests/conftest.py: under CI a missing service fails loudly
        pytest.fail(f"{CHROMIUM} is missing (install Debian's chromium package)")
    pytest.skip(f"{CHROMIUM} is not installed; the browser check needs Debian's chromium")


class TestReportInBrowser:
    """Offline rendering of the self-contained report."""

    def test_charts_render_offline(self, tmp_path: Path) -> None:
        """Six plotly charts draw SVG, no request leaves file://, no console error; a screenshot is kept."""
        _need_chromium()
        from playwright.sync_api import Request, Route, sync_playwright

        ledger = SqliteLedger(tmp_path / "l.db")
        assemble_run(load_scenario("chaos-week"), bus=MemoryBus(namespace="b"), ledger=ledger, run_id="chaos-b").run()
        page_file = tmp_path / "report.html"
        page_file.write_text(render(run_report(ledger, "chaos-b"), "html"), encoding="utf-8")
        ledger.close()
        blocked: list[str] = []
        errors: list[str] = []

        def route(r: Route, request: Request) -> None:
            if request.url.startswith("file://"):
                r.continue_()
            else:
                blocked.append(request.url)
                r.abort()

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.route("**/*", route)
                page.goto(page_file.as_uri())
                page.wait_for_selector(".plot-container .main-svg", timeout=20_000)
                containers = page.locator(".plot-container").count()
                traces = page.locator(".plot-container .scatterlayer .trace, .plot-container .barlayer .trace").count()
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "report-chaos-week.png"), full_page=True)
            finally:
                browser.close()
        assert containers == 6
        assert traces > 5
        assert blocked == []
        assert errors == []
