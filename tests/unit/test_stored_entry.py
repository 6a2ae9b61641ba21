"""A run's end reads its entries as stored (StoredEntry) instead of an entry model per row: each holds exactly what
the entry model holds of the fields expectations and the run's summary read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from coalition.ledger import EntryDraft, SqliteLedger
from coalition.ledger.stored_entry import StoredEntry

pytestmark = pytest.mark.unit

FIELDS = ("seq", "kind", "actor", "subject", "outcome", "gate", "message_type", "rule_ids", "payload")


def test_a_stored_entry_holds_what_the_entry_model_holds() -> None:
    when = datetime(2025, 3, 3, tzinfo=UTC)
    drafts = [
        EntryDraft(run_id="r", sim_time=when, actor="runner", actor_kind="runner", kind="run", rationale="bare"),
        EntryDraft(
            run_id="r",
            sim_time=when,
            actor="governance",
            actor_kind="governance",
            kind="verdict",
            subject="p-1",
            payload={"agent": "pricing", "nested": {"amount": 12.5, "list": [1, "two"]}},
            rationale="escalated",
            rule_ids=["gate.market_entry", "limit.price"],
            gate="market_entry",
            outcome="escalate",
            message_id="m-1",
            message_type="governance.verdict",
        ),
    ]
    with SqliteLedger(":memory:") as ledger:
        ledger.append(drafts)
        models = list(ledger.iter_entries(run_id="r"))
        stored = [StoredEntry.of(body) for body in ledger.run_bodies("r")]
    assert [[getattr(s, f) for f in FIELDS] for s in stored] == [[getattr(m, f) for f in FIELDS] for m in models]
