"""The tamper matrix: with the append-only triggers dropped, every edit by raw SQL is found at the right seq."""

from __future__ import annotations

import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from ledger_attacks import attacker, rewrite_chain

from coalition.bus.canonical import canonical_json
from coalition.bus.clock import WallClock
from coalition.ledger import EntryDraft, LedgerQuery, MalformedEntry, SqliteLedger, entry_hash
from coalition.ledger.checkpoint import Checkpoint
from coalition.ledger.integrity import IntegrityReport, check_ledger
from coalition.ledger.notary import Notary, origin_of
from coalition.ledger.signed_note import Signer, Verifier
from coalition.ledger.tree import StoredTree
from coalition.ledger.witness import SeenCheckpoint, WitnessDir

pytestmark = pytest.mark.unit

N = 10
T0 = datetime(2025, 3, 1, tzinfo=UTC)


def _draft(n: int) -> EntryDraft:
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


def draft(n: int, tag: str = "") -> EntryDraft:
    """Entry n; with a tag, the same entry retold (another history)."""
    base = _draft(n)
    return base if not tag else base.model_copy(update={"rationale": f"{base.rationale} ({tag})"})


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

    @pytest.mark.parametrize(
        ("edit", "found"),
        [
            ("DELETE FROM entries WHERE seq = 5", (False, 5, "seq 5 is missing (the next stored seq is 6)")),
            (
                "UPDATE entries SET body = replace(body, 'of entry 4', 'of entry 5') WHERE seq = 4",
                (False, 4, "hash does not match the entry's content (altered)"),
            ),
        ],
    )
    def test_an_entry_edited_under_a_writer_that_keeps_its_open_block(
        self, path: Path, raw: sqlite3.Connection, edit: str, found: tuple[bool, int, str]
    ) -> None:
        """A writer does not read again the entries of the tree's last, incomplete block that it appended (it keeps
        their leaf hashes): one deleted or changed there before its next append is still found at its seq."""
        with SqliteLedger(path, synchronous="NORMAL") as writer:
            writer.append([draft(n) for n in range(N + 1, N + 11)])  # seq 1 … 20: one open block
            raw.execute(edit)
            writer.append([draft(n) for n in range(N + 11, N + 71)])  # completes the block from the kept hashes
        assert verify(path) == found


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


# -- what a hash chain alone cannot see: signed checkpoints over the Merkle tree, kept outside the ledger ----------

K = 600  # entries of the proven ledger: nine stored 64-leaf blocks and a partial one
CHECKPOINTS_AT = (100, 300, K)


@dataclass
class Proven:
    """A ledger whose notary signed checkpoints at CHECKPOINTS_AT into a witness directory and the CLI's memory."""

    path: Path
    witness: WitnessDir
    state: Path
    key: Ed25519PrivateKey

    def memory(self) -> SeenCheckpoint:
        return SeenCheckpoint(self.state, "cli", str(self.path.resolve()))

    def notary(self, ledger: SqliteLedger, witness: WitnessDir | None = None, *, remember: bool = True) -> Notary:
        def signer() -> Signer:
            return Signer(origin_of(ledger), self.key)

        seen = [self.memory()] if remember else []
        notary = Notary(ledger, signer, witness or self.witness, WallClock(), seen=seen)
        ledger.add_commit_listener(notary.after_commit)
        return notary

    def grow(
        self, path: Path, upto: int, *, tag: str = "", witness: WitnessDir | None = None, remember: bool = True
    ) -> None:
        """Append entries up to `upto` (tagged, to make a different history) with a checkpoint at the end."""
        with SqliteLedger(path, synchronous="NORMAL") as ledger:
            notary = self.notary(ledger, witness, remember=remember)
            size = ledger.head()[0]
            ledger.append([draft(n, tag) for n in range(size + 1, upto + 1)])
            notary.checkpoint()

    def check(
        self, *, witness: WitnessDir | None = None, memory: bool = True, path: Path | None = None
    ) -> IntegrityReport:
        with SqliteLedger(path or self.path, create=False) as ledger:
            public = self.key.public_key()
            return check_ledger(
                ledger,
                verifiers=[Verifier.of(origin_of(ledger), public)],
                witness=witness or self.witness,
                seen=self.memory().load() if memory else None,
                seen_name="the cli",
            )


@pytest.fixture
def proven(tmp_path: Path) -> Proven:
    setup = Proven(
        tmp_path / "ledger.db", WitnessDir(tmp_path / "witness"), tmp_path / "state", Ed25519PrivateKey.generate()
    )
    for size in CHECKPOINTS_AT:
        setup.grow(setup.path, size)
    report = setup.check()
    assert report.ok, report.line()
    assert report.newest is not None
    assert report.newest.size == K
    return setup


