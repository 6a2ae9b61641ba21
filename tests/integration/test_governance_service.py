"""The governance service in the superstep loop, on the memory bus and on a real Redis, with a real SQLite
ledger and the real recorder: verdicts, authorizations, approvals from the ledger, expiry, restart, replay."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from coalition.bus import topics
from coalition.bus.base import Bus
from coalition.bus.canonical import canonical_json, content_hash
from coalition.bus.clock import IdFactory, SimulatedClock
from coalition.bus.envelope import Envelope
from coalition.bus.message import Message
from coalition.bus.messages import (
    ActionAuthorized,
    ActionExecuted,
    ActionProposed,
    ApprovalGranted,
    EscalationResolved,
    Observation,
    ProposalHeld,
    RunStarted,
    VerdictIssued,
)
from coalition.governance import GovernanceService, default_policy, fold_ledger, record_decision
from coalition.governance.approvals import load_escalations
from coalition.governance.decision_signatures import scripted_key, verify_decisions
from coalition.ledger.base import LedgerQuery
from coalition.ledger.entry import EntryDraft
from coalition.ledger.recorder import Recorder
from coalition.ledger.sqlite import SqliteLedger

pytestmark = pytest.mark.integration

POLICY = default_policy()
START = datetime(2025, 3, 10, 9, tzinfo=UTC)
RUN = "run-gov"


class Loop:
    """A minimal superstep loop around the real service: agents and executor are played by the test."""

    def __init__(self, bus: Bus, ledger_path: Path) -> None:
        self.bus = bus
        self.ledger = SqliteLedger(ledger_path)
        self.clock = SimulatedClock(START)
        self.ids = IdFactory("seed-1")
        self.world_ids = self.ids.child("world")
        self.recorder = Recorder(bus, self.ledger)
        self.service = GovernanceService(bus, self.ledger, POLICY, ids=self.ids, clock=self.clock, run_id=RUN)
        self.superstep = 0
        self.seen: dict[str, int] = {}
        self.emit(
            "runner",
            RunStarted(scenario="t", scenario_hash="h", seed=1, policy_version=POLICY.version, start=START, days=3),
            topics.CONTROL,
        )
        snapshot = Observation(
            kind="market.snapshot",
            data={"prices": {"CA": {"price": 60, "base_price": 60}, "TX": {"price": 50, "base_price": 50}}},
        )
        self.emit("world", snapshot, topics.OBSERVATIONS)
        self.recorder.flush()

    def emit(self, source: str, message: Message, topic: str) -> Envelope:
        envelope = Envelope.wrap(
            message,
            id=self.world_ids.new(),
            source=source,
            run_id=RUN,
            superstep=self.superstep,
            sim_time=self.clock.now(),
        )
        self.bus.publish(topic, envelope)
        return envelope

    def propose(self, pid: str, agent: str, action: str, **args: Any) -> ActionProposed:
        p = ActionProposed(proposal_id=pid, agent=agent, action=action, args=args, rationale=f"{agent} wants {action}")
        self.emit(f"agent:{agent}", p, topics.PROPOSALS)
        return p

    def step(self) -> int:
        self.superstep += 1
        self.service.accept_decisions()  # a decision point, as the runner makes one after a day settles
        produced = self.service.step(self.superstep)
        self.recorder.flush()
        return produced

    def new(self, topic: str, kind: type[Message]) -> list[Any]:
        """Messages of a type published on a topic since the last call (for this topic and type)."""
        found = [
            d.envelope.payload
            for d in self.bus.range(topic)
            if d.envelope is not None and isinstance(d.envelope.payload, kind)
        ]
        key = f"{topic}:{kind.TYPE}"
        start = self.seen.get(key, 0)
        self.seen[key] = len(found)
        return found[start:]

    def execute(self, auth: ActionAuthorized, status: str = "applied") -> None:
        done = ActionExecuted(
            authorization_id=auth.authorization_id,
            proposal_id=auth.proposal_id,
            agent=auth.agent,
            action=auth.action,
            idempotency_key=auth.idempotency_key,
            status=status,  # type: ignore[arg-type]
            detail="executed by the test",
        )
        self.emit("executor", done, topics.EXECUTIONS)
        self.recorder.flush()

    def decide(self, approver: str, pid: str, decision: str = "approve") -> Any:
        return record_decision(
            self.ledger,
            run_id=RUN,
            proposal_id=pid,
            approver=approver,
            decision=decision,
            reason=f"{approver} says so",
            policy=POLICY,  # type: ignore[arg-type]
            method="scenario-board",  # a scripted decision: signed by the approver's declared test identity
            key=scripted_key(approver),
        )


@pytest.fixture
def loop(bus: Bus, tmp_path: Path) -> Iterator[Loop]:
    lp = Loop(bus, tmp_path / "ledger.db")
    yield lp
    lp.ledger.close()


def by_id(messages: list[Any]) -> dict[str, Any]:
    return {m.proposal_id: m for m in messages}


class TestVerdicts:
    """One superstep of proposals: verdicts in canonical order, authorizations for allows."""

    def test_mixed_proposals(self, loop: Loop) -> None:
        """allow, deny, escalate; the second research proposal sees the first one's reservation."""
        loop.propose("r1", "research", "commission_research", topic="TX", cost_usd=15000)
        loop.propose("r2", "research", "commission_research", topic="AZ", cost_usd=6000)
        loop.propose("m1", "marketing", "pause_settlement", region="CA", incident_id="i", reason="x")
        loop.propose("f1", "finance", "set_price", region="CA", price=70)
        loop.propose("f2", "finance", "set_price", region="CA", price=98)
        loop.propose("f3", "finance", "enter_market", region="CA", sequence=1, investment_usd=300000)
        produced = loop.step()
        verdicts = loop.new(topics.VERDICTS, VerdictIssued)
        assert [v.proposal_id for v in verdicts] == ["f1", "f2", "f3", "m1", "r1", "r2"]  # agent, then stream order
        outcome = {v.proposal_id: v.outcome for v in verdicts}
        assert outcome == {"f1": "allow", "f2": "deny", "f3": "escalate", "m1": "deny", "r1": "allow", "r2": "escalate"}
        f3 = by_id(verdicts)["f3"]
        assert (f3.gate, f3.approvals_required, f3.approver_roles) == ("market_entry", 2, ["board"])
        assert f3.expires_at == START + timedelta(hours=72)
        assert by_id(verdicts)["f2"].reasons == ["price 98.00 exceeds surge cap: base 60.00 × 1.25 = 75.00"]
        auths = loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        assert [a.proposal_id for a in auths] == ["f1", "r1"]
        assert all(a.basis == "policy" for a in auths)
        assert produced == len(verdicts) + len(auths)
        assert [p.proposal_id for p in loop.service.pending()] == ["f3", "r2"]

    def test_idempotency_key_binds_authorization_action_and_args(self, loop: Loop) -> None:
        """sha256(authorization_id ‖ action ‖ canonical args)."""
        loop.propose("f1", "finance", "set_price", region="CA", price=70)
        loop.step()
        (auth,) = loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        expected = hashlib.sha256(
            auth.authorization_id.encode() + b"\x1fset_price\x1f" + canonical_json(auth.args)
        ).hexdigest()
        assert auth.idempotency_key == expected

    def test_a_redelivered_proposal_is_decided_once(self, loop: Loop) -> None:
        """The same envelope published twice gets one verdict."""
        p = ActionProposed(
            proposal_id="f1", agent="finance", action="set_price", args={"region": "CA", "price": 70}, rationale="r"
        )
        envelope = Envelope.wrap(p, id="dup-1", source="agent:finance", run_id=RUN, superstep=0, sim_time=START)
        loop.bus.publish(topics.PROPOSALS, envelope)
        loop.bus.publish(topics.PROPOSALS, envelope)
        loop.step()
        assert len(loop.new(topics.VERDICTS, VerdictIssued)) == 1

    def test_garbage_on_the_proposals_topic_is_dead_lettered(self, loop: Loop) -> None:
        """Undecodable bytes do not stop the step; they go to dead-letters."""
        loop.bus.publish_raw(topics.PROPOSALS, b"{not json")
        loop.propose("f1", "finance", "set_price", region="CA", price=70)
        loop.step()
        assert len(loop.new(topics.VERDICTS, VerdictIssued)) == 1
        assert loop.bus.length(topics.DEAD_LETTERS) == 1


