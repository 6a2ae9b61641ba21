"""The dashboards (executive overview, trust, ops cockpit) in chromium at a phone's and a desktop's width: no
horizontal scroll, no console error, every figure's entry links lead to ledger entries of the run."""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from coalition.bus.memory import MemoryBus
from coalition.ledger.base import LedgerQuery
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import load_scenario
from coalition.web.app import create_app
from coalition.web.passwords import hash_password

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORD = "dashboards test password"

RUN = "dash-run"
OTHER = "dash-other"
WIDTHS = (390, 1400)
BOARDS = ("overview", "trust", "ops")


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # tests/conftest.py's rule: any non-empty CI is CI
            pytest.fail(f"chromium is required under CI but {CHROMIUM} is missing")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """A console over two finished runs (helios-launch, then meter-outage), so run numbers and ledger seqs differ."""
    _need_chromium()
    tmp_path = tmp_path_factory.mktemp("dash")
    ledger_path = tmp_path / "ledger.db"
    with SqliteLedger(ledger_path) as ledger:
        for run_id, name in ((OTHER, "meter-outage"), (RUN, "helios-launch")):
            bus = MemoryBus(namespace=run_id)
            assemble_run(load_scenario(name), bus=bus, ledger=ledger, run_id=run_id).run()
            bus.close()
        first_entries = ledger.count(LedgerQuery(run_id=OTHER))
    app = create_app(ledger_path, tmp_path / "users.db")
    app.state.console.users.add("vera", ["viewer"], hash_password(PASSWORD), now=datetime.now(UTC))
    base, server, thread = _serve(app)
    try:
        yield base, first_entries
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.console.close()


class TestDashboardsInABrowser:
    """What executives, risk and ops people open, on a phone and on a desk."""

    def test_every_board_at_390_and_1400(self, served: tuple[str, int]) -> None:
        from playwright.sync_api import sync_playwright

        console, _ = served
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            errors: list[str] = []
            try:
                for width in WIDTHS:
                    page = browser.new_page(viewport={"width": width, "height": 900})
                    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.goto(f"{console}/login")
                    page.fill("input[name=name]", "vera")
                    page.fill("input[name=password]", PASSWORD)
                    page.click("button[type=submit]")
                    page.wait_for_url(f"{console}/")
                    page.click("nav >> text=Dashboards")
                    page.wait_for_url(re.compile(rf".*/dashboards/overview/{RUN}$"))
                    for board in BOARDS:
                        page.goto(f"{console}/dashboards/{board}/{RUN}")
                        assert page.locator(".dash-card").count() >= 2, board
                        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                        assert overflow <= 0, f"{board} at {width}px scrolls sideways by {overflow}px"
                        page.screenshot(path=str(ARTIFACTS / f"dashboard-{board}-{width}.png"), full_page=True)
                    assert errors == [], errors
                    page.close()
            finally:
                browser.close()

    def test_figures_link_to_this_runs_entries(self, served: tuple[str, int]) -> None:
        """A figure's #N link opens a ledger entry of this run (not of the run recorded before it)."""
        from playwright.sync_api import sync_playwright

        console, offset = served
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(f"{console}/login")
                page.fill("input[name=name]", "vera")
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_url(f"{console}/")
                page.goto(f"{console}/dashboards/ops/{RUN}")
                link = page.locator(".dash-card .dash-entries a").first
                label = link.inner_text()
                href = link.get_attribute("href") or ""
                seq = int(href.rsplit("/", 1)[1])
                assert label == f"#{seq - offset}"
                page.goto(f"{console}{href}")
                assert RUN in page.content()
            finally:
                browser.close()
