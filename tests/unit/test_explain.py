"""explain: the causal chain of a decision rebuilt from the ledger alone, from any entry of the chain."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import orjson
import pytest

from coalition.bus import topics
from coalition.bus.envelope import Envelope
from coalition.bus.memory import MemoryBus
from coalition.bus.message import Message
from coalition.bus.messages import (
    ActionAuthorized,
    ActionExecuted,
    ActionProposed,
    AgentMessage,
    ApprovalGranted,
    EscalationResolved,
    Observation,
    VerdictIssued,
)
from coalition.governance.decision_signatures import decision_check, scripted_key, scripted_public, sign, statement
from coalition.ledger import EntryNotFound, Explanation, LedgerQuery, Recorder, SqliteLedger, explain
from coalition.ledger.entry import EntryDraft
from coalition.ledger.explain import summary_line
from coalition.ledger.mapping import draft_from_envelope

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def wrap(message: Message, name: str, source: str, step: int, cause: str | None = None) -> Envelope:
    return Envelope.wrap(
        message, id=name, source=source, run_id="run-x", superstep=step, sim_time=T0, causation_id=cause
    )


def proposal(pid: str, agent: str, evidence: list[str]) -> ActionProposed:
    return ActionProposed(
        proposal_id=pid,
        agent=agent,
        action="enter_market",
        args={"region": "TX"},
        rationale=f"{pid} rationale",
        evidence=evidence,
    )


def verdict(pid: str, outcome: str, gate: str | None) -> VerdictIssued:
    return VerdictIssued(
        proposal_id=pid,
        proposal_hash="h",
        agent="finance",
        action="enter_market",
        outcome=outcome,  # type: ignore[arg-type]
        reasons=[f"{pid} is {outcome}"],
        rule_ids=[f"gate.{gate}"] if gate else ["limits.ok"],
        gate=gate,
        policy_version="policy-v1",
    )


@pytest.fixture
def ledger() -> Iterator[SqliteLedger]:
    """A run with one escalated-then-approved market entry (p-1) and two unrelated proposals (p-2, p-3)."""
    bus = MemoryBus()
    with SqliteLedger(":memory:") as store:
        recorder = Recorder(bus, store)
        bus.publish_many(
            [
                (
                    topics.OBSERVATIONS,
                    wrap(Observation(kind="supply.shock", subject="TX", evidence_id="ev-tx"), "o-tx", "world", 0),
                ),
                (topics.OBSERVATIONS, wrap(Observation(kind="news", evidence_id="ev-news"), "o-news", "world", 0)),
            ]
        )
        recorder.flush()
        shortlist = AgentMessage(sender="research", to=["finance"], kind="market.shortlist", evidence=["ev-tx"])
        bus.publish_many(
            [
                (topics.AGENT_MESSAGES, wrap(shortlist, "m-short", "agent:research", 1, "o-tx")),
                (topics.PROPOSALS, wrap(proposal("p-2", "ops", ["ev-news"]), "e-p2", "agent:ops", 1, "o-news")),
                (topics.PROPOSALS, wrap(proposal("p-3", "ops", ["ev-news"]), "e-p3", "agent:ops", 1)),
            ]
        )
        recorder.flush()
        bus.publish(
            topics.PROPOSALS, wrap(proposal("p-1", "finance", ["ev-tx"]), "e-p1", "agent:finance", 2, "m-short")
        )
        recorder.flush()
        bus.publish_many(
            [
                (topics.VERDICTS, wrap(verdict("p-1", "escalate", "market_entry"), "v-1", "governance", 2, "e-p1")),
                (topics.VERDICTS, wrap(verdict("p-2", "allow", None), "v-2", "governance", 2, "e-p2")),
            ]
        )
        recorder.flush()
        signed = statement(
            proposal_id="p-1", proposal_hash="h", approver="alice", decision="approve", reason="go", decided_at=T0
        )
        approval = ApprovalGranted(  # a scripted board's decision: signed by alice's test identity (no interactive run)
            proposal_id="p-1",
            proposal_hash="h",
            approver="alice",
            role="cfo",
            reason="go",
            method="scenario-board",
            scripted=True,
            signature=sign(scripted_key("alice"), signed),
            signer_key=scripted_public("alice"),
        )
        approved = draft_from_envelope(wrap(approval, "a-1", "human:alice", 2, "v-1"))
        assert approved is not None
        store.append([approved])  # the approvals service writes to the ledger directly
        resolved = EscalationResolved(
            proposal_id="p-1", proposal_hash="h", outcome="approved", approvers=["alice"], reason="approved by alice"
        )
        authorized = ActionAuthorized(
            authorization_id="auth-1",
            proposal_id="p-1",
            proposal_hash="h",
            agent="finance",
            action="enter_market",
            idempotency_key="k-1",
            basis="approval",
            rule_ids=["gate.market_entry"],
        )
        executed = ActionExecuted(
            authorization_id="auth-1",
            proposal_id="p-1",
            agent="finance",
            action="enter_market",
            idempotency_key="k-1",
            status="applied",
            detail="entered TX",
        )
        bus.publish_many(
            [
                (topics.VERDICTS, wrap(resolved, "r-1", "governance", 3, "a-1")),
                (topics.AUTHORIZATIONS, wrap(authorized, "z-1", "governance", 3, "r-1")),
                (topics.EXECUTIONS, wrap(executed, "x-1", "executor", 3, "z-1")),
            ]
        )
        recorder.flush()
        assert store.verify().ok
        yield store
    bus.close()


def seq_of(ledger: SqliteLedger, message_id: str) -> int:
    return ledger.query(LedgerQuery(message_id=message_id))[0].seq


def why(ledger: SqliteLedger, seq: int) -> Explanation:
    """The explanation as the CLI and the console build it: with governance's check of each human decision."""
    return explain(ledger, seq, decision_problem=decision_check(ledger))


