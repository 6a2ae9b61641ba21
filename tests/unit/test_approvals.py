"""Approvals: the escalation state machine (separation of duties, four-eyes, hash binding, expiry) and the
approvals service that records decisions in a real SQLite ledger."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from coalition.bus.messages import ActionProposed, RunStarted, VerdictIssued
from coalition.governance import (
    Escalation,
    GovernanceState,
    PolicyError,
    check_decision,
    default_policy,
    fold_ledger,
    policy_for_run,
    record_decision,
)
from coalition.governance.approvals import load_escalations, run_started, signed_decisions_only
from coalition.governance.decision_signatures import (
    entry_problem,
    recorded_identities,
    scripted_key,
    scripted_public,
    sign,
    statement,
    verify_decisions,
)
from coalition.governance.escalation import Decision
from coalition.ledger import EntryDraft
from coalition.ledger.digest import history_fields, run_digest
from coalition.ledger.sqlite import SqliteLedger

pytestmark = pytest.mark.unit

POLICY = default_policy()
DIRECTORY = {name: tuple(roles) for name, roles in POLICY.approvers.items()}
OPENED = datetime(2025, 3, 10, 9, tzinfo=UTC)
RUN = "run-1"
# the run's approver directory: each approver's declared test identity (decision_signatures.scripted_key)
TEST_APPROVER_KEYS = {name: scripted_public(name) for name in POLICY.approvers}


def market_entry(pid: str = "p-entry", investment: int = 300000) -> ActionProposed:
    return ActionProposed(
        proposal_id=pid,
        agent="finance",
        action="enter_market",
        args={"region": "CA", "sequence": 1, "investment_usd": investment},
        rationale="CA first: legal path and demand",
    )


def escalation(required: int = 2, roles: tuple[str, ...] = ("board",)) -> Escalation:
    p = market_entry()
    return Escalation(
        proposal=p,
        proposal_hash=p.proposal_hash,
        gate="market_entry",
        approver_roles=roles,
        approvals_required=required,
        expires_at=OPENED + timedelta(hours=72),
        opened_at=OPENED,
    )


def check(
    esc: Escalation,
    approver: str,
    *,
    decision: str = "approve",
    proposal_hash: str | None = None,
    at: datetime | None = None,
):  # type: ignore[no-untyped-def]
    return check_decision(
        esc,
        approver=approver,
        decision=decision,  # type: ignore[arg-type]
        proposal_hash=proposal_hash,
        now=at or OPENED + timedelta(hours=1),
        directory=DIRECTORY,
    )


def approved_by(esc: Escalation, approver: str) -> Escalation:
    result = check(esc, approver)
    assert result.accepted, result.reason
    return esc.with_decision(Decision(approver, result.role or "", "approve", "ok", esc.proposal_hash))


class TestStateMachine:
    """pending → approved | rejected | expired, with every refusal returned as a value."""

    @pytest.mark.parametrize("name", ["finance", "agent:finance", " Finance ", "agent:ops"])
    def test_the_proposer_or_an_agent_never_approves(self, name: str) -> None:
        """An approver named like the proposing agent (or any agent) is refused."""
        result = check(escalation(), name)
        assert not result.accepted
        assert "cannot decide it" in result.reason

    def test_approver_must_hold_a_gate_role(self) -> None:
        """bob is cfo; a market entry needs the board."""
        result = check(escalation(), "bob")
        assert not result.accepted
        assert result.reason == "bob holds cfo; gate market_entry needs one of board"

    def test_unknown_approver_is_refused(self) -> None:
        """Only names in the policy's approver directory decide."""
        assert check(escalation(), "mallory").reason == "mallory is not in the policy's approver directory"

    def test_same_approver_twice_counts_once(self) -> None:
        """carol's second approval is refused and the count stays at one."""
        esc = approved_by(escalation(), "carol")
        again = check(esc, "carol")
        assert not again.accepted
        assert "counts once" in again.reason
        forced = esc.with_decision(Decision("carol", "board", "approve", "again", esc.proposal_hash))
        assert forced.approvers == ("carol",)
        assert forced.status == "pending"

    def test_four_eyes_needs_two_distinct_approvers(self) -> None:
        """One board member: still pending; a second one: approved."""
        esc = approved_by(escalation(required=2), "carol")
        assert esc.status == "pending"
        esc = approved_by(esc, "dave")
        assert esc.status == "approved"
        assert esc.approvers == ("carol", "dave")

    def test_hash_mismatch_is_refused(self) -> None:
        """A decision naming another proposal hash does not bind to this proposal."""
        edited = market_entry(investment=310000)
        result = check(escalation(), "carol", proposal_hash=edited.proposal_hash)
        assert not result.accepted
        assert "binds to the exact proposal" in result.reason

    def test_matching_hash_is_accepted(self) -> None:
        """The exact hash binds."""
        esc = escalation()
        assert check(esc, "carol", proposal_hash=esc.proposal_hash).accepted

    def test_after_expiry_every_decision_is_refused(self) -> None:
        """At or after expires_at nothing can be decided: expiry is a deny."""
        esc = escalation()
        for decision in ("approve", "reject"):
            result = check(esc, "carol", decision=decision, at=OPENED + timedelta(hours=72))
            assert not result.accepted
            assert "resolves as denied" in result.reason

    def test_a_decided_escalation_cannot_be_decided_again(self) -> None:
        """After a rejection (or a quorum) the next decision is refused."""
        esc = escalation(required=1)
        rejected = esc.with_decision(Decision("carol", "board", "reject", "no", esc.proposal_hash))
        assert rejected.status == "rejected"
        assert check(rejected, "dave").reason.startswith("the escalation is already decided: rejected by")
        approved = approved_by(esc, "dave")
        assert approved.status == "approved"
        assert not check(approved, "carol", decision="reject").accepted

    def test_one_rejection_rejects(self) -> None:
        """A single authorized rejection ends a four-eyes escalation."""
        esc = approved_by(escalation(required=2), "carol")
        result = check(esc, "dave", decision="reject")
        assert result.accepted
        assert esc.with_decision(Decision("dave", "board", "reject", "no", esc.proposal_hash)).status == "rejected"