class TestEscalations:
    """Approvals are read from the ledger; quorum authorizes, rejection and expiry deny."""

    def test_four_eyes_quorum_then_authorization(self, loop: Loop) -> None:
        """One board approval is not enough; the second one resolves and authorizes (basis approval)."""
        loop.propose("f3", "finance", "enter_market", region="CA", sequence=1, investment_usd=300000)
        loop.step()
        assert loop.decide("carol", "f3").accepted
        loop.step()
        assert loop.new(topics.VERDICTS, EscalationResolved) == []
        assert loop.decide("dave", "f3").status == "approved"
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert (resolved.outcome, resolved.approvers) == ("approved", ["carol", "dave"])
        (auth,) = loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        assert (auth.proposal_id, auth.basis, auth.rule_ids) == ("f3", "approval", ["gate.market_entry"])
        assert loop.service.pending() == []
        kinds = [
            e.kind
            for e in loop.ledger.query(
                __import__("coalition.ledger", fromlist=["LedgerQuery"]).LedgerQuery(subject="f3")
            )
        ]
        assert kinds == ["proposal", "verdict", "approval", "approval", "resolution", "authorization"]

    def test_an_approved_overrun_raises_the_budget_by_the_overrun(self, loop: Loop) -> None:
        """research asks 25,000 of 20,000: bob approves; the budget grows by 5,000.00 and the spend follows."""
        loop.propose("r1", "research", "commission_research", topic="grid study", cost_usd=25000)
        loop.step()
        assert [v.outcome for v in loop.new(topics.VERDICTS, VerdictIssued)] == ["escalate"]
        assert loop.decide("bob", "r1").accepted
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.budget_increase_usd == "5000.00"
        (auth,) = loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        loop.execute(auth)
        loop.step()
        state = loop.service.state
        assert state.increase("research") == 5000
        assert state.spent[("research", "2025-03")] == 25000
        assert state.reserved[("research", "2025-03")] == 0
        loop.propose("r2", "research", "commission_research", topic="more", cost_usd=1)
        loop.step()
        assert [v.outcome for v in loop.new(topics.VERDICTS, VerdictIssued)] == ["escalate"]

    def test_rejection_denies(self, loop: Loop) -> None:
        """frank rejects a severity-5 incident: resolved rejected, nothing authorized."""
        loop.propose(
            "o1",
            "ops",
            "open_incident",
            incident_id="i",
            kind="outage",
            severity=5,
            regions=["CA"],
            affected_customers=10,
            summary="s",
        )
        loop.step()
        assert loop.decide("frank", "o1", "reject").accepted
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "rejected"
        assert resolved.reason.startswith("rejected by frank (ops_lead)")
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []

    def test_expiry_is_a_deny(self, loop: Loop) -> None:
        """No decision within 8 simulated hours: the credential change expires; late approvals are refused."""
        loop.propose("o2", "ops", "rotate_credentials", system="db", reason="leak")
        loop.step()
        loop.clock.advance(timedelta(hours=8))
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "expired"
        assert "an expired escalation is denied" in resolved.reason
        assert not loop.decide("alice", "o2").accepted
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []

    def test_tick_does_not_expire_an_escalation_approved_in_time(self, loop: Loop) -> None:
        """Approved before the deadline, ticked after it: the approval wins and the next step authorizes."""
        loop.propose("o2", "ops", "rotate_credentials", system="db", reason="leak")
        loop.step()
        assert loop.decide("alice", "o2").accepted
        assert loop.decide("frank", "o2").accepted
        loop.clock.advance(timedelta(hours=9))
        assert loop.service.tick(loop.clock.now()) == 0
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "approved"

    def test_an_approval_does_not_override_a_hard_limit_that_appeared_meanwhile(self, loop: Loop) -> None:
        """CA becomes prohibited before the board decides: the approved entry is resolved as rejected."""
        loop.propose("f3", "finance", "enter_market", region="CA", sequence=1, investment_usd=1000)
        loop.propose(
            "l1",
            "legal",
            "publish_jurisdiction_pack",
            region="CA",
            status="prohibited",
            obligations=[],
            effective="2025-03-11",
            material=False,
        )
        loop.step()
        (auth,) = loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        loop.execute(auth)
        assert loop.decide("carol", "f3").accepted
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "rejected"
        assert "now denied: region CA is prohibited by a published jurisdiction pack" in resolved.reason