class TestExplain:
    """Whatever entry of the chain one starts from, the same decision comes back with its causes."""

    @pytest.mark.parametrize("start", ["e-p1", "v-1", "a-1", "r-1", "z-1", "x-1"])
    def test_same_chain_from_any_decision_entry(self, ledger: SqliteLedger, start: str) -> None:
        """Proposal, verdict (gate, rules, policy), approval, resolution, authorization and execution of p-1."""
        result = why(ledger, seq_of(ledger, start))
        assert [d.proposal_id for d in result.decisions] == ["p-1"]
        decision = result.decisions[0]
        assert decision.proposal is not None
        assert decision.proposal.seq == seq_of(ledger, "e-p1")
        assert [c.message_id for c in decision.causes] == ["o-tx", "m-short"]
        assert [(v.outcome, v.gate, v.rule_ids, v.policy_version) for v in decision.verdicts] == [
            ("escalate", "market_entry", ["gate.market_entry"], "policy-v1")
        ]
        assert [(h.kind, h.approver, h.verified, h.scripted) for h in decision.human] == [
            ("approval", "alice", True, True)
        ]
        assert summary_line(decision.human[0]).endswith("(approver alice) (scripted board, signature verified)")
        assert decision.unverified == []
        assert [r.outcome for r in decision.resolutions] == ["approved"]
        assert [a.outcome for a in decision.authorizations] == ["approval"]
        assert [(x.outcome, x.rationale) for x in decision.executions] == [("applied", "entered TX")]

    def test_from_an_observation(self, ledger: SqliteLedger) -> None:
        """From an observation: the decisions it led to, through causation links and through cited evidence."""
        assert [d.proposal_id for d in why(ledger, seq_of(ledger, "o-tx")).decisions] == ["p-1"]
        from_news = why(ledger, seq_of(ledger, "o-news"))
        assert [d.proposal_id for d in from_news.decisions] == ["p-2", "p-3"]
        assert [v.outcome for v in from_news.decisions[0].verdicts] == ["allow"]
        assert from_news.decisions[1].verdicts == []

    def test_from_an_agent_message(self, ledger: SqliteLedger) -> None:
        """From an agent message: its own causes and the proposal that followed."""
        result = why(ledger, seq_of(ledger, "m-short"))
        assert [c.message_id for c in result.causes] == ["o-tx"]
        assert [d.proposal_id for d in result.decisions] == ["p-1"]

    def test_json_round_trip(self, ledger: SqliteLedger) -> None:
        """The explanation serialises to JSON and validates back to the same value."""
        result = why(ledger, seq_of(ledger, "x-1"))
        data = orjson.loads(result.to_json())
        assert data["decisions"][0]["proposal_id"] == "p-1"
        assert Explanation.model_validate(data) == result

    def test_unknown_seq(self, ledger: SqliteLedger) -> None:
        """A sequence that does not exist is EntryNotFound naming it."""
        with pytest.raises(EntryNotFound, match="seq 999"):
            why(ledger, 999)


