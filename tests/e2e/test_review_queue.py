"""The review queue of the sampled approval tier through the CLI (`coalition approvals review …`, `ledger verify`,
`report`) and the web console's inbox, over one recorded chaos-week run under packs/helios/policies/helios-tiers.yaml
(a copy per test). Reviewers are approvers with keys sealed by their password, as for decisions."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from ledger_attacks import rewrite_chain
from typer.testing import CliRunner

from coalition.bus.clock import SimulatedClock
from coalition.bus.keys import APPROVERS_DIR, ApproverKeys, public_text
from coalition.bus.memory import MemoryBus
from coalition.cli import app
from coalition.governance import load_policy
from coalition.governance.reviews import review_statement
from coalition.ledger.base import LedgerQuery
from coalition.ledger.entry import EntryDraft
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import load_scenario
from coalition.web.app import create_app
from coalition.web.passwords import hash_password
from coalition.web.views import REVIEW_LIMIT, review_items

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "packs" / "helios" / "policies" / "helios-tiers.yaml"
PASSWORD = "correct horse battery"
RUN = "tiers"
COALITION = str(Path(sys.executable).with_name("coalition"))
runner = CliRunner()


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """chaos-week under the tiers policy (not interactive: the run records no approver directory, so marks are
    checked against this installation's approver keys), with frank and alice holding sealed keys."""
    path = tmp_path_factory.mktemp("tiers") / "ledger.db"
    keys = ApproverKeys(path.parent / "keys" / APPROVERS_DIR)
    for name in ("frank", "alice"):
        keys.create(name, PASSWORD)
    with SqliteLedger(path) as ledger:
        assemble_run(
            load_scenario("chaos-week"),
            bus=MemoryBus(namespace="tiers"),
            ledger=ledger,
            run_id=RUN,
            policy=load_policy(SHIPPED),
        ).run()
    return path


@pytest.fixture
def ledger_path(template: Path, tmp_path: Path) -> Path:
    shutil.copy(template, tmp_path / "ledger.db")
    shutil.copytree(template.parent / "keys", tmp_path / "keys")
    return tmp_path / "ledger.db"


def cli(ledger: Path, *args: str, password: str | None = PASSWORD) -> Any:
    """`coalition …` with the ledger's folder as the data directory (where the approvers' keys are)."""
    env = {"COALITION_DATA_DIR": str(ledger.parent)}
    full = [*args, "--ledger", str(ledger)]
    if password is not None:
        return runner.invoke(app, [*full, "--password-stdin"], input=password + "\n", env=env)
    return runner.invoke(app, full, env=env)


def queue(ledger: Path, *extra: str) -> list[dict[str, Any]]:
    result = cli(ledger, "approvals", "review", "list", "--json", *extra, password=None)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def append_mark(ledger_path: Path, target: dict[str, Any], key: Ed25519PrivateKey) -> int:
    """Append frank's 'right' mark on `target` signed with `key` straight to the ledger (no review service: no
    key recorded with it); its ledger seq."""
    with SqliteLedger(ledger_path, create=False) as ledger:
        when = ledger.query(LedgerQuery(run_id=RUN, newest_first=True, limit=1))[0].sim_time
        data = review_statement(
            run_id=RUN,
            proposal_id=target["proposal_id"],
            proposal_hash=target["proposal_hash"],
            reviewer="frank",
            mark="right",
            reason="fine",
            marked_at=when,
        )
        payload = {
            "proposal_id": target["proposal_id"],
            "proposal_hash": target["proposal_hash"],
            "reviewer": "frank",
            "mark": "right",
            "reason": "fine",
            "method": "cli",
            "signature": base64.b64encode(key.sign(data)).decode(),
            "signer_key": public_text(key.public_key()),
        }
        draft = EntryDraft(
            run_id=RUN,
            sim_time=when,
            actor="human:frank",
            actor_kind="human",
            kind="review_mark",
            subject=target["proposal_id"],
            payload=payload,
            rationale="fine",
            outcome="right",
            approver="frank",
            message_type="review.marked",
        )
        return ledger.append([draft])[0].seq


class TestCli:
    """List, mark right / wrong, the refusals, and the signatures `ledger verify` checks."""

    def test_list_shows_action_args_verdict_and_rationale(self, ledger_path: Path) -> None:
        rows = queue(ledger_path)
        assert rows
        assert {r["verdict"] for r in rows} == {"allow"}
        first = rows[0]
        assert (first["agent"], first["action"]) == ("ops", "issue_credit")
        assert first["args"]["customer_id"]
        assert first["rationale"]
        assert "may issue_credit" in first["verdict_reasons"]
        table = cli(ledger_path, "approvals", "review", "list", password=None)
        assert f"{len(rows)} of {len(rows)} sampled item(s) wait for review" in table.stdout

    def test_right_then_wrong_is_refused_and_the_queue_shrinks(self, ledger_path: Path) -> None:
        rows = queue(ledger_path)
        pid = rows[0]["proposal_id"]
        ok = cli(ledger_path, "approvals", "review", "right", pid[:8], "--as", "frank")
        assert ok.exit_code == 0, ok.output
        assert "frank marked it right" in ok.stdout
        again = cli(ledger_path, "approvals", "review", "wrong", pid, "--as", "alice", "--reason", "too much")
        assert again.exit_code == 1
        assert "already marked right by frank" in again.output
        assert [r["proposal_id"] for r in queue(ledger_path)] == [r["proposal_id"] for r in rows[1:]]
        marked = queue(ledger_path, "--all")[0]
        assert marked["mark"]["mark"] == "right"

    def test_wrong_needs_a_reason(self, ledger_path: Path) -> None:
        pid = queue(ledger_path)[0]["proposal_id"]
        missing = cli(ledger_path, "approvals", "review", "wrong", pid, "--as", "frank")
        assert missing.exit_code == 2  # --reason is required
        blank = cli(ledger_path, "approvals", "review", "wrong", pid, "--as", "frank", "--reason", "  ")
        assert blank.exit_code == 1
        assert "needs a reason" in blank.output

    def test_without_credentials_nothing_is_recorded(self, ledger_path: Path) -> None:
        pid = queue(ledger_path)[0]["proposal_id"]
        no_password = cli(ledger_path, "approvals", "review", "right", pid, "--as", "frank", password="")
        assert no_password.exit_code == 1
        assert "needs frank's password" in no_password.output
        wrong_password = cli(ledger_path, "approvals", "review", "right", pid, "--as", "frank", password="guess")
        assert wrong_password.exit_code == 1
        no_key = cli(ledger_path, "approvals", "review", "right", pid, "--as", "bob")  # an approver with no key
        assert no_key.exit_code == 1
        assert "signed with bob's approver key" in no_key.output
        stranger = cli(ledger_path, "approvals", "review", "right", pid, "--as", "mallory")
        assert stranger.exit_code == 1
        assert "not in the policy's approver directory" in stranger.output
        with SqliteLedger(ledger_path, create=False) as ledger:
            assert ledger.query(LedgerQuery(run_id=RUN, kind="review_mark")) == []

    def test_unknown_and_not_sampled_ids(self, ledger_path: Path) -> None:
        unknown = cli(ledger_path, "approvals", "review", "right", "zzzz", "--as", "frank")
        assert unknown.exit_code == 1
        assert "no proposal zzzz" in unknown.output
        sampled = {r["proposal_id"] for r in queue(ledger_path)}
        with SqliteLedger(ledger_path, create=False) as ledger:
            allowed = ledger.query(LedgerQuery(run_id=RUN, kind="verdict", outcome="allow"))
        other = next(v.subject for v in allowed if v.subject not in sampled)
        refused = cli(ledger_path, "approvals", "review", "right", other, "--as", "frank")
        assert refused.exit_code == 1
        assert "was not sampled for review" in refused.output

    def test_verify_passes_a_real_mark_and_names_a_forged_one(self, ledger_path: Path) -> None:
        rows = queue(ledger_path)
        assert cli(ledger_path, "approvals", "review", "right", rows[0]["proposal_id"], "--as", "frank").exit_code == 0
        ok = cli(ledger_path, "ledger", "verify", password=None)
        assert ok.exit_code == 0, ok.output
        assert "1 review mark signatures verified" in ok.stdout
        target = rows[1]
        forged = append_mark(ledger_path, target, Ed25519PrivateKey.generate())
        bad = cli(ledger_path, "ledger", "verify", password=None)
        assert bad.exit_code == 1
        assert f"BAD REVIEW MARK SIGNATURE at seq {forged} (run {RUN})" in bad.stdout
        assert target["proposal_id"] in {r["proposal_id"] for r in queue(ledger_path)}  # still waits for review

    def test_a_copied_ledger_verifies_its_marks_with_no_key_store(self, ledger_path: Path, tmp_path: Path) -> None:
        """An auditor elsewhere: the ledger file alone, an empty data directory (no approver keys, no witness, no
        memory). The run recorded no approver directory, so each reviewer's first mark recorded their key: the
        marks verify there. A mark rewritten there (right → wrong, the chain rehashed, the checkpoints dropped:
        nothing but the mark's signature can tell) is a bad signature, exit 1."""
        rows = queue(ledger_path)
        assert cli(ledger_path, "approvals", "review", "right", rows[0]["proposal_id"], "--as", "frank").exit_code == 0
        wrong = cli(
            ledger_path, "approvals", "review", "wrong", rows[1]["proposal_id"], "--as", "alice", "--reason", "x"
        )
        assert wrong.exit_code == 0, wrong.output
        assert cli(ledger_path, "approvals", "review", "right", rows[2]["proposal_id"], "--as", "frank").exit_code == 0
        with SqliteLedger(ledger_path, create=False) as ledger:
            bound = ledger.query(LedgerQuery(run_id=RUN, kind="review_key"))
            mark = ledger.query(LedgerQuery(run_id=RUN, kind="review_mark", limit=1))[0]
        assert sorted(e.payload["reviewer"] for e in bound) == ["alice", "frank"]  # once per reviewer
        auditor = tmp_path / "auditor"
        auditor.mkdir()
        copied = auditor / "copied.db"
        shutil.copy(ledger_path, copied)
        env = {"COALITION_DATA_DIR": str(auditor / "empty-data")}
        ok = runner.invoke(app, ["ledger", "verify", "--ledger", str(copied)], env=env)
        assert ok.exit_code == 0, ok.output
        assert "3 review mark signatures verified" in ok.stdout
        assert "cannot be checked" not in ok.stdout
        report = runner.invoke(app, ["report", RUN, "--format", "json", "--ledger", str(copied)], env=env)
        assert report.exit_code == 0, report.output
        reviewed = {r["agent"]: r["reviewed"] for r in json.loads(report.stdout)["reviews"]["rows"]}
        assert sum(reviewed.values()) == 3  # counted with no key installed

        def flip(fields: dict[str, Any]) -> None:
            fields["payload"]["mark"] = "wrong"
            fields["payload"]["reason"] = fields["rationale"] = "too generous"
            fields["outcome"] = "wrong"

        rewrite_chain(copied, mark.seq, flip)
        bad = runner.invoke(app, ["ledger", "verify", "--ledger", str(copied)], env=env)
        assert bad.exit_code == 1, bad.output
        assert f"BAD REVIEW MARK SIGNATURE at seq {mark.seq} (run {RUN})" in bad.stdout
        assert "not frank's over this proposal hash, mark" in bad.stdout

    def test_a_mark_no_key_here_can_check_is_said_not_failed(self, ledger_path: Path, tmp_path: Path) -> None:
        """A mark from before marks recorded their reviewer's key (none in the ledger), read where no key is
        installed: 'cannot be checked here', exit 0, and it counts as no review; with the key installed, checked."""
        target = queue(ledger_path)[0]
        key = ApproverKeys(ledger_path.parent / "keys" / APPROVERS_DIR).unlock("frank", PASSWORD)
        legacy = append_mark(ledger_path, target, key)
        here = cli(ledger_path, "ledger", "verify", password=None)
        assert here.exit_code == 0, here.output
        assert "1 review mark signatures verified" in here.stdout
        env = {"COALITION_DATA_DIR": str(tmp_path / "empty-data")}
        elsewhere = runner.invoke(app, ["ledger", "verify", "--ledger", str(ledger_path)], env=env)
        assert elsewhere.exit_code == 0, elsewhere.output
        assert f"1 review mark(s) cannot be checked here, first at seq {legacy} (run {RUN})" in elsewhere.stdout
        assert "no key for reviewer 'frank' is recorded" in elsewhere.stdout
        assert "BAD" not in elsewhere.stdout

    def test_the_report_shows_the_sampled_error_rate(self, ledger_path: Path) -> None:
        rows = queue(ledger_path)
        ops = [r for r in rows if r["agent"] == "ops"]
        assert cli(ledger_path, "approvals", "review", "right", ops[0]["proposal_id"], "--as", "frank").exit_code == 0
        wrong = cli(
            ledger_path, "approvals", "review", "wrong", ops[1]["proposal_id"], "--as", "alice", "--reason", "tier 2"
        )
        assert wrong.exit_code == 0, wrong.output
        report = cli(ledger_path, "report", RUN, "--format", "md", password=None)
        assert report.exit_code == 0, report.output
        assert f"| ops | {len(ops)} | 2 | 1 | 50% |" in report.stdout
        assert "alice: tier 2" in report.stdout


def test_a_bad_tiers_section_is_one_line_and_exit_2(tmp_path: Path) -> None:
    """Through the real CLI (a child process): the path in the policy, no traceback."""
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    data["tiers"]["actions"]["issue_credit"]["rate"] = 1.5
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(data), encoding="utf-8")
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("coalition")),
            "run",
            "chaos-week",
            "--policy",
            str(bad),
            "--bus",
            "memory",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COALITION_DATA_DIR": str(tmp_path / "data")},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "tiers.actions.issue_credit.rate" in lines[0]
    assert "Traceback" not in done.stderr