def retyped(loop: Loop, entry: Any, message_type: str, **changes: Any) -> Any:
    """The entry appended again, as whoever can write to the ledger could, with another message type (its kind,
    payload, signature and message id kept): the signature still says what the kind says."""
    fields = {k: v for k, v in entry.model_dump().items() if k in EntryDraft.model_fields}
    (copy,) = loop.ledger.append([EntryDraft.model_validate({**fields, "message_type": message_type, **changes})])
    return copy


class TestRetypedDecisions:
    """A decision entry says what was decided twice: its kind (approval / rejection: the decision its signature is
    checked for) and its message type (approval.granted / approval.rejected: what governance and the inbox fold).
    A copy of a signed decision with the other message type was taken as the opposite decision and verified: a
    rejection re-appended as approval.granted under its own message id was taken in its place by a resumed run,
    which authorized and executed the rejected action (`ledger verify`: "2 decision signatures verified")."""

    def _settlement_change(self, loop: Loop) -> str:
        loop.propose("s1", "finance", "set_settlement_policy", window="T+3", reserve_ratio=0.11)
        loop.step()
        assert [v.outcome for v in loop.new(topics.VERDICTS, VerdictIssued)] == ["escalate"]
        return "s1"

    def test_a_rejection_retyped_as_an_approval_authorizes_nothing(self, loop: Loop) -> None:
        pid = self._settlement_change(loop)
        rejected = loop.decide("bob", pid, "reject")
        assert rejected.accepted, rejected.reason
        forged = retyped(loop, rejected.entry, ApprovalGranted.TYPE)
        # a resumed run takes what its recorded decision point listed, by message id: the rejection, not the copy
        taken = loop.service.take_decisions(only=[rejected.entry.message_id])
        assert [e.seq for e in taken] == [rejected.entry.seq]
        assert loop.service.take_decisions() == []  # nor later, as a decision of its own
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "rejected"
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []
        (escalation,) = load_escalations(loop.ledger, run_id=RUN, policy=POLICY)  # the inbox: rejected, by bob
        assert (escalation.status, escalation.approvers) == ("rejected", ())
        checked, problems = verify_decisions(loop.ledger, RUN)
        assert checked == 2
        assert [p.seq for p in problems] == [forged.seq]
        assert "approval.granted" in problems[0].reason

    def test_a_forgery_filed_first_under_a_decisions_id_does_not_hide_it_from_a_resumed_run(self, loop: Loop) -> None:
        """A decision's message id is derived from the proposal, its hash and the approver: whoever can write to the
        ledger can file an unsigned entry under it before the approver decides. The resumed run took the first entry
        under each recorded id, refused that one as unsigned and never took bob's rejection, which the run it
        resumes had taken: the escalation stayed open. It takes the first one that is a signed decision."""
        pid = self._settlement_change(loop)
        (verdict,) = loop.ledger.query(LedgerQuery(run_id=RUN, subject=pid, kind="verdict"))
        proposal_hash = str(verdict.payload["proposal_hash"])
        decision_id = "decision-" + content_hash([pid, proposal_hash, "bob"])[:32]
        unsigned = ApprovalGranted(proposal_id=pid, proposal_hash=proposal_hash, approver="bob", role="cfo", reason="x")
        loop.ledger.append(
            [
                EntryDraft(
                    run_id=RUN, sim_time=loop.clock.now(), actor="human:bob", actor_kind="human", kind="approval",
                    subject=pid, payload=unsigned.model_dump(mode="json"), rationale="forged", approver="bob",
                    message_id=decision_id, message_type=ApprovalGranted.TYPE,
                )
            ]
        )  # fmt: skip
        rejected = loop.decide("bob", pid, "reject")
        assert rejected.accepted, rejected.reason
        assert rejected.entry.message_id == decision_id
        taken = loop.service.take_decisions(only=[decision_id])  # what the run's decision point recorded
        assert [e.seq for e in taken] == [rejected.entry.seq]
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "rejected"

    def test_an_approval_retyped_as_a_rejection_rejects_nothing(self, loop: Loop) -> None:
        """Four eyes: bob's approval copied as approval.rejected neither rejects nor counts twice."""
        loop.propose("p1", "finance", "change_pricing_policy", floor=20, ceiling=120, surge_cap_pct=50)
        loop.step()
        approved = loop.decide("bob", "p1")
        assert approved.accepted, approved.reason
        forged = retyped(loop, approved.entry, "approval.rejected", message_id="another-id")
        loop.step()
        assert loop.new(topics.VERDICTS, EscalationResolved) == []
        (escalation,) = load_escalations(loop.ledger, run_id=RUN, policy=POLICY)
        assert (escalation.status, escalation.approvers) == ("pending", ("bob",))
        assert loop.decide("alice", "p1").status == "approved"
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert (resolved.outcome, resolved.approvers) == ("approved", ["bob", "alice"])
        assert [p.seq for p in verify_decisions(loop.ledger, RUN)[1]] == [forged.seq]

    def test_a_decision_filed_under_another_kind_is_no_decision_for_the_inbox(self, loop: Loop) -> None:
        """An approval.granted entry filed as another kind was folded by the inbox, the CLI and the console without
        its signature checked (only approval and rejection entries were): they showed approved what governance,
        which reads decisions by kind, still waited for."""
        pid = self._settlement_change(loop)
        (verdict,) = loop.ledger.query(LedgerQuery(run_id=RUN, subject=pid, kind="verdict"))
        unsigned = ApprovalGranted(
            proposal_id=pid,
            proposal_hash=str(verdict.payload["proposal_hash"]),
            approver="bob",
            role="cfo",
            reason="forged",
        )
        loop.ledger.append(
            [
                EntryDraft(
                    run_id=RUN,
                    sim_time=loop.clock.now(),
                    actor="human:bob",
                    actor_kind="human",
                    kind="system",
                    subject=pid,
                    payload=unsigned.model_dump(mode="json"),
                    rationale="forged",
                    message_id="forged-approval",
                    message_type=ApprovalGranted.TYPE,
                )
            ]
        )
        (escalation,) = load_escalations(loop.ledger, run_id=RUN, policy=POLICY)
        assert (escalation.status, escalation.approvers) == ("pending", ())
        loop.step()
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []


