"""The console in a real browser (Playwright driving Debian's chromium): approve an interactive run's escalation,
and a finished run's page draws its plotly charts from the console's own origin only (and works without JS)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from coalition.bus.keys import APPROVERS_DIR, ApproverKeys
from coalition.bus.memory import MemoryBus
from coalition.governance import default_policy
from coalition.governance.approvals import load_escalations, policy_for_run, record_decision
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
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
RUN = "browser-run"
CHARTS_RUN = "browser-charts"
PASSWORD = "browser test password"
FIGURES = ("money", "revenue", "prices", "timeline", "outcomes", "budgets")


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):  # the rule of tests/conftest.py's service_unavailable: any non-empty CI is CI
            pytest.fail(f"chromium is required under CI but {CHROMIUM} is missing")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _serve(app: FastAPI) -> tuple[str, uvicorn.Server, threading.Thread]:
    """The app under uvicorn on a free local port, in a daemon thread; returns its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


class _Board(threading.Thread):
    """Stands in for the other humans: rejects every pending escalation except the one the browser decides."""

    def __init__(self, ledger_path: Path, keys: ApproverKeys) -> None:
        super().__init__(daemon=True)
        self.ledger_path = ledger_path
        self.keys = keys
        self.unlocked: dict[str, Ed25519PrivateKey] = {}  # each human's key, opened once with their password
        self.target: str | None = None
        self.stop = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.wait(0.3):
            if not self.ledger_path.exists():
                continue
            try:
                self._tick()
            except Exception as exc:  # reported by the test, never swallowed
                self.errors.append(repr(exc))

    def _tick(self) -> None:
        with SqliteLedger(self.ledger_path, create=False) as ledger:
            if not ledger.count(LedgerQuery(run_id=RUN, kind="run")):
                return
            policy = policy_for_run(ledger, RUN)
            for e in load_escalations(ledger, run_id=RUN, policy=policy):
                if not e.is_open:
                    continue
                if self.target is None and e.gate == "market_entry":
                    self.target = e.proposal_id
                if e.proposal_id == self.target:
                    continue
                approver = next(n for n, roles in policy.approvers.items() if set(roles) & set(e.approver_roles))
                if approver not in self.unlocked:
                    self.unlocked[approver] = self.keys.unlock(approver, PASSWORD)
                result = record_decision(
                    ledger,
                    run_id=RUN,
                    proposal_id=e.proposal_id,
                    approver=approver,
                    decision="reject",
                    reason="not in this test",
                    method="test-board",
                    policy=policy,
                    key=self.unlocked[approver],
                )
                if not result.accepted:
                    self.errors.append(result.reason)