def _rewrite(path: Path, start: int, change: str | None) -> None:
    """Rewrite every entry from `start` with recomputed hashes, as a thorough attacker would: the rationale of
    `start` changed (None: nothing changed), the full-text index and the tree nodes rebuilt, the ledger's own
    checkpoints (which the attacker cannot re-sign) deleted."""

    def new_rationale(fields: dict[str, Any]) -> None:
        fields["rationale"] = change

    rewrite_chain(path, start, None if change is None else new_rationale)


class TestProvenTamperMatrix:
    """Each attack a chain alone misses is named in one line; each has a negative control that passes."""

    def test_tail_truncated(self, proven: Proven) -> None:
        conn = attacker(proven.path)
        conn.execute("DELETE FROM entries WHERE seq > 550")
        conn.close()
        report = proven.check()
        assert not report.ok
        assert report.reason is not None
        assert report.reason.startswith("truncated after seq 550:"), report.reason

    def test_tail_truncated_with_its_traces_removed_is_a_rollback(self, proven: Proven) -> None:
        """The attacker also deletes the tree nodes and checkpoints past the cut: the witness still knows."""
        conn = attacker(proven.path)
        conn.execute("DELETE FROM entries WHERE seq > 200")
        conn.execute("DELETE FROM tree_nodes")
        conn.execute("DELETE FROM checkpoints WHERE size > 200")
        conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('delete-all')")
        conn.close()
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith("rolled back to seq 200: the witness directory"), report.reason

    def test_negative_control_a_shorter_ledger_that_never_was_longer(self, tmp_path: Path) -> None:
        setup = Proven(tmp_path / "l.db", WitnessDir(tmp_path / "w"), tmp_path / "s", Ed25519PrivateKey.generate())
        setup.grow(setup.path, 550)
        assert setup.check().ok

    def test_rolled_back_to_an_older_copy(self, proven: Proven, tmp_path: Path) -> None:
        backup = tmp_path / "backup.db"
        shutil.copy(proven.path, backup)
        proven.grow(proven.path, K + 150)
        shutil.copy(backup, proven.path)
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith(f"rolled back to seq {K}: the "), report.reason

    def test_negative_control_the_copy_is_current(self, proven: Proven, tmp_path: Path) -> None:
        backup = tmp_path / "backup.db"
        shutil.copy(proven.path, backup)
        shutil.copy(backup, proven.path)
        assert proven.check().ok

    def test_full_rewrite_with_recomputed_hashes(self, proven: Proven) -> None:
        """Entry 250 retold and everything after re-hashed, tree and index rebuilt: the chain alone says OK."""
        _rewrite(proven.path, 250, "a rationale that was never given")
        with SqliteLedger(proven.path, create=False) as ledger:
            assert ledger.verify().ok  # what the hash chain alone says
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith("rewritten from seq 101 at the latest: the tree of its first 300"), (
            report.reason
        )
        assert report.first_bad_seq == 101

    def test_negative_control_a_rewrite_that_changes_nothing(self, proven: Proven) -> None:
        _rewrite(proven.path, 250, None)
        assert proven.check().ok

    def test_fork_two_ledgers_sharing_a_prefix(self, proven: Proven, tmp_path: Path) -> None:
        """A copy taken at 600 grows differently, signed with the same key into another witness: both look valid
        alone; against the first one's witness the second is a fork after 600."""
        fork = tmp_path / "fork.db"
        shutil.copy(proven.path, fork)
        proven.grow(proven.path, K + 100)
        other_witness = WitnessDir(tmp_path / "other-witness")
        proven.grow(fork, K + 120, tag="retold", witness=other_witness, remember=False)
        assert proven.check(path=fork, witness=other_witness, memory=False).ok  # negative control: alone, valid
        report = proven.check(path=fork, memory=False)
        assert report.reason is not None
        assert report.reason.startswith(f"forked after seq {K}: "), report.reason

    def test_checkpoint_signed_by_another_key(self, proven: Proven) -> None:
        with SqliteLedger(proven.path, create=False) as ledger:
            origin = origin_of(ledger)
            root = StoredTree(ledger, K).root()
        forged = Checkpoint(origin, K, root).sign(Signer(origin, Ed25519PrivateKey.generate()))
        conn = sqlite3.connect(proven.path)
        with conn:
            conn.execute("INSERT INTO checkpoints (size, note) VALUES (?, ?)", (K, forged))
        conn.close()
        report = proven.check()
        assert report.reason is not None
        assert "signed by an unknown key" in report.reason
        assert report.reason.startswith(f"the checkpoint of size {K} in the ledger: "), report.reason

    def test_negative_control_a_second_checkpoint_by_the_right_key(self, proven: Proven) -> None:
        with SqliteLedger(proven.path, create=False) as ledger:
            origin = origin_of(ledger)
            note = Checkpoint(origin, 450, StoredTree(ledger, K).root(450)).sign(Signer(origin, proven.key))
        proven.witness.add(origin, 450, b"\0" * 32, note)
        assert proven.check().ok

    def test_witness_store_rolled_back(self, proven: Proven) -> None:
        with SqliteLedger(proven.path, create=False) as ledger:
            folder = proven.witness.path / origin_of(ledger).replace("/", "_")
        newest = sorted(folder.iterdir())[-1]
        newest.unlink()
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith("the witness store was rolled back: its newest checkpoint covers 300"), (
            report.reason
        )

    def test_negative_control_a_witness_that_kept_everything(self, proven: Proven) -> None:
        assert proven.check().ok
        assert len(proven.witness.notes(f"coalition.ledger/{_ledger_id(proven.path)}")) == len(CHECKPOINTS_AT)

    def test_a_ledger_replaced_at_its_path(self, proven: Proven, tmp_path: Path) -> None:
        other = Proven(tmp_path / "o.db", proven.witness, tmp_path / "o-state", proven.key)
        other.grow(other.path, K)
        shutil.copy(other.path, proven.path)
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith("replaced: the cli last saw the ledger at this path as"), report.reason

    def test_a_stored_tree_node_edited(self, proven: Proven) -> None:
        conn = attacker(proven.path)
        conn.execute("UPDATE tree_nodes SET hash = zeroblob(32) WHERE level = 8 AND idx = 1")
        conn.close()
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith("the stored Merkle tree node over seq 257..512"), report.reason