class TestIdentity:
    """An agent speaks only for itself: a proposal naming another agent than its sender is denied."""

    def test_a_proposal_sent_on_behalf_of_another_agent_is_denied(self, loop: Loop) -> None:
        p = ActionProposed(
            proposal_id="spoof", agent="ops", action="pause_settlement", args={"region": "TX", "incident_id": "i",
            "reason": "marketing wants it"}, rationale="marketing pretends to be ops",
        )  # fmt: skip
        loop.emit("agent:marketing", p, topics.PROPOSALS)
        loop.step()
        (verdict,) = loop.new(topics.VERDICTS, VerdictIssued)
        assert (verdict.outcome, verdict.rule_ids) == ("deny", ["identity.sender"])
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []


class TestConcurrentDecisions:
    """Two humans deciding at the same moment: governance and the inbox read the ledger in the same order."""

    def test_a_rejection_recorded_before_a_racing_approval_wins(self, loop: Loop) -> None:
        """carol rejects, dave's approval lands just after (as a race between two processes can leave it)."""
        loop.propose("f4", "finance", "enter_market", region="CA", sequence=1, investment_usd=200000)
        loop.step()
        rejected = loop.decide("carol", "f4", "reject")
        assert rejected.accepted
        entry = rejected.entry
        racing = ApprovalGranted(**{**entry.payload, "approver": "dave", "reason": "dave says so"})
        draft = EntryDraft.model_validate(
            {
                **entry.model_dump(exclude={"seq", "wall_time", "prev_hash", "hash"}),
                "actor": "human:dave",
                "kind": "approval",
                "outcome": "approved",
                "approver": "dave",
                "payload": racing.model_dump(mode="json"),
                "message_type": racing.TYPE,
                "message_id": "decision-racing-dave",
            }
        )
        loop.ledger.append([draft])
        loop.step()
        (resolved,) = loop.new(topics.VERDICTS, EscalationResolved)
        assert resolved.outcome == "rejected"
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []
        inbox = fold_ledger(loop.ledger.iter_entries(run_id=RUN), policy=POLICY)
        assert inbox.escalations["f4"].status == "rejected"


