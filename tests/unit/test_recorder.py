"""The recorder on the in-memory bus: every message exactly once, in canonical order; and the mapping table."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

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
    ApprovalRejected,
    DeadLettered,
    EscalationResolved,
    ModelTrace,
    Observation,
    ReviewMarked,
    ReviewSampled,
    RunFinished,
    RunStarted,
    VerdictIssued,
)
from coalition.ledger import LedgerQuery, Recorder, SqliteLedger, draft_from_envelope

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def wrap(message: Message, n: int, *, source: str = "world", step: int = 1, cause: str | None = None) -> Envelope:
    return Envelope.wrap(
        message, id=f"e-{n}", source=source, run_id="run-r", superstep=step, sim_time=T0, causation_id=cause
    )


def obs(n: int, **kw: Any) -> Envelope:
    return wrap(Observation(kind="news", subject=f"s-{n}", to=["research"], evidence_id=f"ev-{n}"), n, **kw)


def proposal(n: int, agent: str = "finance", **kw: Any) -> Envelope:
    message = ActionProposed(proposal_id=f"p-{n}", agent=agent, action="set_price", args={}, rationale=f"why {n}")
    return wrap(message, n, source=f"agent:{agent}", **kw)


@pytest.fixture
def bus() -> Iterator[MemoryBus]:
    memory = MemoryBus()
    yield memory
    memory.close()


@pytest.fixture
def ledger() -> Iterator[SqliteLedger]:
    with SqliteLedger(":memory:") as store:
        yield store


def subjects(ledger: SqliteLedger) -> list[str]:
    return [e.subject for e in ledger.iter_entries()]


class TestExactlyOnce:
    """Each envelope id becomes one entry, whatever the bus delivers twice."""

    def test_records_every_topic_then_acks(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """Observations and proposals are recorded; nothing stays pending."""
        recorder = Recorder(bus, ledger)
        bus.publish(topics.OBSERVATIONS, obs(1))
        bus.publish(topics.PROPOSALS, proposal(2))
        assert recorder.flush() == 2
        assert subjects(ledger) == ["s-1", "p-2"]
        assert all(bus.pending_count(t, "recorder") == 0 for t in topics.ALL)
        assert recorder.flush() == 0
        assert ledger.verify().ok

    def test_same_envelope_published_twice(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """A producer retry (same envelope id, new broker id) gives one entry, in one flush or across two."""
        recorder = Recorder(bus, ledger)
        bus.publish_many([(topics.OBSERVATIONS, obs(1)), (topics.OBSERVATIONS, obs(1))])
        assert recorder.flush() == 1
        bus.publish(topics.OBSERVATIONS, obs(1))
        assert recorder.flush() == 0
        assert subjects(ledger) == ["s-1"]

    def test_crash_after_commit_before_ack(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """Recorded but never acked: the redelivery to a second recorder writes nothing new, then is acked."""
        first = Recorder(bus, ledger, name="recorder-1")
        bus.publish_many([(topics.OBSERVATIONS, obs(1)), (topics.PROPOSALS, proposal(2))])
        first.record(first.collect())  # the process dies here, before its ack
        assert bus.pending_count(topics.OBSERVATIONS, "recorder") == 1
        second = Recorder(bus, ledger, name="recorder-2", min_idle_ms=0)
        assert second.flush() == 0
        assert subjects(ledger) == ["s-1", "p-2"]
        assert bus.pending_count(topics.OBSERVATIONS, "recorder") == 0

    def test_crash_before_commit(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """Read by a recorder that died before recording: reclaimed and recorded once by the next one."""
        Recorder(bus, ledger, name="recorder-1")
        bus.publish_many([(topics.OBSERVATIONS, obs(1)), (topics.OBSERVATIONS, obs(2))])
        bus.read(topics.ALL, "recorder", "recorder-1")  # delivered, then the consumer vanished
        survivor = Recorder(bus, ledger, name="recorder-2", min_idle_ms=0)
        assert survivor.flush() == 2
        assert survivor.flush() == 0
        assert subjects(ledger) == ["s-1", "s-2"]

    def test_wire_encoded_bus(self, ledger: SqliteLedger) -> None:
        """With encoding on the way through (like Redis) the recorded payload is the same."""
        wired = MemoryBus(wire=True)
        Recorder(wired, ledger).flush()
        wired.publish(topics.PROPOSALS, proposal(1))
        assert Recorder(wired, ledger).flush() == 1
        assert ledger.query(LedgerQuery(kind="proposal"))[0].payload["rationale"] == "why 1"


class TestCanonicalOrder:
    """A batch is written in topic order, then superstep, then source, keeping stream order per source."""

    def test_scrambled_publication_is_recorded_canonically(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """Whatever order things were published in, the ledger order is canonical."""
        recorder = Recorder(bus, ledger)
        verdict = VerdictIssued(
            proposal_id="p-9",
            proposal_hash="h",
            agent="ops",
            action="a",
            outcome="deny",
            reasons=["no"],
            policy_version="pv",
        )
        bus.publish_many(
            [
                (topics.VERDICTS, wrap(verdict, 9, source="governance", step=1)),
                (topics.PROPOSALS, proposal(5, agent="ops", step=2)),
                (topics.PROPOSALS, proposal(4, agent="ops", step=1)),
                (topics.PROPOSALS, proposal(3, agent="ops", step=1)),
                (topics.PROPOSALS, proposal(2, agent="finance", step=1)),
                (topics.OBSERVATIONS, obs(1, step=0)),
            ]
        )
        recorder.flush()
        # observations < proposals < verdicts; step 1 < step 2; agent:finance < agent:ops; p-4 before p-3 (stream)
        assert subjects(ledger) == ["s-1", "p-2", "p-4", "p-3", "p-5", "p-9"]


class TestDeadLetters:
    """What cannot be recorded as a message is recorded as a dead letter saying why, then acked."""

    def test_undecodable_bytes(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """Garbage on a topic becomes one dead_letter entry with the decoder's reason, even if redelivered."""
        recorder = Recorder(bus, ledger)
        bus.publish(topics.OBSERVATIONS, obs(1))
        broker_id = bus.publish_raw(topics.PROPOSALS, b'{"run_id": "run-r", "oops": ')
        assert recorder.flush() == 2
        dead = ledger.query(LedgerQuery(kind="dead_letter"))
        assert len(dead) == 1
        assert dead[0].subject == broker_id
        assert dead[0].run_id == "run-r"
        assert "not JSON" in dead[0].rationale
        assert dead[0].payload["topic"] == topics.PROPOSALS
        assert bus.pending_count(topics.PROPOSALS, "recorder") == 0

    def test_dead_lettered_message(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """A DeadLettered notice from another consumer is recorded with its reason."""
        notice = DeadLettered(
            topic="proposals",
            group="governance",
            broker_id="7-0",
            envelope_id="e-7",
            deliveries=5,
            reason="handler raised ValueError",
            raw_sha256="00",
        )
        bus.publish(topics.DEAD_LETTERS, wrap(notice, 1, source="governance"))
        Recorder(bus, ledger).flush()
        entry = ledger.query(LedgerQuery(kind="dead_letter"))[0]
        assert entry.subject == "7-0"
        assert "handler raised ValueError" in entry.rationale
        assert "5 deliveries" in entry.rationale


PROPOSED = ActionProposed(
    proposal_id="p-1",
    agent="finance",
    action="set_price",
    args={"price": 40},
    rationale="supply fell",
    evidence=["ev-1"],
    model=ModelTrace(model_id="offline", prompt_hash="ph", response_hash="rh"),
)

MAPPING: list[tuple[Message, dict[str, Any]]] = [
    (
        RunStarted(scenario="helios", scenario_hash="sh", seed=3, policy_version="pv", start=T0, days=2),
        {"kind": "run", "actor": "runner", "subject": "helios", "outcome": "started"},
    ),
    (RunFinished(status="completed"), {"kind": "run", "actor": "runner", "outcome": "completed"}),
    (
        Observation(kind="supply.shock", to=["finance"], evidence_id="ev-1"),
        {"kind": "observation", "actor": "world", "subject": "supply.shock", "evidence": ["ev-1"]},
    ),
    (
        AgentMessage(sender="research", to=["finance"], kind="market.shortlist", summary="TX first"),
        {"kind": "message", "actor": "agent:research", "subject": "market.shortlist", "rationale": "TX first"},
    ),
    (
        PROPOSED,
        {
            "kind": "proposal",
            "actor": "agent:finance",
            "subject": "p-1",
            "rationale": "supply fell",
            "evidence": ["ev-1"],
        },
    ),
    (
        VerdictIssued(
            proposal_id="p-1",
            proposal_hash="h",
            agent="finance",
            action="enter_market",
            outcome="escalate",
            reasons=["market entry is gated", "needs the board"],
            rule_ids=["gate.market_entry"],
            gate="market_entry",
            policy_version="pv",
        ),
        {
            "kind": "verdict",
            "actor": "governance",
            "subject": "p-1",
            "outcome": "escalate",
            "gate": "market_entry",
            "rule_ids": ["gate.market_entry"],
            "policy_version": "pv",
            "rationale": "market entry is gated; needs the board",
        },
    ),
    (
        EscalationResolved(proposal_id="p-1", proposal_hash="h", outcome="approved", approvers=["alice"], reason="ok"),
        {"kind": "resolution", "actor": "governance", "subject": "p-1", "outcome": "approved", "approver": "alice"},
    ),
    (
        ActionAuthorized(
            authorization_id="a-1",
            proposal_id="p-1",
            proposal_hash="h",
            agent="finance",
            action="set_price",
            idempotency_key="k",
            basis="approval",
            rule_ids=["r1"],
        ),
        {"kind": "authorization", "actor": "governance", "subject": "p-1", "outcome": "approval", "rule_ids": ["r1"]},
    ),
    (
        ActionExecuted(
            authorization_id="a-1",
            proposal_id="p-1",
            agent="finance",
            action="set_price",
            idempotency_key="k",
            status="applied",
            detail="price set to 40",
        ),
        {
            "kind": "execution",
            "actor": "executor",
            "subject": "p-1",
            "outcome": "applied",
            "rationale": "price set to 40",
        },
    ),
    (
        ApprovalGranted(proposal_id="p-1", proposal_hash="h", approver="alice", role="cfo", reason="fine"),
        {"kind": "approval", "actor": "human:alice", "subject": "p-1", "outcome": "approved", "approver": "alice"},
    ),
    (
        ApprovalRejected(proposal_id="p-1", proposal_hash="h", approver="bob", role="cfo", reason="too risky"),
        {"kind": "rejection", "actor": "human:bob", "subject": "p-1", "outcome": "rejected", "rationale": "too risky"},
    ),
    (
        ReviewSampled(
            proposal_id="p-1",
            proposal_hash="h",
            agent="ops",
            action="issue_credit",
            rate="0.5",
            draw="0.123467",
            policy_version="v1",
        ),
        {"kind": "review", "actor": "governance", "subject": "p-1", "outcome": "sampled", "rule_ids": ["tier.sampled"]},
    ),
    (
        ReviewMarked(
            proposal_id="p-1",
            proposal_hash="h",
            reviewer="frank",
            mark="wrong",
            reason="tier 2",
            signature="s",
            signer_key="k",
        ),
        {"kind": "review_mark", "actor": "human:frank", "subject": "p-1", "outcome": "wrong", "rationale": "tier 2"},
    ),
]


class TestMapping:
    """docs/design.md "Messages → ledger entries", row by row."""

    @pytest.mark.parametrize(("message", "expected"), MAPPING, ids=[m.TYPE for m, _ in MAPPING])
    def test_row(self, message: Message, expected: dict[str, Any]) -> None:
        """Kind, actor, subject, outcome, gate and rule ids as the table says; envelope fields copied."""
        env = wrap(message, 1, source="x", step=4, cause="e-0")
        draft = draft_from_envelope(env)
        assert draft is not None
        for field, value in expected.items():
            assert getattr(draft, field) == value, field
        assert draft.rationale.strip()
        assert (draft.message_id, draft.message_type, draft.run_id) == ("e-1", message.TYPE, "run-r")
        assert (draft.correlation_id, draft.causation_id, draft.superstep, draft.sim_time) == ("e-1", "e-0", 4, T0)
        assert draft.payload == message.model_dump(mode="json")

    def test_model_trace_is_kept(self) -> None:
        """A proposal's model trace becomes the entry's model reference."""
        draft = draft_from_envelope(wrap(PROPOSED, 1))
        assert draft is not None
        assert draft.model is not None
        assert (draft.model.model_id, draft.model.prompt_hash, draft.model.response_hash) == ("offline", "ph", "rh")
