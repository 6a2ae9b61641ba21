"""run_entries_read_once: a run's `run` entries read once for a pass that records many decisions, and read again
once the run has another (a run.finished appended since is seen: the decision after it is refused)."""

from __future__ import annotations

from contextlib import nullcontext

import pytest
from test_approvals import RUN, decide, draft, escalate, market_entry, start_run

from coalition.bus.messages import RunFinished
from coalition.governance.run_entries import run_entries, run_entries_read_once
from coalition.ledger.memory import MemoryLedger

pytestmark = pytest.mark.unit


def finish(ledger: MemoryLedger) -> None:
    ledger.append([draft("run", "runner", "runner", "s", RunFinished(status="completed"), "run finished")])


@pytest.mark.parametrize("once", [False, True], ids=["every-read", "read-once"])
def test_a_decision_after_the_run_finished_is_refused(once: bool) -> None:
    ledger = MemoryLedger()
    escalate(ledger, market_entry(), required=2)  # type: ignore[arg-type]
    with run_entries_read_once() if once else nullcontext():
        first = decide(ledger, "carol")  # type: ignore[arg-type]
        assert first.accepted, first.reason
        finish(ledger)
        after = decide(ledger, "dave")  # type: ignore[arg-type]
    assert (after.accepted, after.code) == (False, "run_finished"), after.reason


def test_the_same_entries_until_another_is_appended() -> None:
    ledger, other = MemoryLedger(), MemoryLedger()
    start_run(ledger)  # type: ignore[arg-type]
    with run_entries_read_once():
        read = run_entries(ledger, RUN)
        assert run_entries(ledger, RUN) is read
        assert run_entries(other, RUN) == []  # another ledger is read for itself
        assert run_entries(ledger, RUN, limit=5) == read
        finish(ledger)
        again = run_entries(ledger, RUN)
        assert [e.message_type for e in again] == ["run.started", "run.finished"]
        assert run_entries(ledger, RUN) is again
    assert [e.message_type for e in run_entries(ledger, RUN)] == ["run.started", "run.finished"]
