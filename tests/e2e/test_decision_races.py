"""Decisions are serialised: two approvers deciding one escalation at the same moment (one approves, one
rejects, from two CLI processes) get one outcome; the loser is told what really happened and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from coalition.bootstrap import LedgerLocation, open_ledger
from coalition.bus import topics
from coalition.bus.clock import IdFactory, SimulatedClock
from coalition.bus.envelope import Envelope
from coalition.bus.keys import APPROVERS_DIR, ApproverKeys
from coalition.bus.memory import MemoryBus
from coalition.bus.message import Message
from coalition.bus.messages import ActionProposed, Observation, RunStarted
from coalition.governance import GovernanceService, default_policy
from coalition.governance.approvals import load_escalations, record_decision
from coalition.governance.decision_signatures import scripted_key, scripted_public
from coalition.governance.escalation import DecisionKind
from coalition.ledger.base import LedgerQuery
from coalition.ledger.recorder import Recorder

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
START = datetime(2025, 3, 10, 9, tzinfo=UTC)
RUN = "race"
PAIRS = 20


PASSWORD = "correct horse battery"
# the Python API race signs with the approvers' declared test keys, recorded as the run's approver directory
TEST_KEYS = {name: scripted_public(name) for name in ("frank", "alice")}


def open_escalations(path: LedgerLocation, count: int, approver_keys: dict[str, str] | None = None) -> list[str]:
    """A run with `count` open incident escalations (severity 5: one approval, ops_lead or risk_officer, decides);
    an interactive run whose approver directory is `approver_keys` (default: TEST_KEYS)."""
    policy = default_policy()
    bus, clock, ids = MemoryBus(), SimulatedClock(START), IdFactory("race")
    with open_ledger(path) as ledger:
        recorder = Recorder(bus, ledger)
        service = GovernanceService(bus, ledger, policy, ids=ids, clock=clock, run_id=RUN)
        outside = ids.child("test")

        def emit(topic: str, source: str, message: Message) -> None:
            envelope = Envelope.wrap(message, id=outside.new(), source=source, run_id=RUN, superstep=0, sim_time=START)
            bus.publish(topic, envelope)

        settings = {"interactive": True, "approver_keys": approver_keys or TEST_KEYS}
        started = RunStarted(
            scenario="race",
            scenario_hash="h",
            seed=1,
            policy_version=policy.version,
            start=START,
            days=2,
            settings=settings,
        )
        emit(topics.CONTROL, "runner", started)
        emit(topics.OBSERVATIONS, "world", Observation(kind="market.snapshot", data={}))
        ids_out = [f"incident-{i:04d}" for i in range(count)]
        for pid in ids_out:
            args = {
                "incident_id": f"INC-{pid}",
                "kind": "outage",
                "severity": 5,
                "regions": ["TX"],
                "affected_customers": 100,
                "summary": "meters down",
            }
            proposal = ActionProposed(
                proposal_id=pid, agent="ops", action="open_incident", args=args, rationale="meters are down"
            )
            emit(topics.PROPOSALS, "agent:ops", proposal)
        recorder.flush()
        service.step(1)
        recorder.flush()
        escalations = load_escalations(ledger, run_id=RUN, policy=policy)
        assert len(escalations) == count
        assert all(e.approvals_required == 1 for e in escalations)
        bus.close()
    return ids_out


def _decide_on_own_connection(
    path: LedgerLocation, pid: str, verb: DecisionKind, who: str, barrier: threading.Barrier
) -> Any:
    """One approver on a connection of its own (as another process would have): waits for its rival, then decides."""
    with open_ledger(path, create=False) as ledger:
        barrier.wait(timeout=60)
        return record_decision(
            ledger,
            run_id=RUN,
            proposal_id=pid,
            approver=who,
            decision=verb,
            reason=f"{who} decides",
            key=scripted_key(who),
        )


def ledger_outcomes(path: LedgerLocation, proposals: list[str]) -> dict[str, list[str]]:
    with open_ledger(path, create=False) as ledger:
        assert ledger.verify().ok
        return {
            pid: [
                str(e.outcome)
                for e in ledger.query(LedgerQuery(run_id=RUN, subject=pid))
                if e.kind in ("approval", "rejection")
            ]
            for pid in proposals
        }


class TestDecisionRaces:
    """Approve and reject racing on each of 20 escalations: exactly one outcome each, the other told the truth."""

    @pytest.mark.parametrize("backend", ["sqlite", "postgres"])
    def test_twenty_racing_pairs_on_separate_connections_get_one_outcome_and_the_truth(
        self, tmp_path: Path, backend: str, request: pytest.FixtureRequest
    ) -> None:
        path: LedgerLocation = tmp_path / "ledger.db"
        if backend == "postgres":  # the same race on the PostgreSQL ledger, each approver on its own connection
            path = request.getfixturevalue("postgres").new_ledger_url()
        proposals = open_escalations(path, PAIRS)
        barriers = {pid: threading.Barrier(2) for pid in proposals}
        jobs = [(pid, verb, who) for pid in proposals for verb, who in (("approve", "frank"), ("reject", "alice"))]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:  # every pair collides, on separate connections
            futures = [(pid, verb, pool.submit(_decide_on_own_connection, path, pid, verb, who, barriers[pid]))
                       for pid, verb, who in jobs]  # fmt: skip
            results = [(pid, verb, f.result().accepted, f.result().reason) for pid, verb, f in futures]
        recorded = ledger_outcomes(path, proposals)
        for pid in proposals:
            pair = {verb: (accepted, reason) for p, verb, accepted, reason in results if p == pid}
            assert sorted(accepted for accepted, _ in pair.values()) == [False, True], (pid, pair)
            assert len(recorded[pid]) == 1, (pid, recorded[pid])  # one outcome in the ledger
            winner = "approve" if pair["approve"][0] else "reject"
            loser_reason = pair["reject" if winner == "approve" else "approve"][1]
            truth = "approved by frank" if winner == "approve" else "rejected by alice"
            assert f"already decided: {truth}" in loser_reason, loser_reason  # the loser is told who won
            assert recorded[pid] == ["approved" if winner == "approve" else "rejected"]

    @pytest.mark.parametrize(
        "pairs", [pytest.param(3, id="3 pairs"), pytest.param(PAIRS, id="20 pairs", marks=pytest.mark.slow)]
    )
    def test_racing_cli_approve_and_reject_exit_codes_and_messages(self, tmp_path: Path, pairs: int) -> None:
        path = tmp_path / "ledger.db"
        keys = ApproverKeys(tmp_path / "keys" / APPROVERS_DIR)  # frank and alice sign with their own sealed keys
        directory = {who: keys.create(who, PASSWORD) for who in ("frank", "alice")}
        proposals = open_escalations(path, pairs, directory)
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS"}}
        env["COALITION_DATA_DIR"] = str(tmp_path)
        password = tmp_path / "password"
        password.write_text(PASSWORD + "\n")

        def decide(verb: str, pid: str, who: str) -> subprocess.Popen[str]:
            args = [COALITION, "approvals", verb, pid, "--as", who, "--reason", f"{who} decides", "--ledger", str(path)]
            with password.open() as stdin:  # read at once: both processes of a pair reach the ledger together
                return subprocess.Popen(
                    [*args, "--password-stdin"],
                    stdin=stdin,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )

        # every pair starts together; all pairs at once, so the writers really do collide
        racing = {pid: (decide("approve", pid, "frank"), decide("reject", pid, "alice")) for pid in proposals}
        outcomes: dict[str, str] = {}
        for pid, (approve, reject) in racing.items():
            _, a_err = approve.communicate(timeout=240)
            _, r_err = reject.communicate(timeout=240)
            codes = (approve.returncode, reject.returncode)
            assert sorted(codes) == [0, 1], (pid, codes, a_err, r_err)
            loser_err = r_err if approve.returncode == 0 else a_err
            outcomes[pid] = "approved" if approve.returncode == 0 else "rejected"
            truth = "approved by frank" if approve.returncode == 0 else "rejected by alice"
            assert f"already decided: {truth}" in loser_err, loser_err  # the loser learns who won, in one line
            assert "Traceback" not in loser_err
        assert ledger_outcomes(path, proposals) == {pid: [outcome] for pid, outcome in outcomes.items()}