# ----- the approvals service over a real SQLite ledger ----------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "ledger.db")
    yield led
    led.close()


def start_run(ledger: SqliteLedger, settings: dict[str, object] | None = None, version: str | None = None) -> None:
    started = RunStarted(
        scenario="s",
        scenario_hash="h",
        seed=1,
        policy_version=version or POLICY.version,
        start=OPENED,
        days=3,
        settings={"approver_keys": TEST_APPROVER_KEYS, **(settings or {})},
    )
    ledger.append([draft("run", "runner", "runner", "s", started, "run started")])


def draft(
    kind: str, actor: str, actor_kind: str, subject: str, message: object, rationale: str, **extra: object
) -> EntryDraft:
    from coalition.bus.message import Message

    assert isinstance(message, Message)
    return EntryDraft(
        run_id=RUN,
        sim_time=OPENED,
        actor=actor,
        actor_kind=actor_kind,  # type: ignore[arg-type]
        kind=kind,  # type: ignore[arg-type]
        subject=subject,
        payload=message.model_dump(mode="json"),
        rationale=rationale,
        message_id=f"m-{kind}-{subject}",
        message_type=message.TYPE,
        correlation_id=f"corr-{subject}",
        **extra,  # type: ignore[arg-type]
    )


def escalate(ledger: SqliteLedger, p: ActionProposed, *, required: int = 2, gate: str = "market_entry") -> None:
    """What the recorder writes for a proposal that governance escalated."""
    verdict = VerdictIssued(
        proposal_id=p.proposal_id,
        proposal_hash=p.proposal_hash,
        agent=p.agent,
        action=p.action,
        outcome="escalate",
        reasons=["market entry needs human approval"],
        rule_ids=["gate.market_entry"],
        gate=gate,
        approver_roles=["board"],
        approvals_required=required,
        expires_at=OPENED + timedelta(hours=72),
        policy_version=POLICY.version,
    )
    ledger.append(
        [
            draft("proposal", f"agent:{p.agent}", "agent", p.proposal_id, p, p.rationale),
            draft("verdict", "governance", "governance", p.proposal_id, verdict, verdict.reasons[0], gate=gate),
        ]
    )


