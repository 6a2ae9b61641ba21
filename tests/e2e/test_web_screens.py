"""Any screen: overview, inbox, run page, explorer and an entry page in chromium at 390 px (a phone) and 1400 px,
with no horizontal scroll, no console error, the overview's pending table inside its panel, and screenshots in
test-artifacts/web/ to look at."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from coalition.bus.memory import MemoryBus
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import RunnerOptions
from coalition.scenarios.spec import load_scenario
from coalition.web.app import create_app
from coalition.web.passwords import hash_password

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "web"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORD = "screens test password"
FINISHED = "helios-launch-20260301-101500-screens-finished"
PENDING = "helios-launch-20260301-111500-screens-interactive"
WIDTHS = (390, 1400)


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"chromium is required under CI but {CHROMIUM} is missing")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


def _serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A finished helios-launch run and a two-day interactive one with escalations still pending; an approver."""
    _need_chromium()
    tmp = tmp_path_factory.mktemp("screens")
    ledger_path = tmp / "ledger.db"
    with SqliteLedger(ledger_path) as ledger:
        bus = MemoryBus(namespace="screens")
        assemble_run(load_scenario("helios-launch"), bus=bus, ledger=ledger, run_id=FINISHED).run()
        options = RunnerOptions(interactive=True, approval_wait_seconds=0, poll_seconds=0.01)
        short = load_scenario("helios-launch").model_copy(update={"days": 2})
        assemble_run(short, bus=bus, ledger=ledger, run_id=PENDING, options=options).run()
        bus.close()
    app = create_app(ledger_path, tmp / "users.db")
    app.state.console.users.add("carol", ["approver"], hash_password(PASSWORD), now=datetime.now(UTC))
    base, server, thread = _serve(app)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.console.close()


PAGES: dict[str, str] = {
    "overview": "/",
    "inbox": "/approvals",
    "run": f"/runs/{FINISHED}",
    "explorer": "/ledger",
    "explorer-filtered": f"/ledger?run={FINISHED}&kind=verdict&outcome=deny",
    "entry": "/ledger/entries/40",
    "error": "/runs/no-such-run",
}


class TestScreens:
    """Every main page at a phone's and a desktop's width."""

    @pytest.mark.parametrize("width", WIDTHS)
    def test_no_horizontal_scroll_and_no_console_error(self, console: str, width: int) -> None:
        from playwright.sync_api import sync_playwright

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        overflow: dict[str, tuple[int, int]] = {}
        errors: list[str] = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": width, "height": 900})
                page.on("console", lambda m: errors.append(f"{m.text} @ {m.location}") if m.type == "error" else None)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                _log_in(page, console)
                for name, path in PAGES.items():
                    page.goto(f"{console}{path}")
                    if name == "run":
                        page.wait_for_selector("#fig-budgets .plot-container .main-svg", timeout=30_000)
                    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                    if scroll > inner:
                        overflow[name] = (scroll, inner)
                    page.screenshot(path=str(ARTIFACTS / f"screen-{name}-{width}.png"), full_page=True)
                if width >= 1400:
                    page.goto(f"{console}/")
                    spill = _pending_table_spill(page)
                    assert spill <= 0, f"the pending table spills {spill}px out of its panel"
            finally:
                browser.close()
        assert overflow == {}, f"pages wider than the {width}px screen: {overflow}"
        # the error page answers 404 on purpose; chromium logs that status as a console error
        assert [e for e in errors if "404" not in e] == []

    def test_inbox_shows_deadlines_and_keeps_navigation_on_errors(self, console: str) -> None:
        from playwright.sync_api import expect, sync_playwright

        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 390, "height": 900})
                _log_in(page, console)
                page.goto(f"{console}/approvals")
                card = page.locator("article.card").first
                expect(card).to_contain_text("(simulated)")
                expect(card).to_contain_text("simulated h left")
                page.goto(f"{console}/runs/no-such-run")
                expect(page.locator("header.top nav a", has_text="Approvals")).to_be_visible()
            finally:
                browser.close()


def _log_in(page: Any, base: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", "carol")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _pending_table_spill(page: Any) -> float:
    """How far (px) the overview's pending-approvals table reaches past the right edge of its panel."""
    return float(
        page.evaluate(
            """() => {
              const panels = [...document.querySelectorAll('.panel')];
              const panel = panels.find(p => p.textContent.includes('Pending approvals'));
              const table = panel.querySelector('table');
              return table.getBoundingClientRect().right - panel.getBoundingClientRect().right;
            }"""
        )
    )