@pytest.fixture
def live_console(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes], _Board]]:
    _need_chromium()
    ledger_path = tmp_path / "ledger.db"
    data_dir = tmp_path / ".coalition"
    env = {**os.environ, "COALITION_DATA_DIR": str(data_dir)}
    keys = ApproverKeys(data_dir / "keys" / APPROVERS_DIR)  # what `coalition users add … --role approver` makes
    for name in default_policy().approvers:
        keys.create(name, PASSWORD)
    cli = Path(sys.executable).with_name("coalition")
    log = (tmp_path / "run.log").open("wb")
    run = subprocess.Popen(
        [str(cli), "run", "helios-launch", "--interactive", "--bus", "memory", "--ledger", str(ledger_path),
         "--run-id", RUN, "--approval-wait", "120"],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not ledger_path.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    app = create_app(ledger_path, data_dir / "users.db")  # beside keys/approvers, as `coalition serve` has it
    password_hash = hash_password(PASSWORD)
    for name in ("carol", "dave"):
        app.state.console.users.add(name, ["approver"], password_hash, now=datetime.now(UTC))
    base, server, thread = _serve(app)
    board = _Board(ledger_path, keys)
    board.start()
    try:
        yield base, ledger_path, run, board
    finally:
        board.stop.set()
        if run.poll() is None:
            run.terminate()
            run.wait(timeout=10)
        log.close()
        server.should_exit = True
        thread.join(timeout=10)


class TestBrowser:
    """Log in, open the inbox, approve (four-eyes), see the run complete and the approval in the explorer."""

    def test_approve_an_interactive_run_in_the_browser(
        self, live_console: tuple[str, Path, subprocess.Popen[bytes], _Board]
    ) -> None:
        """Two board members approve in chromium; the run completes; the explorer shows both approvals."""
        from playwright.sync_api import expect, sync_playwright

        base, ledger_path, run, board = live_console
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            page = browser.new_page()
            deadline = time.monotonic() + 60
            while board.target is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert board.target is not None, f"no market entry escalation appeared; board errors: {board.errors}"
            for approver in ("carol", "dave"):
                page.goto(f"{base}/login")
                page.fill("input[name=name]", approver)
                page.fill("input[name=password]", PASSWORD)
                page.click("button[type=submit]")
                page.goto(f"{base}/approvals")
                card = page.locator(f"#esc-{board.target}")
                expect(card).to_contain_text("enter_market")
                card.locator("textarea[name=reason]").fill(f"{approver}: the region has a legal path and demand")
                page.screenshot(path=str(ARTIFACTS / f"inbox-{approver}.png"), full_page=True)
                card.locator("button[value=approve]").click()
                expect(page.locator("p.ok")).to_contain_text("Decision recorded")
                page.locator("form[action='/logout'] button").click()
            # exit 1 = completed with some scenario expectations unmet (the stand-in board rejected their gates)
            assert run.wait(timeout=120) in (0, 1), (ledger_path.parent / "run.log").read_text()
            page.goto(f"{base}/login")
            page.fill("input[name=name]", "carol")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{base}/runs/{RUN}")
            expect(page.locator("[data-field=status]")).to_have_text("completed")
            page.wait_for_selector("#fig-money .plot-container .main-svg", timeout=20_000)
            page.screenshot(path=str(ARTIFACTS / "run-completed.png"), full_page=True)
            page.goto(f"{base}/ledger?run={RUN}&kind=approval")
            rows = page.locator("table.entries tbody tr")
            expect(rows.filter(has_text="human:carol")).to_have_count(1)
            expect(rows.filter(has_text="human:dave")).to_have_count(1)
            page.screenshot(path=str(ARTIFACTS / "ledger-approvals.png"), full_page=True)
            browser.close()
        assert board.errors == []
        with SqliteLedger(ledger_path, create=False) as ledger:
            approvals = ledger.query(LedgerQuery(run_id=RUN, kind="approval", subject=board.target))
            resolution = ledger.query(LedgerQuery(run_id=RUN, kind="resolution", subject=board.target))
        assert [(a.approver, a.payload["method"]) for a in approvals] == [("carol", "web"), ("dave", "web")]
        assert [r.outcome for r in resolution] == ["approved"]


@pytest.fixture(scope="module")
def finished_run_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A console over a ledger holding one finished helios-launch run; a viewer named vera."""
    _need_chromium()
    tmp_path = tmp_path_factory.mktemp("charts")
    ledger_path = tmp_path / "ledger.db"
    with SqliteLedger(ledger_path) as ledger:
        bus = MemoryBus(namespace="browser-charts")
        assemble_run(load_scenario("helios-launch"), bus=bus, ledger=ledger, run_id=CHARTS_RUN).run()
        bus.close()
    app = create_app(ledger_path, tmp_path / "users.db")
    app.state.console.users.add("vera", ["viewer"], hash_password(PASSWORD), now=datetime.now(UTC))
    base, server, thread = _serve(app)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        app.state.console.close()


def _log_in(page: Any, base: str, name: str) -> None:
    page.goto(f"{base}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


class TestRunCharts:
    """The run page's plotly figures in chromium, under the console's strict CSP."""

    def test_run_page_draws_plotly_charts_from_its_own_origin(self, finished_run_console: str) -> None:
        """Six plotly charts render; no console error (no CSP violation); every request stays on the origin."""
        from playwright.sync_api import Request, Route, sync_playwright

        base = finished_run_console
        requests: list[str] = []
        foreign: list[str] = []
        errors: list[str] = []

        def route(r: Route, request: Request) -> None:
            requests.append(request.url)
            if request.url.startswith(f"{base}/"):
                r.continue_()
            else:
                foreign.append(request.url)
                r.abort()

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1300, "height": 1000})
                page.on("console", lambda m: errors.append(f"{m.text} @ {m.location}") if m.type == "error" else None)
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.route("**/*", route)
                _log_in(page, base, "vera")
                page.goto(f"{base}/runs/{CHARTS_RUN}")
                page.wait_for_selector("#fig-budgets .plot-container .main-svg", timeout=30_000)
                containers = page.locator(".plot-container").count()
                drawn = [page.locator(f"#fig-{n} .plot-container").count() for n in FIGURES]
                traces = page.locator(".plot-container .scatterlayer .trace, .plot-container .barlayer .trace").count()
                plotly_rules = page.evaluate("document.getElementById('plotly.js-style-global').sheet.cssRules.length")
                svg_position = page.evaluate("getComputedStyle(document.querySelector('.main-svg')).position")
                fallback_visible = page.locator("svg.chart").count()
                timeline = page.locator(".timeline .chip").count()
                page.screenshot(path=str(ARTIFACTS / "run-charts.png"), full_page=True)
            finally:
                browser.close()
        assert containers == len(FIGURES)
        assert drawn == [1] * len(FIGURES)
        assert traces > 10
        assert plotly_rules > 10  # plotly's own CSS went into the same-origin sheet through the CSSOM
        assert svg_position == "absolute"
        assert fallback_visible == 0  # <noscript> SVGs are not built when scripts run
        assert timeline > 10
        assert errors == []
        assert foreign == []
        assert any("/assets/plotly-" in url for url in requests)

    def test_run_page_without_javascript(self, finished_run_console: str) -> None:
        """With JavaScript off: the server-drawn SVG charts, the KPI row and the decision timeline still show."""
        from playwright.sync_api import expect, sync_playwright

        base = finished_run_console
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(java_script_enabled=False)
                page = context.new_page()
                _log_in(page, base, "vera")
                page.goto(f"{base}/runs/{CHARTS_RUN}")
                expect(page.locator("svg.chart")).to_have_count(3)
                expect(page.locator("svg.chart").first).to_be_visible()
                expect(page.locator("table").first).to_contain_text("helios-launch")
                expect(page.locator(".timeline .chip").first).to_be_visible()
                assert page.locator(".plot-container").count() == 0
                page.screenshot(path=str(ARTIFACTS / "run-charts-nojs.png"), full_page=True)
            finally:
                browser.close()

    def test_download_report_link(self, finished_run_console: str, tmp_path: Path) -> None:
        """ "Download report (HTML)" saves the self-contained report, named as `coalition report` names it."""
        from playwright.sync_api import sync_playwright

        base = finished_run_console
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(accept_downloads=True)
                _log_in(page, base, "vera")
                page.goto(f"{base}/runs/{CHARTS_RUN}")
                with page.expect_download() as info:
                    page.get_by_role("link", name="Download report (HTML)").click()
                download = info.value
                saved = tmp_path / download.suggested_filename
                download.save_as(saved)
            finally:
                browser.close()
        assert saved.name == f"report-{CHARTS_RUN}.html"
        text = saved.read_text(encoding="utf-8")
        assert text.startswith("<!doctype html>")
        assert f"run {CHARTS_RUN}" in text
        assert "plotly.js v" in text