def decide(ledger: SqliteLedger, approver: str, decision: str = "approve", **kw: object):  # type: ignore[no-untyped-def]
    args: dict[str, object] = {"run_id": RUN, "proposal_id": "p-entry", "reason": "sound plan", "policy": POLICY}
    args["key"] = scripted_key(approver.strip() or "nobody")  # each approver's declared test key (see start_run)
    args.update(kw)
    if run_started(ledger, RUN) is None:
        start_run(ledger)
    return record_decision(ledger, approver=approver, decision=decision, **args)  # type: ignore[arg-type]


class TestRecordDecision:
    """record_decision folds the escalation from the ledger, validates, and appends one entry."""

    def test_an_approval_is_recorded_with_its_provenance(self, ledger: SqliteLedger) -> None:
        """actor human:<name>, approver, message type, subject, gate, correlation id and the hash as evidence."""
        p = market_entry()
        escalate(ledger, p)
        result = decide(ledger, "carol", proposal_hash=p.proposal_hash, method="web")
        assert result.accepted, result.reason
        assert (result.status, result.approvals, result.approvals_required, result.role) == ("pending", 1, 2, "board")
        entry = result.entry
        assert entry is not None
        assert entry.kind == "approval"
        assert entry.actor == "human:carol"
        assert entry.actor_kind == "human"
        assert entry.approver == "carol"
        assert entry.message_type == "approval.granted"
        assert entry.subject == "p-entry"
        assert entry.gate == "market_entry"
        assert entry.outcome == "approved"
        assert entry.correlation_id == "corr-p-entry"
        assert entry.causation_id == "m-verdict-p-entry"
        assert entry.evidence == [p.proposal_hash]
        assert entry.rationale == "sound plan"
        assert entry.payload["method"] == "web"
        assert ledger.verify().ok

    def test_four_eyes_through_the_ledger(self, ledger: SqliteLedger) -> None:
        """carol then dave: the folded escalation is approved with both names."""
        escalate(ledger, market_entry())
        assert decide(ledger, "carol").status == "pending"
        assert decide(ledger, "dave").status == "approved"
        state = fold_ledger(ledger.iter_entries(run_id=RUN), policy=POLICY)
        assert state.escalations["p-entry"].approvers == ("carol", "dave")

    def test_refusals_write_nothing(self, ledger: SqliteLedger) -> None:
        """Self-approval, wrong role, wrong hash, repeat approver: refused, the ledger unchanged."""
        escalate(ledger, market_entry())
        assert decide(ledger, "carol").accepted
        before = ledger.count()
        refusals = [
            decide(ledger, "finance"),
            decide(ledger, "agent:finance"),
            decide(ledger, "bob"),
            decide(ledger, "dave", proposal_hash="0" * 64),
            decide(ledger, "carol"),
            decide(ledger, "dave", reason="  "),
        ]
        assert [r.accepted for r in refusals] == [False] * 6
        assert all(r.entry is None and r.reason for r in refusals)
        assert ledger.count() == before

    def test_a_rejection_decides_and_nothing_follows(self, ledger: SqliteLedger) -> None:
        """dave rejects: recorded as a rejection; carol can no longer approve."""
        escalate(ledger, market_entry())
        rejected = decide(ledger, "dave", "reject", reason="too early")
        assert rejected.accepted
        assert rejected.entry is not None
        assert (rejected.entry.kind, rejected.entry.message_type) == ("rejection", "approval.rejected")
        later = decide(ledger, "carol")
        assert not later.accepted
        assert "already decided: rejected by dave" in later.reason

    def test_expired_escalation_refuses_every_decision(self, ledger: SqliteLedger) -> None:
        """Deciding at the expiry time is too late."""
        escalate(ledger, market_entry())
        result = decide(ledger, "carol", sim_time=OPENED + timedelta(hours=72))
        assert not result.accepted
        assert "expired" in result.reason

    def test_unknown_proposal(self, ledger: SqliteLedger) -> None:
        """No escalation, no decision."""
        result = decide(ledger, "carol", proposal_id="p-nothing")
        assert not result.accepted
        assert result.reason == "no escalation for proposal p-nothing in run run-1"

    def test_two_runs_of_one_scenario_in_one_ledger(self, ledger: SqliteLedger) -> None:
        """The same proposal in two runs: each run takes carol's approval; the entry ids match (replayable)."""
        start_run(ledger)  # each copy of the run records the same approver directory
        escalate(ledger, market_entry())
        copies = [e.model_dump() for e in ledger.iter_entries(run_id=RUN)]
        ledger.append([EntryDraft.model_validate({**_draft_fields(c), "run_id": "run-2"}) for c in copies])
        first = decide(ledger, "carol")
        second = decide(ledger, "carol", run_id="run-2")
        assert first.accepted
        assert second.accepted, second.reason
        assert first.entry is not None
        assert second.entry is not None
        assert first.entry.message_id == second.entry.message_id
        assert not decide(ledger, "carol", run_id="run-2").accepted

    def test_a_forged_approval_in_the_ledger_does_not_count(self, ledger: SqliteLedger) -> None:
        """An approval entry written around the service by the proposer itself is ignored when folding."""
        from coalition.bus.messages import ApprovalGranted

        p = market_entry()
        escalate(ledger, p, required=1)
        forged = ApprovalGranted(
            proposal_id=p.proposal_id, proposal_hash=p.proposal_hash, approver="finance", role="board", reason="me"
        )
        ledger.append([draft("approval", "human:finance", "human", p.proposal_id, forged, "me")])
        state = fold_ledger(ledger.iter_entries(run_id=RUN), policy=POLICY)
        assert state.escalations[p.proposal_id].status == "pending"
        assert isinstance(state, GovernanceState)


