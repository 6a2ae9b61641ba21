"""Plain verdict drafts for ledger tests that need entries and do not care what they say."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from coalition.ledger.entry import EntryDraft

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def verdict_draft(n: int, *, run_id: str) -> EntryDraft:
    """Entry n of run `run_id`: a governance verdict on proposal p-<n>, n seconds after T0."""
    return EntryDraft(
        run_id=run_id,
        sim_time=T0 + timedelta(seconds=n),
        actor="governance",
        actor_kind="governance",
        kind="verdict",
        subject=f"p-{n}",
        rationale=f"entry {n}",
    )