class TestStateFromTheLedger:
    """Executions and observations reach governance on the bus; the ledger folds to the same state."""

    def test_an_executed_price_and_the_ledger_fold(self, loop: Loop) -> None:
        """set_price executed → current price; the state folded from the ledger agrees with the live one."""
        loop.propose("f1", "finance", "set_price", region="CA", price=70)
        loop.propose("r1", "research", "commission_research", topic="x", cost_usd=25000)
        loop.step()
        (auth,) = loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        loop.execute(auth)
        loop.step()
        assert loop.service.state.learned["prices"]["CA"].price == 70
        old, new = loop.service.state, fold_ledger(loop.ledger.iter_entries(run_id=RUN), policy=POLICY)
        assert new.learned["prices"] == old.learned["prices"]
        assert new.spent == old.spent
        assert new.reserved == old.reserved
        assert new.escalations.keys() == old.escalations.keys() == {"r1"}


def script(bus: Bus, path: Path) -> list[dict[str, Any]]:
    """A fixed little story; returns the deterministic fields of every ledger entry."""
    loop = Loop(bus, path)
    loop.propose("f1", "finance", "set_price", region="CA", price=70)
    loop.propose("f3", "finance", "enter_market", region="CA", sequence=1, investment_usd=300000)
    loop.propose("r1", "research", "commission_research", topic="x", cost_usd=25000)
    loop.step()
    loop.decide("carol", "f3")
    loop.decide("dave", "f3")
    loop.decide("bob", "r1")
    loop.step()
    rows = [e.deterministic_fields() for e in loop.ledger.iter_entries()]
    loop.ledger.close()
    return rows