class TestRefusalCodes:
    """Every refusal carries a machine-readable code (the console maps it to a status; people read the reason)."""

    @pytest.mark.parametrize(
        ("approver", "kw", "code"),
        [
            ("finance", {}, "self_approval"),
            ("agent:ops", {}, "self_approval"),
            ("mallory", {}, "not_an_approver"),
            ("bob", {}, "wrong_role"),
            ("dave", {"proposal_hash": "0" * 64}, "stale_hash"),
            ("dave", {"sim_time": OPENED + timedelta(hours=72)}, "expired"),
            ("dave", {"proposal_id": "p-nothing"}, "unknown_escalation"),
            ("dave", {"reason": "  "}, "missing_reason"),
            ("  ", {}, "missing_approver"),
            ("carol", {}, "same_approver"),
        ],
    )
    def test_each_refusal_names_its_code(
        self, ledger: SqliteLedger, approver: str, kw: dict[str, object], code: str
    ) -> None:
        """After carol's approval (1 of 2), each kind of refusal comes back with its own code."""
        escalate(ledger, market_entry())
        assert decide(ledger, "carol").accepted
        result = decide(ledger, approver, **kw)
        assert not result.accepted
        assert result.code == code, result.reason

    def test_an_accepted_decision_has_no_code(self, ledger: SqliteLedger) -> None:
        """Codes belong to refusals only."""
        escalate(ledger, market_entry())
        assert decide(ledger, "carol").code is None

    def test_a_decided_escalation_is_already_decided(self, ledger: SqliteLedger) -> None:
        """After a rejection any further decision is refused as already_decided."""
        escalate(ledger, market_entry())
        assert decide(ledger, "dave", "reject").accepted
        assert decide(ledger, "carol").code == "already_decided"

    def test_a_second_decision_by_the_same_person_is_same_approver(self, ledger: SqliteLedger) -> None:
        """carol approves then tries to reject: the ledger's once-per-approver key refuses it as same_approver."""
        escalate(ledger, market_entry())
        assert decide(ledger, "carol").accepted
        again = decide(ledger, "carol", "reject")
        assert (again.accepted, again.code) == (False, "same_approver")
        assert again.reason == "carol already decided this escalation"

    def test_the_state_machine_names_the_code(self) -> None:
        """check_decision itself sets the code on every refusal and none on acceptance."""
        esc = escalation()
        assert check(esc, "carol").code is None
        assert check(esc, "bob").code == "wrong_role"
        assert check(approved_by(esc, "carol"), "carol").code == "same_approver"
        assert check(esc, "carol", at=OPENED + timedelta(hours=72)).code == "expired"


