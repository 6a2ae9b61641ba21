"""A re-execution's scratch ledger (SqliteLedger.scratch: replay, replay --verify, what-if) holds the same chained
entries as a kept ledger, without the full-text index and the tree's nodes; its search still answers (by LIKE).
A batch appended in one write keeps one dedupe row per message, naming the message's first entry."""

from __future__ import annotations

import sqlite3

import orjson
import pytest
from test_ledger_tree import draft

from coalition.ledger import EntryDraft, LedgerQuery, SqliteLedger
from coalition.ledger.sqlite import BROWSING_INDEXES

pytestmark = pytest.mark.unit


def searchable(n: int, rationale: str) -> EntryDraft:
    return draft(n).model_copy(update={"rationale": rationale})


BATCH = [("m1", [draft(1)]), ("m2", []), ("m3", [searchable(2, "surge capped in TX"), draft(3)]), ("m1", [draft(4)])]


def schema(ledger: SqliteLedger, kind: str) -> set[str]:
    """The names of the ledger's tables (kind "table") or indexes ("index")."""
    conn: sqlite3.Connection = ledger._conn
    return {str(name) for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = ?", (kind,))}


def tables(ledger: SqliteLedger) -> set[str]:
    return schema(ledger, "table")


def test_a_scratch_ledger_holds_what_a_kept_one_holds() -> None:
    with SqliteLedger(":memory:") as kept, SqliteLedger.scratch() as scratch:
        for ledger in (kept, scratch):
            ledger.append_batch_once("recorder", BATCH)
        assert [e.deterministic_fields() for e in scratch.iter_entries()] == [
            e.deterministic_fields() for e in kept.iter_entries()
        ]
        assert scratch.verify().ok
        assert "entries_fts" in tables(kept)
        assert "entries_fts" not in tables(scratch)  # nothing maintains an index no one searches
        assert [e.subject for e in scratch.query(LedgerQuery(search="surge"))] == ["p-2"]


def test_one_write_per_batch_keeps_one_dedupe_row_per_message() -> None:
    with SqliteLedger(":memory:") as ledger:
        ledger.append_once("recorder", "m0", [draft(0)])
        written = ledger.append_batch_once("recorder", [("m0", [draft(9)]), *BATCH])
        assert [e.seq for e in written] == [2, 3, 4]  # m0 seen before, m1 repeated: each written once
        rows = ledger._conn.execute("SELECT message_id, first_seq FROM dedupe ORDER BY message_id").fetchall()
        assert rows == [("m0", 1), ("m1", 2), ("m2", None), ("m3", 3)]
        assert ledger.append_batch_once("recorder", BATCH) == []


def test_a_scratch_ledger_goes_without_the_browsing_indexes_and_its_filters_still_answer() -> None:
    with SqliteLedger(":memory:") as kept, SqliteLedger.scratch() as scratch:
        for ledger in (kept, scratch):
            ledger.append_batch_once("recorder", BATCH)
        assert schema(kept, "index") >= BROWSING_INDEXES
        assert not schema(scratch, "index") & BROWSING_INDEXES  # an insert maintains only what a re-execution reads
        assert schema(scratch, "index") >= {"entries_run", "entries_kind", "entries_subject", "entries_message"}
        for query in (
            LedgerQuery(actor="governance"),
            LedgerQuery(outcome="allow"),
            LedgerQuery(kind="verdict", subject="p-2"),
            LedgerQuery(run_id="run-tree", newest_first=True, limit=2),
        ):
            assert [e.seq for e in scratch.query(query)] == [e.seq for e in kept.query(query)]
        assert scratch.verify().ok


def test_a_scratch_ledger_parses_each_body_once_and_reads_what_was_appended_since() -> None:
    with SqliteLedger.scratch() as scratch:
        scratch.append([draft(1), draft(2)])
        first = scratch.run_bodies("run-tree")
        scratch.append([draft(3)])
        again = scratch.run_bodies("run-tree")
        stored = scratch._conn.execute("SELECT body FROM entries ORDER BY seq").fetchall()
        assert again == [orjson.loads(body) for (body,) in stored]  # the appended entry included, in order
        assert all(a is b for a, b in zip(first, again[:2], strict=True))  # not parsed a second time
        assert scratch.run_bodies("another-run") == []
