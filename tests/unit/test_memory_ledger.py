"""The in-memory ledger (replay --verify derives a run into one) holds exactly what a SQLite ledger holds: the same
canonical bytes and hash chain for the same drafts and wall clock, the same dedupe, and the same answer to every
query filter; its chain check finds an altered entry."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest

from coalition.bus.canonical import canonical_json
from coalition.bus.clock import SimulatedClock
from coalition.ledger import EntryDraft, LedgerQuery, SqliteLedger
from coalition.ledger.entry import EnvelopeDraft
from coalition.ledger.memory import MemoryLedger

pytestmark = pytest.mark.unit

T0 = datetime(2025, 3, 3, tzinfo=UTC)


def draft(n: int, *, run: str = "run-a", kind: str = "verdict", actor: str = "governance", **more: Any) -> EntryDraft:
    return EntryDraft.model_validate(
        {
            "run_id": run,
            "sim_time": T0 + timedelta(seconds=n),
            "actor": actor,
            "actor_kind": "agent" if actor.lower().startswith("agent:") else "governance",
            "kind": kind,
            "subject": f"p-{n % 3}",
            "rationale": f"entry {n}: surge capped in TX" if n % 2 else f"entry {n}",
            "outcome": "allow" if n % 2 else "deny",
            "correlation_id": f"c-{n % 2}",
            "message_id": f"m-{n}",
            **more,
        }
    )


def appended(ledger: SqliteLedger | MemoryLedger) -> None:
    """The same appends, by every way of appending, duplicates included."""
    ledger.append([draft(1), draft(2, run="run-b", kind="run")])
    ledger.append_once("recorder", "x", [draft(3, actor="agent:finance", kind="proposal", payload={"action": "a"})])
    assert ledger.append_once("recorder", "x", [draft(4)]) is None
    batch = [
        ("x", [draft(5)]),
        ("y", [draft(6, payload={"agent": "ops", "action": "b"}), draft(7, actor="AGENT:Sales")]),
        ("z", []),
        ("y", [draft(8)]),
        ("w", [draft(9, run="run-b", kind="run", gate="g")]),
    ]
    ledger.append_batch_once("recorder", batch)
    assert ledger.append_batch_once("recorder", batch) == []
    assert ledger.append_checked("approvals", lambda: ("d", [draft(10, kind="approval")])) is not None
    assert ledger.append_checked("approvals", lambda: ("d", [draft(11)])) is None


QUERIES = [
    LedgerQuery(),
    LedgerQuery(run_id="run-a"),
    LedgerQuery(run_id="run-b", kind="run", limit=5),
    LedgerQuery(kind="verdict", subject="p-1"),
    LedgerQuery(subject="p-0", newest_first=True, limit=2),
    LedgerQuery(run_id="run-a", newest_first=True, limit=1),
    LedgerQuery(agent="finance"),
    LedgerQuery(agent="ops"),
    LedgerQuery(agent="Sales"),
    LedgerQuery(actor="governance", outcome="allow"),
    LedgerQuery(gate="g"),
    LedgerQuery(correlation_id="c-1", after_seq=2, before_seq=8),
    LedgerQuery(message_id="m-6"),
    LedgerQuery(action="b"),
    LedgerQuery(search="SURGE tx"),
    LedgerQuery(search="surge nothing"),
    LedgerQuery(limit=0),
]


def test_the_same_appends_give_the_same_bytes_chain_and_answers_as_sqlite() -> None:
    clock = SimulatedClock(T0)
    with SqliteLedger(":memory:", wall_clock=clock) as kept, MemoryLedger(wall_clock=clock) as memory:
        appended(kept)
        appended(memory)
        assert memory.head() == kept.head()  # same hashes: same canonical bytes in the same chain
        assert memory.verify().ok
        for run in ("run-a", "run-b", "run-c"):
            assert memory.run_bodies(run) == kept.run_bodies(run)
        for query in QUERIES:
            assert memory.query(query) == kept.query(query), query
            assert memory.count(query) == kept.count(query), query
        assert list(memory.iter_entries(run_id="run-b")) == list(kept.iter_entries(run_id="run-b"))
        assert memory.get(4) == kept.get(4)
        assert memory.get(99) is None
        assert memory.runs() == kept.runs()
        assert memory.seen("recorder", "z")
        assert not memory.seen("recorder", "v")


def test_an_entry_read_is_a_copy_of_what_is_kept() -> None:
    with MemoryLedger() as memory:
        memory.append([draft(1, payload={"args": {"price": 1}})])
        memory.query(LedgerQuery())[0].payload["args"]["price"] = 2
        assert memory.query(LedgerQuery())[0].payload == {"args": {"price": 1}}


def test_its_chain_check_finds_an_altered_entry() -> None:
    with MemoryLedger() as memory:
        memory.append([draft(1), draft(2), draft(3)])
        stored = memory._stored[1]
        memory._stored[1] = type(stored)(stored.body.replace(b"entry 2", b"entry 7"), stored.hash, stored.fields)
        result = memory.verify()
        assert not result.ok
        assert result.first_bad_seq == 2


def test_a_draft_that_fails_to_seal_keeps_none_of_its_batch() -> None:
    with MemoryLedger() as memory:
        bad = EntryDraft.model_construct(**{**draft(2).__dict__, "rationale": " "})
        with pytest.raises(ValueError, match="rationale"):
            memory.append([draft(1), bad])
        assert memory.head()[0] == 0
        assert memory.run_bodies("run-a") == []


def test_each_kept_body_is_the_json_of_its_bytes() -> None:
    """run_bodies hands out the fields the bytes encode: equal as JSON values."""
    with MemoryLedger() as memory:
        appended(memory)
        memory.append([draft(12, payload={"nested": {"b": [1, 2.5, True, None], "a": "x"}})])
        for stored in memory._stored:
            assert canonical_json(stored.fields) == stored.body
            assert orjson.loads(stored.body) == stored.fields


def test_a_secret_is_kept_redacted_as_it_is_sealed() -> None:
    with MemoryLedger() as memory:
        memory.append([draft(1, payload={"url": "redis://u:hunter2@cache:6379"})])
        (body,) = memory.run_bodies("run-a")
        assert b"hunter2" not in canonical_json(body)
        assert canonical_json(body) == memory._stored[0].body
        assert "hunter2" not in str(memory.query(LedgerQuery())[0].payload)


@pytest.mark.parametrize("kind", [EntryDraft, EnvelopeDraft])
def test_changing_a_draft_or_the_entry_after_the_append_changes_nothing_kept(kind: type[EntryDraft]) -> None:
    """A message's draft hands its payload over as it is (EnvelopeDraft) and the entry returned is built around the
    draft's dumped fields: what the ledger keeps shares no object with either, so a caller changing them after the
    append changes neither what run_bodies hands out nor what a query finds."""
    payload = {"action": "set_price", "args": {"price": "41.50"}}
    with MemoryLedger() as memory:
        fresh = kind.model_validate({**dict(draft(1, kind="proposal")), "payload": payload, "evidence": ["e-1"]})
        (entry,) = memory.append([fresh])
        kept = [memory.sealed(1), canonical_json(memory.run_bodies("run-a")), memory.query(LedgerQuery())]
        fresh.payload["action"] = "drain_treasury"
        fresh.payload["args"]["price"] = "0.01"
        entry.payload["args"]["amount"] = "1000000"
        entry.evidence.append("forged")
        assert [memory.sealed(1), canonical_json(memory.run_bodies("run-a")), memory.query(LedgerQuery())] == kept
        assert memory.count(LedgerQuery(action="set_price")) == 1
        assert memory.count(LedgerQuery(action="drain_treasury")) == 0
        assert memory.verify().ok


def test_its_derived_data_check_names_bytes_that_repeat_a_key() -> None:
    """Bytes whose hash is right but that repeat a key (readers disagree on its value) pass the chain check, which
    proves the bytes, and fail the derived-data check at their seq."""
    with MemoryLedger() as memory:
        memory.append([draft(1), draft(2), draft(3)])
        assert memory.derived_data_problem() is None
        stored = memory._stored[2]
        body = stored.body.replace(b'"outcome":"allow"', b'"outcome":"deny","outcome":"allow"')
        rehashed = hashlib.sha256(memory._stored[1].hash.encode() + body).hexdigest()
        memory._stored[2] = type(stored)(body, rehashed, orjson.loads(body))
        assert memory.verify().ok
        assert memory.derived_data_problem() == (
            "derived data: seq 3's stored JSON is not canonical: the key 'outcome' appears twice in one object"
            " (readers disagree on its value)"
        )