class TestPolicyForRun:
    """The policy in force is the run's: run.started.settings['policy_path'], else the shipped one."""

    def test_default_when_no_path(self, ledger: SqliteLedger) -> None:
        """No policy_path: the Helios policy."""
        start_run(ledger)
        assert policy_for_run(ledger, RUN).version == POLICY.version

    def test_the_runs_policy_file(self, ledger: SqliteLedger, tmp_path: Path) -> None:
        """A custom policy file named by the run is used."""
        data = yaml.safe_load((Path(__file__).parents[2] / "packs/helios/policies/helios.yaml").read_text())
        data["approvers"]["zoe"] = ["board"]
        path = tmp_path / "custom.yaml"
        path.write_text(yaml.safe_dump(data))
        from coalition.governance import load_policy

        custom = load_policy(path)
        start_run(ledger, {"policy_path": str(path)}, version=custom.version)
        assert "zoe" in policy_for_run(ledger, RUN).approvers

    def test_a_changed_policy_file_is_an_error(self, ledger: SqliteLedger) -> None:
        """The run's recorded version must match the file found."""
        start_run(ledger, version="f" * 64)
        with pytest.raises(PolicyError, match="is not the run's ffffffffffffffff"):
            policy_for_run(ledger, RUN)


def _draft_fields(entry: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in entry.items() if k in EntryDraft.model_fields}


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition", *args], capture_output=True, text=True, check=False, timeout=120
    )


def _second_run(ledger: SqliteLedger) -> str:
    """A second run of the same story in the same ledger: the same proposal id, hash and time as run-1's."""
    if run_started(ledger, RUN) is None:
        start_run(ledger)  # the same approver directory in both runs
    copies = [e.model_dump() for e in ledger.iter_entries(run_id=RUN) if e.kind not in ("approval", "rejection")]
    ledger.append([EntryDraft.model_validate({**_draft_fields(c), "run_id": "run-2"}) for c in copies])
    return "run-2"


