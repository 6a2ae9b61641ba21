"""Human decisions are history: an interactive run with CLI approvals (four-eyes included), killed with SIGKILL
at five points and resumed each time, ends with the same digest as an uninterrupted run with the same decisions,
with every authorization executed once; both replay IDENTICAL. Run from the CLI, as an operator would.

The operator here makes the same decisions in the same order in both runs, one at a time, each once its escalation
is pending and the run has taken the previous one in (a `decision_point` entry lists it): the order and batching of
human decisions are part of a run's history, so the reference run and the interrupted one must be given the same
ones to be comparable. (An operator who picked "the first pending escalation" would not be: the settlement and the
pricing escalations open one superstep apart, about 20 ms, and whether both or one were visible at a given look
decided which was approved first: a different, equally valid history, and the reason this test was once flaky.)
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coalition.bus.keys import APPROVERS_DIR, ApproverKeys
from coalition.governance.approvals import load_escalations
from coalition.governance.policy import default_policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.errors import LedgerError
from coalition.ledger.sqlite import SqliteLedger

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
SCENARIO = "chaos-week"  # nine days, four escalations: incident, compliance, settlement, pricing (four eyes)
# the operator's decisions, in order: (gate, verb, approver); two approvers for the four-eyes pricing change (two
# separate decisions). The settlement and pricing escalations are pending together: the order is the operator's.
PLAN: list[tuple[str, str, str]] = [
    ("incident_severity", "approve", "frank"),
    ("compliance_change", "approve", "erin"),
    ("settlement_policy_change", "reject", "bob"),
    ("pricing_policy_change", "approve", "bob"),
    ("pricing_policy_change", "approve", "alice"),
]
ENV = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS"}}


PASSWORD = "correct horse battery"


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=120, env=ENV, check=False, input=stdin
    )


def approvers_with_keys(data_dir: Path) -> None:
    """The runs and the operator share data_dir: every approver has a signing key sealed with PASSWORD there."""
    ENV["COALITION_DATA_DIR"] = str(data_dir)
    keys = ApproverKeys(data_dir / "keys" / APPROVERS_DIR)
    for name in default_policy().approvers:
        if keys.public(name) is None:
            keys.create(name, PASSWORD)


@dataclass
class Snapshot:
    """What the operator sees in the ledger (read straight from the file: quicker than the CLI)."""

    entries: int = 0
    pending: list[tuple[str, str, int]] = field(default_factory=list)  # (proposal id, gate, approvals so far)
    taken: set[tuple[str, str]] = field(default_factory=set)  # (proposal id, approver) a decision point took in
    decided: set[tuple[str, str]] = field(default_factory=set)  # (proposal id, approver) recorded
    finished: bool = False


def entries_now(ledger: Path, run_id: str) -> int:
    """How many entries the run has now: one indexed count, cheap enough to poll every few milliseconds."""
    if not ledger.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True, timeout=1)
        try:
            return int(conn.execute("SELECT count(*) FROM entries WHERE run_id = ?", (run_id,)).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def look(ledger: Path, run_id: str) -> Snapshot:
    if not ledger.exists():
        return Snapshot()
    try:
        with SqliteLedger(ledger, create=False) as opened:
            # the escalations first, then the entries: the run goes on between the two reads, so the entries are
            # never older than the escalations (read the other way round, a busy box once showed the first
            # escalation pending beside fewer than 12 entries: the operator decided it before "mid day 1" held,
            # and the later kill points, which wait for it pending, were never reached)
            escalations = load_escalations(opened, run_id=run_id, policy=default_policy())
            entries = list(opened.iter_entries(run_id=run_id))
    except LedgerError:
        return Snapshot()
    snap = Snapshot(entries=len(entries))
    taken_ids: set[str] = set()
    for entry in entries:
        if entry.kind == "decision_point":
            taken_ids.update(entry.payload.get("decisions", []))
        elif entry.kind in ("approval", "rejection"):
            snap.decided.add((entry.subject, str(entry.approver)))
        elif entry.kind == "run" and entry.outcome == "completed":
            snap.finished = True
    snap.taken = {
        (e.subject, str(e.approver))
        for e in entries
        if e.kind in ("approval", "rejection") and e.message_id in taken_ids
    }
    snap.pending = [(e.proposal_id, e.gate, len(e.approvals)) for e in escalations if e.status == "pending"]
    return snap


@dataclass
class Operator:
    """Decides as PLAN says, in its order, one decision at a time, each only once the previous one was taken in."""

    ledger: Path
    run_id: str
    made: list[tuple[str, str]] = field(default_factory=list)  # (proposal id, approver), in order

    def next_decision(self, snap: Snapshot) -> tuple[str, str, str] | None:
        """(verb, proposal id, approver) to make now, or None (nothing pending, or the last one not yet taken)."""
        if self.made and self.made[-1] not in snap.taken:
            return None  # wait until the run has taken the last decision in
        if len(self.made) == len(PLAN):
            return None
        gate, verb, who = PLAN[len(self.made)]
        for pid, pending_gate, _ in sorted(snap.pending):
            if pending_gate == gate and (pid, who) not in snap.decided:
                return verb, pid, who
        return None  # its escalation is not pending yet

    def decide(self, verb: str, pid: str, who: str) -> None:
        done = cli("approvals", verb, pid, "--as", who, "--reason", f"{who}: reviewed", "--ledger", str(self.ledger),
                   "--run", self.run_id, "--password-stdin", stdin=PASSWORD + "\n")  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        self.made.append((pid, who))


KillPoint = Callable[[Snapshot, Operator], bool]


def run_interactively(tmp_path: Path, run_id: str, kill_points: list[tuple[str, KillPoint, bool]]) -> Path:
    """Run SCENARIO interactively with the operator deciding; SIGKILL the run when each kill point holds (in
    order), optionally make the next decision while it is down, then resume it. Returns the ledger's path."""
    ledger = tmp_path / f"{run_id}.db"
    approvers_with_keys(tmp_path)
    operator = Operator(ledger, run_id)
    start = [COALITION, "run", SCENARIO, "--interactive", "--approval-wait", "120", "--bus", "memory",
             "--ledger", str(ledger), "--run-id", run_id, "--json"]  # fmt: skip
    resume = [
        COALITION,
        "run",
        "--resume",
        "--run-id",
        run_id,
        "--ledger",
        str(ledger),
        "--bus",
        "memory",
        "--approval-wait",
        "120",
        "--json",
    ]  # fmt: skip (--interactive comes from the recorded run)
    points = list(kill_points)
    done: list[str] = []
    proc = subprocess.Popen(start, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.monotonic() + 600
    try:
        while time.monotonic() < deadline:
            snap = look(ledger, run_id)
            if points and not snap.finished and points[0][1](snap, operator):
                name, _, decide_while_down = points.pop(0)
                done.append(f"{name} at {snap.entries} entries")
                proc.send_signal(signal.SIGKILL)
                proc.communicate(timeout=30)  # reaps it and closes its pipes
                if decide_while_down:  # the human decides while the run is down
                    wanted = operator.next_decision(look(ledger, run_id))
                    assert wanted is not None, f"kill point {name}: nothing to decide while down"
                    operator.decide(*wanted)
                proc = subprocess.Popen(resume, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
                continue
            if proc.poll() is not None:
                out, err = proc.communicate()
                assert proc.returncode in (0, 1), f"after {done}: {err}"
                assert json.loads(out)["status"] == "completed"
                break
            wanted = operator.next_decision(snap)
            if wanted is not None:
                operator.decide(*wanted)
                continue
            time.sleep(0.05)
        else:
            pytest.fail(f"{run_id} did not finish in time")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)
    assert not points, f"kill points never reached: {[p[0] for p in points]}"
    assert len(operator.made) == len(PLAN), operator.made
    return ledger


def waiting_on(gate: str, approvals: int = 0) -> KillPoint:
    def holds(snap: Snapshot, operator: Operator) -> bool:
        return any(g == gate and n == approvals for _, g, n in snap.pending) and (
            not operator.made or operator.made[-1] in snap.taken
        )

    return holds


def entries_at_least(count: int) -> KillPoint:
    return lambda snap, _: snap.entries >= count


def executions_per_authorization(ledger: Path, run_id: str) -> Counter[str]:
    with SqliteLedger(ledger, create=False) as opened:
        executions = opened.query(LedgerQuery(run_id=run_id, kind="execution"))
        ids = [e.message_id for e in opened.iter_entries(run_id=run_id)]
    assert len(ids) == len(set(ids)), "an envelope was recorded twice"
    return Counter(str(e.payload["authorization_id"]) for e in executions)


def digest(ledger: Path, run_id: str) -> str:
    done = cli("ledger", "digest", "--ledger", str(ledger), "--run", run_id)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split()[-1]


def replays_identical(ledger: Path, run_id: str) -> None:
    done = cli("replay", run_id, "--ledger", str(ledger))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "IDENTICAL" in done.stdout, done.stdout


class TestInterruptedInteractiveRun:
    """SIGKILL at five points of an interactive run with CLI approvals, resumed each time: nothing lost or doubled."""

    @pytest.mark.timeout(900)  # two interactive runs, five kills, about 40 CLI processes: minutes on a loaded box
    def test_five_kills_resume_to_the_uninterrupted_digest(self, tmp_path: Path) -> None:
        reference = run_interactively(tmp_path, "reference", [])
        replays_identical(reference, "reference")  # an uninterrupted interactive run replays IDENTICAL
        kills: list[tuple[str, KillPoint, bool]] = [
            ("mid day 1, before any escalation", entries_at_least(12), False),
            ("waiting for the first human", waiting_on("incident_severity"), False),
            ("waiting; the human decides while the run is down", waiting_on("compliance_change"), True),
            ("just after a rejection was recorded", lambda _, op: len(op.made) == 3, False),
            ("between the two four-eyes approvals", waiting_on("pricing_policy_change", approvals=1), False),
        ]
        interrupted = run_interactively(tmp_path, "interrupted", kills)
        assert digest(interrupted, "interrupted") == digest(reference, "reference")
        per_authorization = executions_per_authorization(interrupted, "interrupted")
        assert per_authorization, "the run executed nothing: the test would prove nothing"
        assert max(per_authorization.values()) == 1, per_authorization.most_common(3)  # 0 doubled executions
        assert executions_per_authorization(reference, "reference") == per_authorization
        verify = cli("ledger", "verify", "--ledger", str(interrupted))
        assert verify.returncode == 0, verify.stdout + verify.stderr
        replays_identical(interrupted, "interrupted")


class TestLostDedupeTable:
    """The dedupe table emptied (its triggers dropped first) between a crash and the resume: nothing is recorded
    twice, because a resumed run skips what the ledger itself holds, and every authorization executes once."""

    def test_resume_after_the_dedupe_table_was_emptied(self, tmp_path: Path) -> None:
        ledger = tmp_path / "l.db"
        base = ["--bus", "memory", "--ledger", str(ledger), "--json"]
        reference = cli("run", SCENARIO, *base, "--run-id", "reference")
        assert reference.returncode in (0, 1), reference.stderr
        run = subprocess.Popen([COALITION, "run", SCENARIO, *base, "--run-id", "crashed"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)  # fmt: skip
        try:
            # a cheap count, then the kill at once: a run that got faster, or a test process starved of CPU between
            # two heavy looks (each opens the ledger and folds its escalations), saw the run finish before the kill
            deadline = time.monotonic() + 120
            while entries_now(ledger, "crashed") < 40 and time.monotonic() < deadline and run.poll() is None:
                time.sleep(0.005)
            run.send_signal(signal.SIGKILL)
        finally:
            run.communicate(timeout=30)
        assert not look(ledger, "crashed").finished, "the run ended before the kill: the test would prove nothing"
        conn = sqlite3.connect(ledger)
        with conn:
            conn.execute("DROP TRIGGER dedupe_no_delete")
            conn.execute("DELETE FROM dedupe")
        conn.close()
        resumed = cli("run", "--resume", "--run-id", "crashed", *base)
        assert resumed.returncode in (0, 1), resumed.stderr
        assert digest(ledger, "crashed") == digest(ledger, "reference")
        assert max(executions_per_authorization(ledger, "crashed").values()) == 1