def forge(ledger: SqliteLedger) -> tuple[int, int]:
    """Append, past the approvals service, an unsigned approval of p-1 in carol's name and a copy of alice's signed
    approval re-filed as a rejection (approval.rejected); returns their seqs."""
    (approval,) = ledger.query(LedgerQuery(message_id="a-1"))
    fields = {name: getattr(approval, name) for name in EntryDraft.model_fields}
    unsigned = {**approval.payload, "approver": "carol", "reason": "forged", "signature": None, "signer_key": None}
    ledger.append(
        [
            EntryDraft(
                **{**fields, "approver": "carol", "rationale": "forged", "payload": unsigned, "message_id": "f-1"}
            ),
            EntryDraft(**{**fields, "kind": "rejection", "message_type": "approval.rejected", "message_id": "f-2"}),
        ]
    )
    return seq_of(ledger, "f-1"), seq_of(ledger, "f-2")


class TestUnverifiedDecisions:
    """An entry that claims to be a human decision but is not its approver's signed one is never shown as one."""

    def test_forged_decisions_are_flagged_apart_with_why(self, ledger: SqliteLedger) -> None:
        """The unsigned approval in carol's name and the re-filed copy are listed as unverified, each with why;
        alice's signed approval alone is a human decision (on main all three were)."""
        unsigned, refiled = forge(ledger)
        decision = why(ledger, seq_of(ledger, "e-p1")).decisions[0]
        assert [(h.seq, h.approver) for h in decision.human] == [(seq_of(ledger, "a-1"), "alice")]
        flagged = {link.seq: link for link in decision.unverified}
        assert sorted(flagged) == [unsigned, refiled]
        assert flagged[unsigned].verified is False
        assert flagged[unsigned].problem == "the decision of carol is not signed"
        assert flagged[refiled].problem == (
            "the signature is not alice's over this proposal hash, decision, reason and time"
        )

    def test_a_forged_focus_says_so(self, ledger: SqliteLedger) -> None:
        """Explained from the forged entry itself: the focus is flagged, and its one-line summary says so first."""
        unsigned, _ = forge(ledger)
        focus = why(ledger, unsigned).focus
        assert (focus.verified, focus.problem) == (False, "the decision of carol is not signed")
        line = summary_line(focus)
        assert line.startswith(f"#{unsigned} UNVERIFIED approval")
        assert line.endswith("NOT a verified human decision: the decision of carol is not signed")

    def test_without_a_check_no_decision_is_shown_as_human(self, ledger: SqliteLedger) -> None:
        """A caller with nothing to check against (decision_problem=None) gets every claimed decision unverified."""
        decision = explain(ledger, seq_of(ledger, "e-p1"), decision_problem=None).decisions[0]
        assert decision.human == []
        assert [(u.approver, u.problem) for u in decision.unverified] == [("alice", "its signature was not checked")]

    def test_a_decision_type_under_another_kind_is_flagged(self, ledger: SqliteLedger) -> None:
        """An approval.granted filed under another kind of the chain (a resolution) is a claimed decision too: it is
        checked and flagged, not listed as governance's resolution."""
        (approval,) = ledger.query(LedgerQuery(message_id="a-1"))
        fields = {name: getattr(approval, name) for name in EntryDraft.model_fields}
        ledger.append([EntryDraft(**{**fields, "kind": "resolution", "message_id": "f-3"})])
        decision = why(ledger, seq_of(ledger, "e-p1")).decisions[0]
        assert seq_of(ledger, "f-3") not in [r.seq for r in decision.resolutions]
        assert [u.seq for u in decision.unverified] == [seq_of(ledger, "f-3")]