class TestDecisionsBoundToTheirRun:
    """Two runs of one scenario and seed share proposal ids, hashes and times: a human's signed decision names the
    run it was made in, so copied verbatim into the other run (by anyone who can append to the ledger) it decides
    nothing there, and `ledger verify` names it."""

    def test_a_decision_copied_into_another_run_decides_nothing(self, ledger: SqliteLedger) -> None:
        escalate(ledger, market_entry(), required=1)
        other = _second_run(ledger)
        original = decide(ledger, "carol")
        assert original.accepted, original.reason
        assert original.entry is not None
        assert original.entry.payload["signed_run"] == RUN
        copied = ledger.append(
            [EntryDraft.model_validate({**_draft_fields(original.entry.model_dump()), "run_id": other})]
        )[0]
        # not taken: the other run's escalation still waits, for the inbox as for governance
        (escalation,) = load_escalations(ledger, run_id=other, policy=POLICY)
        assert (escalation.status, len(escalation.approvals)) == ("pending", 0)
        assert copied.seq not in {e.seq for e in signed_decisions_only(ledger, other, [copied]) if e.kind}
        checked, problems = verify_decisions(ledger, other)
        assert checked == 1
        assert [(p.seq, p.approver) for p in problems] == [(copied.seq, "carol")]
        assert f"signed for run {RUN}, not for {other}" in problems[0].reason
        # carol can still decide the other run herself: the copy used up nothing
        own = decide(ledger, "carol", run_id=other)
        assert own.accepted, own.reason

    def test_ledger_verify_names_the_copy(self, ledger: SqliteLedger, tmp_path: Path) -> None:
        """Through the CLI, as an auditor runs it: a non-zero exit naming the copied decision."""
        escalate(ledger, market_entry(), required=1)
        other = _second_run(ledger)
        original = decide(ledger, "carol")
        assert original.entry is not None
        assert run_cli("ledger", "verify", "--ledger", str(tmp_path / "ledger.db")).returncode == 0
        ledger.append([EntryDraft.model_validate({**_draft_fields(original.entry.model_dump()), "run_id": other})])
        done = run_cli("ledger", "verify", "--ledger", str(tmp_path / "ledger.db"))
        assert done.returncode != 0
        assert f"signed for run {RUN}" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr

    def test_two_runs_with_the_same_decisions_have_one_digest(self, ledger: SqliteLedger) -> None:
        """The run name and the signature over it are where a decision belongs, not what was decided."""
        escalate(ledger, market_entry(), required=1)
        other = _second_run(ledger)
        first, second = decide(ledger, "carol"), decide(ledger, "carol", run_id=other)
        assert first.entry is not None
        assert second.entry is not None
        assert first.entry.payload["signature"] != second.entry.payload["signature"]
        assert run_digest(ledger, RUN) == run_digest(ledger, other)
        assert history_fields(ledger, RUN) == history_fields(ledger, other)

    def test_a_scripted_decision_is_not_bound(self, ledger: SqliteLedger) -> None:
        """The scenario board signs each run anew with a public test identity: nothing to bind (and the golden
        ledger of a scripted run keeps its bytes)."""
        escalate(ledger, market_entry(), required=1)
        result = decide(ledger, "carol", method="scenario-board")
        assert result.accepted, result.reason
        assert result.entry is not None
        assert "signed_run" not in result.entry.payload

    def test_a_decision_signed_before_the_binding_still_verifies(self, ledger: SqliteLedger) -> None:
        """A ledger recorded before decisions named their run (statement v1) keeps verifying."""
        escalate(ledger, market_entry(), required=1)
        result = decide(ledger, "carol")
        assert result.entry is not None
        payload = {k: v for k, v in result.entry.payload.items() if k != "signed_run"}
        legacy = statement(
            proposal_id=payload["proposal_id"],
            proposal_hash=payload["proposal_hash"],
            approver="carol",
            decision="approve",
            reason=payload["reason"],
            decided_at=result.entry.sim_time,
        )
        payload["signature"] = sign(scripted_key("carol"), legacy)
        identities = recorded_identities(ledger, RUN)
        assert entry_problem(payload, "approval", result.entry.sim_time, identities) is None
        # …but the bound signature does not pass for a legacy one, nor a legacy one for a bound one
        assert entry_problem({**payload, "signed_run": RUN}, "approval", result.entry.sim_time, identities)
        unbound = {**result.entry.payload}
        del unbound["signed_run"]
        assert entry_problem(unbound, "approval", result.entry.sim_time, identities)

    def test_a_re_execution_takes_the_original_runs_decisions_only_when_told(self, ledger: SqliteLedger) -> None:
        """What replay and what-if do: re-record a decision as signed for the run they re-execute."""
        escalate(ledger, market_entry(), required=1)
        other = _second_run(ledger)
        original = decide(ledger, "carol")
        assert original.entry is not None
        signature = original.entry.payload["signature"]
        assert not decide(ledger, "carol", run_id=other, key=None, signature=signature).accepted
        replayed = decide(ledger, "carol", run_id=other, key=None, signature=signature, signed_run=RUN)
        assert replayed.accepted, replayed.reason
        assert recorded_identities(ledger, other, accept_runs=[RUN]).runs == {RUN, other}
        # in the ledger, outside the re-executing process, it is still a copy
        assert [p.approver for p in verify_decisions(ledger, other)[1]] == ["carol"]