class TestConsole:
    """The inbox shows the queue with right / wrong buttons; a mark needs a session, CSRF and the approver role."""

    @pytest.fixture
    def client(self, ledger_path: Path) -> Any:
        clock = SimulatedClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
        web = create_app(ledger_path, ledger_path.parent / "users.db", clock=clock, session_ttl=timedelta(minutes=30))
        for name, roles in {"frank": ["approver"], "alice": ["approver"], "vera": ["viewer"]}.items():
            web.state.console.users.add(name, roles, hash_password(PASSWORD), now=clock.now())
        with TestClient(web, base_url="http://127.0.0.1") as client:
            yield client

    @staticmethod
    def login(client: TestClient, name: str) -> str:
        client.cookies.clear()
        form = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert token is not None
        done = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token.group(1)})
        assert done.status_code == 200, done.text
        csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', done.text)
        assert csrf is not None
        return csrf.group(1)

    def test_the_inbox_lists_the_queue_with_buttons(self, client: TestClient, ledger_path: Path) -> None:
        self.login(client, "frank")
        page = client.get("/approvals")
        assert page.status_code == 200
        rows = queue(ledger_path)
        assert f"Sampled for review ({len(rows)} waiting of {len(rows)})" in page.text
        assert page.text.count('action="/approvals/review"') == len(rows)
        assert 'name="mark" value="wrong"' in page.text

    def test_the_inbox_shows_at_most_its_limit_of_items_and_counts_them_all(
        self, client: TestClient, ledger_path: Path
    ) -> None:
        """A sampled rate of 1 over a long run draws thousands: the inbox lists at most REVIEW_LIMIT of them (the
        waiting ones first) and says how many there are, instead of one form per draw in one page."""
        self.login(client, "frank")
        rows = queue(ledger_path)
        assert len(rows) > 3
        with SqliteLedger(ledger_path, create=False) as ledger:
            shown = review_items(ledger, {}, run_id=RUN, limit=3)
        assert [i.proposal_id for i in shown.items] == [r["proposal_id"] for r in rows[:3]]
        assert (shown.waiting, shown.total) == (len(rows), len(rows))
        page = client.get("/approvals")
        assert f"Sampled for review ({len(rows)} waiting of {len(rows)})" in page.text
        assert page.text.count('action="/approvals/review"') == min(len(rows), REVIEW_LIMIT)

    def test_mark_right_then_twice_is_409(self, client: TestClient, ledger_path: Path) -> None:
        csrf = self.login(client, "frank")
        pid = queue(ledger_path)[0]["proposal_id"]
        form = {"run_id": RUN, "proposal_id": pid, "mark": "right", "reason": "", "csrf_token": csrf}
        done = client.post("/approvals/review", data=form, follow_redirects=False)
        assert done.status_code == 303, done.text
        shown = client.get(done.headers["location"])
        assert "Review mark recorded in the ledger as" in shown.text
        with SqliteLedger(ledger_path, create=False) as ledger:
            marks = ledger.query(LedgerQuery(run_id=RUN, kind="review_mark"))
        assert [(m.approver, m.outcome, m.payload["method"]) for m in marks] == [("frank", "right", "web")]
        again = client.post("/approvals/review", data={**form, "mark": "wrong", "reason": "no"})
        assert again.status_code == 409
        assert "already marked right by frank" in again.text
        assert cli(ledger_path, "ledger", "verify", password=None).exit_code == 0

    def test_without_csrf_or_role_nothing_is_recorded(self, client: TestClient, ledger_path: Path) -> None:
        pid = queue(ledger_path)[0]["proposal_id"]
        self.login(client, "frank")
        no_token = client.post("/approvals/review", data={"run_id": RUN, "proposal_id": pid, "mark": "right"})
        assert no_token.status_code == 403
        csrf = self.login(client, "vera")
        viewer = client.post(
            "/approvals/review", data={"run_id": RUN, "proposal_id": pid, "mark": "right", "csrf_token": csrf}
        )
        assert viewer.status_code == 403
        client.cookies.clear()
        anonymous = client.post(
            "/approvals/review", data={"run_id": RUN, "proposal_id": pid, "mark": "right"}, follow_redirects=False
        )
        assert anonymous.status_code == 303  # to the login page
        with SqliteLedger(ledger_path, create=False) as ledger:
            assert ledger.query(LedgerQuery(run_id=RUN, kind="review_mark")) == []

    def test_wrong_without_reason_is_400_and_not_sampled_is_409(self, client: TestClient, ledger_path: Path) -> None:
        csrf = self.login(client, "alice")
        pid = queue(ledger_path)[0]["proposal_id"]
        blank = client.post(
            "/approvals/review", data={"run_id": RUN, "proposal_id": pid, "mark": "wrong", "csrf_token": csrf}
        )
        assert blank.status_code == 400
        with SqliteLedger(ledger_path, create=False) as ledger:
            denied = ledger.query(LedgerQuery(run_id=RUN, kind="verdict", outcome="deny", limit=1))[0].subject
        not_sampled = client.post(
            "/approvals/review", data={"run_id": RUN, "proposal_id": denied, "mark": "right", "csrf_token": csrf}
        )
        assert not_sampled.status_code == 409
        assert "was not sampled" in not_sampled.text
