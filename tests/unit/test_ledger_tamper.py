"""The tamper matrix: with the append-only triggers dropped, every edit by raw SQL is found at the right seq."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from coalition.bus.canonical import canonical_json
from coalition.ledger import EntryDraft, MalformedEntry, SqliteLedger, entry_hash

pytestmark = pytest.mark.unit

N = 10
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def draft(n: int) -> EntryDraft:
    return EntryDraft(
        run_id="run-t",
        sim_time=T0 + timedelta(days=n),
        actor="governance",
        actor_kind="governance",
        kind="verdict",
        subject=f"p-{n}",
        outcome="deny",
        payload={"agent": "finance", "amount_usd": f"{n}000.00", "note": "payload-text"},
        rationale=f"rationale text of entry {n}",
        message_id=f"m-{n}",
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    """A ledger of N entries whose append-only triggers have been dropped by an attacker."""
    file = tmp_path / "ledger.db"
    with SqliteLedger(file, synchronous="NORMAL") as ledger:
        ledger.append([draft(n) for n in range(1, N + 1)])
        assert ledger.verify().ok
    with sqlite3.connect(file) as conn:
        for trigger in ("entries_no_update", "entries_no_delete"):
            conn.execute(f"DROP TRIGGER {trigger}")
    return file


@pytest.fixture
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, isolation_level=None)
    yield conn
    conn.close()


def verify(path: Path) -> tuple[bool, int | None, str]:
    with SqliteLedger(path, create=False) as ledger:
        result = ledger.verify()
    return result.ok, result.first_bad_seq, result.reason or ""


def row(conn: sqlite3.Connection, seq: int) -> tuple[str, str]:
    found = conn.execute("SELECT hash, body FROM entries WHERE seq = ?", (seq,)).fetchone()
    return str(found[0]), str(found[1])


def forged_body(conn: sqlite3.Connection, seq: int, prev_hash: str, subject: str) -> str:
    """The JSON of a plausible entry at `seq` after `prev_hash` (what an attacker would insert)."""
    fields = orjson.loads(row(conn, 1)[1])
    fields.update(seq=seq, prev_hash=prev_hash, subject=subject, rationale="an entry that never happened")
    return canonical_json(fields).decode()


class TestTamperMatrix:
    """Each kind of tampering is detected, and the first bad seq is the one that was touched."""

    def test_byte_flipped_in_rationale(self, path: Path, raw: sqlite3.Connection) -> None:
        """One character of seq 4's rationale changed: bad at 4 (content altered)."""
        raw.execute("UPDATE entries SET body = replace(body, 'of entry 4', 'of entry 5') WHERE seq = 4")
        assert verify(path) == (False, 4, "hash does not match the entry's content (altered)")

    def test_byte_flipped_in_payload(self, path: Path, raw: sqlite3.Connection) -> None:
        """One digit of seq 7's payload amount changed: bad at 7."""
        raw.execute("UPDATE entries SET body = replace(body, '7000.00', '9000.00') WHERE seq = 7")
        ok, seq, reason = verify(path)
        assert (ok, seq) == (False, 7)
        assert "altered" in reason

    def test_indexed_column_cannot_lie(self, path: Path, raw: sqlite3.Connection) -> None:
        """The filter columns are generated from the JSON: they cannot be set apart from it."""
        with pytest.raises(sqlite3.OperationalError, match="generated column"):
            raw.execute("UPDATE entries SET outcome = 'allow' WHERE seq = 3")
        assert verify(path)[0]

    def test_middle_row_deleted(self, path: Path, raw: sqlite3.Connection) -> None:
        """Seq 5 deleted: bad at 5 (missing)."""
        raw.execute("DELETE FROM entries WHERE seq = 5")
        ok, seq, reason = verify(path)
        assert (ok, seq) == (False, 5)
        assert "missing" in reason

    def test_two_rows_swapped(self, path: Path, raw: sqlite3.Connection) -> None:
        """The contents of seq 3 and 4 exchanged: bad at 3."""
        (h3, b3), (h4, b4) = row(raw, 3), row(raw, 4)
        raw.execute("UPDATE entries SET hash = ?, body = ? WHERE seq = 3", (h4, b4))
        raw.execute("UPDATE entries SET hash = ?, body = ? WHERE seq = 4", (h3, b3))
        assert verify(path)[:2] == (False, 3)

    def test_rows_renumbered(self, path: Path, raw: sqlite3.Connection) -> None:
        """Seq numbers of 6 and 7 exchanged (rows kept): bad at 6."""
        raw.execute("UPDATE entries SET seq = -6 WHERE seq = 6")
        raw.execute("UPDATE entries SET seq = 6 WHERE seq = 7")
        raw.execute("UPDATE entries SET seq = 7 WHERE seq = -6")
        assert verify(path)[:2] == (False, 6)

    def _make_room_after(self, raw: sqlite3.Connection, seq: int) -> None:
        raw.execute("UPDATE entries SET seq = -seq WHERE seq > ?", (seq,))
        raw.execute("UPDATE entries SET seq = 1 - seq WHERE seq < 0")

    def test_row_inserted_without_recomputed_hash(self, path: Path, raw: sqlite3.Connection) -> None:
        """A row slipped in as seq 6 with a stale hash: bad at 6."""
        self._make_room_after(raw, 5)
        prev = row(raw, 5)[0]
        raw.execute(
            "INSERT INTO entries (seq, hash, body) VALUES (6, ?, ?)", (row(raw, 2)[0], forged_body(raw, 6, prev, "x"))
        )
        ok, seq, reason = verify(path)
        assert (ok, seq) == (False, 6)
        assert "altered" in reason

    def test_row_inserted_with_recomputed_hash(self, path: Path, raw: sqlite3.Connection) -> None:
        """A well-formed row chained onto seq 5 passes itself; the chain breaks at its successor, seq 7."""
        self._make_room_after(raw, 5)
        prev = row(raw, 5)[0]
        body = forged_body(raw, 6, prev, "x")
        forged_hash = entry_hash(prev, orjson.loads(body))
        raw.execute("INSERT INTO entries (seq, hash, body) VALUES (6, ?, ?)", (forged_hash, body))
        ok, seq, reason = verify(path)
        assert (ok, seq) == (False, 7)
        assert "prev_hash does not link" in reason

    def test_row_appended_after_a_gap(self, path: Path, raw: sqlite3.Connection) -> None:
        """A row stored at seq N+5: bad at N+1 (missing)."""
        prev = row(raw, N)[0]
        body = forged_body(raw, N + 5, prev, "x")
        raw.execute(
            "INSERT INTO entries (seq, hash, body) VALUES (?, ?, ?)",
            (N + 5, entry_hash(prev, orjson.loads(body)), body),
        )
        assert verify(path)[:2] == (False, N + 1)

    def test_table_definition_altered(self, path: Path, raw: sqlite3.Connection) -> None:
        """Rebuilding the table with plain (writable) filter columns is reported before any row."""
        raw.execute("CREATE TABLE copy AS SELECT * FROM entries")
        raw.execute("DROP TABLE entries")
        raw.execute("ALTER TABLE copy RENAME TO entries")
        ok, seq, reason = verify(path)
        assert (ok, seq) == (False, 1)
        assert "definition was altered" in reason

    def test_untouched_ledger_still_verifies(self, path: Path) -> None:
        """Dropping the triggers alone changes no entry: the chain verifies."""
        assert verify(path)[0]


class TestReadingAnAlteredRow:
    """An altered row that no longer parses is reported as such — one line in the CLI, never a traceback."""

    def test_reading_it_raises_malformed_entry_naming_the_row(self, path: Path, raw: sqlite3.Connection) -> None:
        _, body = row(raw, 4)
        raw.execute("UPDATE entries SET body = ? WHERE seq = 4", (body.replace('"kind":"', '"kind":"bogus-', 1),))
        with SqliteLedger(path, create=False) as ledger:
            with pytest.raises(MalformedEntry, match="ledger entry 4 is malformed"):
                ledger.get(4)
            assert ledger.get(3) is not None

    def test_the_cli_says_so_in_one_line(self, path: Path, raw: sqlite3.Connection) -> None:
        from typer.testing import CliRunner

        from coalition.cli import app

        _, body = row(raw, 4)
        raw.execute("UPDATE entries SET body = ? WHERE seq = 4", (body.replace('"kind":"', '"kind":"bogus-', 1),))
        result = CliRunner().invoke(app, ["ledger", "show", "4", "--ledger", str(path)])
        assert result.exit_code == 2
        assert "ledger entry 4 is malformed" in result.output
        assert "Traceback" not in result.output
