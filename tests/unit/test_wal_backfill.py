"""A SQLite ledger's writer copies its write-ahead log into the database file after its write turn, not inside it
(coalition.ledger.wal_backfill): SQLite's own checkpoint would run at the end of the COMMIT that filled the log,
with the writers' turn still held, and keep every other writer of the file waiting for its copy and fsyncs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from test_ledger_tree import draft
from test_writer_lock import free

from coalition.ledger import SqliteLedger
from coalition.ledger.wal_backfill import PAGES

pytestmark = pytest.mark.unit


def test_the_log_is_copied_with_the_turn_handed_on(tmp_path: Path) -> None:
    """Every checkpoint of the writer's connection runs while another writer could take the turn, and the log is
    still copied as often as SQLite's own threshold says: it never holds much more than PAGES pages."""
    path = tmp_path / "ledger.db"
    checkpoints: list[bool] = []
    with SqliteLedger(path) as ledger:
        conn = ledger._conn
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (0,)  # no checkpoint inside a COMMIT
        conn.set_trace_callback(lambda sql: checkpoints.append(free(path)) if "wal_checkpoint" in sql else None)
        for first in range(0, 3000, 20):
            ledger.append([draft(n) for n in range(first, first + 20)])
        conn.set_trace_callback(None)
        assert checkpoints, "the log was never copied into the database file"
        assert all(checkpoints), "a checkpoint ran while this writer held the turn"
        assert (tmp_path / "ledger.db-wal").stat().st_size < (PAGES + 200) * 4120
        assert ledger.verify().ok
    with sqlite3.connect(path) as other:
        assert other.execute("SELECT count(*) FROM entries").fetchone() == (3000,)