class TestDeterminism:
    """Same inputs, same ledger content (ids, verdicts, reasons), run after run."""

    def test_two_runs_give_identical_ledgers(self, tmp_path: Path) -> None:
        """Two fresh memory buses and ledgers: identical deterministic fields."""
        from coalition.bus.memory import MemoryBus

        first = script(MemoryBus(), tmp_path / "a.db")
        second = script(MemoryBus(), tmp_path / "b.db")
        assert len(first) > 10
        assert first == second


class TestHolds:
    """An escalated incident holds its credits (same incident_id); a pause and other incidents' credits go on."""

    def _incident(self, loop: Loop) -> None:
        loop.propose(
            "inc",
            "ops",
            "open_incident",
            incident_id="i",
            kind="outage",
            severity=5,
            regions=["CA"],
            affected_customers=2,
            summary="s",
        )
        loop.propose("pause", "ops", "pause_settlement", region="CA", incident_id="i", reason="outage")
        loop.propose("c1", "ops", "issue_credit", customer_id="C-1", incident_id="i", tier="major", amount_usd=150)
        loop.propose("c2", "ops", "issue_credit", customer_id="C-2", incident_id="j", tier="major", amount_usd=150)
        loop.step()

    def test_held_then_released_by_the_approval(self, loop: Loop) -> None:
        self._incident(loop)
        outcomes = {v.proposal_id: v.outcome for v in loop.new(topics.VERDICTS, VerdictIssued)}
        assert outcomes == {"inc": "escalate", "pause": "allow", "c2": "allow"}
        (held,) = loop.new(topics.VERDICTS, ProposalHeld)
        assert (held.proposal_id, held.held_by, held.dependency) == ("c1", "inc", "incident_id=i")
        assert set(loop.service.state.held) == {"c1"}
        rebuilt = fold_ledger(loop.ledger.iter_entries(run_id=RUN), policy=POLICY)
        assert set(rebuilt.held) == {"c1"}  # a governance worker rebuilt from the ledger holds the same
        assert loop.decide("frank", "inc").accepted
        loop.step()
        (verdict,) = loop.new(topics.VERDICTS, VerdictIssued)
        assert (verdict.proposal_id, verdict.outcome) == ("c1", "allow")
        assert {a.proposal_id for a in loop.new(topics.AUTHORIZATIONS, ActionAuthorized)} >= {"inc", "c1"}
        assert loop.service.state.held == {}

    @pytest.mark.parametrize("end", ["reject", "expire"])
    def test_rejection_or_expiry_cancels_what_it_held(self, loop: Loop, end: str) -> None:
        self._incident(loop)
        loop.new(topics.AUTHORIZATIONS, ActionAuthorized)
        loop.new(topics.VERDICTS, VerdictIssued)
        if end == "reject":
            assert loop.decide("frank", "inc", "reject").accepted
        else:
            loop.clock.advance(timedelta(hours=4))
        loop.step()
        (cancelled,) = loop.new(topics.VERDICTS, VerdictIssued)
        assert (cancelled.proposal_id, cancelled.outcome, cancelled.rule_ids) == (
            "c1",
            "deny",
            ["gate.holds_dependents"],
        )
        assert ("rejected" if end == "reject" else "expired") in cancelled.reasons[0]
        assert loop.new(topics.AUTHORIZATIONS, ActionAuthorized) == []
