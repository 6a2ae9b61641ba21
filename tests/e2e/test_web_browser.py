"""The console in a real browser (Playwright driving Debian's chromium): approve an interactive run's escalation."""

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

import pytest
import uvicorn

from coalition.governance.approvals import load_escalations, policy_for_run, record_decision
from coalition.ledger.base import LedgerQuery
from coalition.ledger.sqlite import SqliteLedger
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
PASSWORD = "browser test password"


def _need_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"chromium is required under CI but {CHROMIUM} is missing")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Board(threading.Thread):
    """Stands in for the other humans: rejects every pending escalation except the one the browser decides."""

    def __init__(self, ledger_path: Path) -> None:
        super().__init__(daemon=True)
        self.ledger_path = ledger_path
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
                result = record_decision(
                    ledger,
                    run_id=RUN,
                    proposal_id=e.proposal_id,
                    approver=approver,
                    decision="reject",
                    reason="not in this test",
                    method="test-board",
                    policy=policy,
                )
                if not result.accepted:
                    self.errors.append(result.reason)


@pytest.fixture
def live_console(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[bytes], _Board]]:
    _need_chromium()
    ledger_path = tmp_path / "ledger.db"
    env = {**os.environ, "COALITION_DATA_DIR": str(tmp_path / ".coalition")}
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
    app = create_app(ledger_path, tmp_path / "users.db")
    password_hash = hash_password(PASSWORD)
    for name in ("carol", "dave"):
        app.state.console.users.add(name, ["approver"], password_hash, now=datetime.now(UTC))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.05)
    board = _Board(ledger_path)
    board.start()
    try:
        yield f"http://127.0.0.1:{port}", ledger_path, run, board
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