class TestDerivedData:
    """The filter columns and the full-text index are recomputed from the stored JSON by verify."""

    def test_generated_filter_column_edited(self, proven: Proven) -> None:
        """The column made writable behind SQLite's back, edited, and the definition put back."""
        conn = attacker(proven.path)
        (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'entries'").fetchone()
        plain = re.sub(r"GENERATED ALWAYS AS \((?:[^()]|\((?:[^()]|\([^()]*\))*\))*\) STORED", "", sql)
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'entries'", (plain,))
        conn.close()
        conn = sqlite3.connect(proven.path, isolation_level=None)
        conn.execute("UPDATE entries SET kind = 'system' WHERE seq = 42")
        conn.execute("PRAGMA writable_schema = ON")
        conn.execute("UPDATE sqlite_master SET sql = ? WHERE name = 'entries'", (sql,))
        conn.close()
        with SqliteLedger(proven.path, create=False) as ledger:
            assert ledger.count(LedgerQuery(kind="verdict")) == K - 1  # hidden from `ledger list --kind verdict`
            assert ledger.verify().ok  # the chain alone does not see it
        report = proven.check()
        assert report.reason == "derived data: column kind of seq 42 does not match the entry's JSON"

    def test_full_text_row_deleted(self, proven: Proven) -> None:
        with SqliteLedger(proven.path, create=False) as ledger:
            entry = ledger.get(77)
            assert entry is not None
            assert ledger.count(LedgerQuery(search="entry 77")) == 1
        conn = attacker(proven.path)
        conn.execute(
            "INSERT INTO entries_fts (entries_fts, rowid, rationale, subject) VALUES ('delete', 77, ?, ?)",
            (entry.rationale, entry.subject),
        )
        conn.close()
        with SqliteLedger(proven.path, create=False) as ledger:
            assert ledger.count(LedgerQuery(search="entry 77")) == 0  # hidden from `ledger list --search`
        report = proven.check()
        assert report.reason == "derived data: the full-text index does not match the entries at seq 77"

    def test_full_text_row_replaced_by_other_words(self, proven: Proven) -> None:
        conn = attacker(proven.path)
        entry = orjson.loads(conn.execute("SELECT body FROM entries WHERE seq = 78").fetchone()[0])
        conn.execute(
            "INSERT INTO entries_fts (entries_fts, rowid, rationale, subject) VALUES ('delete', 78, ?, ?)",
            (entry["rationale"], entry["subject"]),
        )
        conn.execute(
            "INSERT INTO entries_fts (rowid, rationale, subject) VALUES (78, ?, ?)",
            (entry["rationale"].replace("rationale", "innocent"), entry["subject"]),
        )
        conn.close()
        report = proven.check()
        assert report.reason is not None
        assert report.reason.startswith("derived data: the full-text index does not match the entries"), report.reason

    def test_negative_control_untouched_derived_data(self, proven: Proven) -> None:
        report = proven.check()
        assert report.derived_checked
        assert "filter columns and full-text index match the entries" in report.line()


def _ledger_id(path: Path) -> str:
    with SqliteLedger(path, create=False) as ledger:
        return ledger.ledger_id
