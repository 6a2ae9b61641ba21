"""recorded_decisions: each recorded human decision with the proposal it decided, read per decided subject; and
decisions_of_bodies, the same read from a run's stored bodies read already (replay --verify)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from coalition.ledger.digest import history_bodies
from coalition.ledger.entry import EntryDraft
from coalition.ledger.errors import MalformedEntry
from coalition.ledger.memory import MemoryLedger
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.replay import decisions_of_bodies, recorded_decisions

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _draft(n: int, kind: str, subject: str, payload: dict[str, object], *, run_id: str = "r1") -> EntryDraft:
    return EntryDraft(
        run_id=run_id,
        sim_time=T0 + timedelta(seconds=n),
        actor="agent:finance" if kind == "proposal" else "human:alice",
        actor_kind="agent" if kind == "proposal" else "human",
        kind=kind,
        subject=subject,
        payload=payload,
        rationale=f"entry {n}",
    )


@pytest.mark.parametrize("make", [MemoryLedger, lambda: SqliteLedger(":memory:")], ids=["memory", "sqlite"])
def test_each_decision_takes_the_last_proposal_of_its_subject(make) -> None:  # type: ignore[no-untyped-def]
    """A subject proposed twice is decided on its last proposal; another run's and undecided proposals are not
    read into it; a decision without a recorded proposal names no agent or action."""
    ledger = make()
    ledger.append(
        [
            _draft(1, "proposal", "p-1", {"agent": "finance", "action": "old", "args": {"x": 1}}),
            _draft(2, "proposal", "p-2", {"agent": "sales", "action": "never_decided", "args": {}}),
            _draft(3, "proposal", "p-1", {"agent": "finance", "action": "issue_credit", "args": {"x": 2}}),
            _draft(4, "proposal", "p-1", {"agent": "other", "action": "other_run", "args": {}}, run_id="r2"),
            _draft(5, "rejection", "p-9", {"approver": "bob", "reason": "no"}),
            _draft(6, "approval", "p-1", {"approver": "alice", "reason": "ok"}),
        ]
    )
    decisions = recorded_decisions(ledger, "r1")
    assert decisions_of_bodies(history_bodies(ledger, "r1")) == decisions  # the same, from the bodies read once
    assert [(d.proposal_id, d.decision) for d in decisions] == [("p-9", "reject"), ("p-1", "approve")]
    assert (decisions[0].agent, decisions[0].action, decisions[0].args) == ("", "", {})
    assert (decisions[1].agent, decisions[1].action, decisions[1].args) == ("finance", "issue_credit", {"x": 2})


def test_a_decision_body_that_is_no_entry_is_malformed_as_a_query_says() -> None:
    """A decision whose stored body no longer validates as an entry (its time edited into words) is the
    MalformedEntry a query of it raises, not a decision read with a made-up field."""
    ledger = MemoryLedger()
    ledger.append([_draft(1, "approval", "p-1", {"approver": "alice", "reason": "ok"})])
    bodies = [{**body, "sim_time": "yesterday"} for body in history_bodies(ledger, "r1")]
    with pytest.raises(MalformedEntry) as malformed:
        decisions_of_bodies(bodies)
    assert malformed.value.seq == 1
    assert malformed.value.reason.startswith("sim_time: ")
