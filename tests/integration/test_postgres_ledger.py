"""The PostgreSQL ledger attacked from the side: 8 concurrent writer processes, the REPEATABLE READ negative
control, the roles, a writer killed mid-append, tampering by a superuser, and a full run driven through the CLI
and the console (same digest as SQLite)."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import PostgresServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from coalition.bus.canonical import canonical_json
from coalition.bus.clock import WallClock
from coalition.cli import app
from coalition.ledger import AppendOnlyViolation, EntryDraft, LedgerUnavailable
from coalition.ledger.integrity import check_ledger
from coalition.ledger.notary import Notary, origin_of
from coalition.ledger.postgres import Isolation, PostgresLedger, split_ledger_url
from coalition.ledger.proofs import Attestation
from coalition.ledger.run_chains import head_row_hash
from coalition.ledger.signed_note import Signer, Verifier
from coalition.ledger.witness import WitnessDir
from coalition.scenarios.audit import write_audit

pytestmark = pytest.mark.integration

T0 = datetime(2025, 3, 1, tzinfo=UTC)
WRITERS = 8
DROP_BACKSTOP = (
    "ALTER TABLE entries DROP CONSTRAINT entries_pkey, DROP CONSTRAINT entries_run_chain_seq_unique,"
    " DROP CONSTRAINT entries_run_prev_hash_unique",
    "ALTER TABLE run_heads DROP CONSTRAINT run_heads_pkey, DROP CONSTRAINT run_heads_prev_hash_unique,"
    " DROP CONSTRAINT run_heads_entry_seq_unique",
)
Runs = str  # "one": every writer appends to run-0; "own": writer w to run-w; "mixed": writer w to run-(w % 3)


def draft(worker: int, n: int, **overrides: Any) -> EntryDraft:
    fields: dict[str, Any] = {
        "run_id": f"run-{worker % 3}",
        "sim_time": T0 + timedelta(minutes=n),
        "actor": "agent:ops",
        "actor_kind": "agent",
        "kind": "proposal",
        "subject": f"w{worker}-{n}",
        "payload": {"worker": worker, "n": n},
        "rationale": f"writer {worker} entry {n}",
    }
    fields.update(overrides)
    return EntryDraft(**fields)


def _run_of(worker: int, runs: Runs) -> str:
    return {"one": "run-0", "own": f"run-{worker}"}.get(runs, f"run-{worker % 3}")


def _writer(url: str, worker: int, appends: int, isolation: Isolation, start: Any, refused: Any, runs: Runs) -> None:
    """Append `appends` transactions of two entries (every third one through append_batch_once)."""
    ledger = PostgresLedger(url, isolation=isolation, pool_size=1)
    run_id = _run_of(worker, runs)
    start.wait(timeout=60)
    try:
        for n in range(appends):
            pair = [draft(worker, 2 * n, run_id=run_id), draft(worker, 2 * n + 1, run_id=run_id)]
            try:
                if n % 3 == 0:
                    ledger.append_batch_once("recorder", [(f"w{worker}-m{n}", pair)])
                else:
                    ledger.append(pair)
            except AppendOnlyViolation:
                with refused.get_lock():
                    refused.value += 1
    finally:
        ledger.close()


def _run_writers(url: str, isolation: Isolation, appends: int, runs: Runs = "mixed") -> int:
    """WRITERS processes released together; returns how many of their appends the database refused."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    refused = context.Value("i", 0)
    workers = [
        context.Process(target=_writer, args=(url, w, appends, isolation, start, refused, runs)) for w in range(WRITERS)
    ]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # every writer connected and waiting
    start.set()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    return int(refused.value)


def _admin(server: PostgresServer, url: str, *statements: str) -> list[Any]:
    """Run statements as the administrator (a superuser) inside the ledger's schema; the last one's rows."""
    schema = split_ledger_url(url)[1]
    rows: list[Any] = []
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for statement in statements:
            cur = conn.execute(statement)
            rows = cur.fetchall() if cur.description else []
    return rows


def _chains_from_the_rows(server: PostgresServer, url: str) -> dict[str, list[tuple[int, int]]]:
    """Each run's (chain_seq, seq) as the rows hold them, read by the administrator, for a check of our own."""
    chains: dict[str, list[tuple[int, int]]] = {}
    for run_id, chain_seq, seq in _admin(server, url, "SELECT run_id, chain_seq, seq FROM entries ORDER BY seq"):
        chains.setdefault(run_id, []).append((chain_seq, seq))
    return chains


class TestEightWriters:
    """8 processes appending at once, to one run's chain or to 8 runs' chains: the advisory lock in READ COMMITTED,
    and the backstop."""

    @pytest.mark.parametrize("runs", ["one", "own"])
    def test_read_committed_no_fork_no_gap(self, postgres: PostgresServer, runs: Runs) -> None:
        """8 × 40 transactions of 2 entries: 640 entries, seq 1..640, each subject once; each run's chain_seq is
        1..n in seq order and links to the entry before it in the run; every chain and the heads chain verify."""
        url = postgres.new_ledger_url()
        assert _run_writers(url, "read committed", 40, runs) == 0
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
            assert result.ok, result.reason
            assert result.entries == WRITERS * 40 * 2
            subjects = [e.subject for e in ledger.iter_entries()]
            assert sorted(subjects) == sorted(f"w{w}-{n}" for w in range(WRITERS) for n in range(80))
            assert ledger.count() == len(set(subjects))
            chains = ledger.run_chains()
            assert chains.ok, chains.problem
            assert chains.runs == (1 if runs == "one" else WRITERS)
            assert chains.heads == WRITERS * 40  # one head row per transaction (each touches one run)
            by_run: dict[str, list[Any]] = {}
            for entry in ledger.iter_entries():
                by_run.setdefault(entry.run_id, []).append(entry)
        for run_id, numbered in _chains_from_the_rows(postgres, url).items():
            assert [n for n, _ in numbered] == list(range(1, len(numbered) + 1)), run_id
            entries = by_run[run_id]
            assert [e.prev_hash for e in entries] == ["0" * 64] + [e.hash for e in entries[:-1]], run_id

    def test_read_committed_needs_no_backstop(self, postgres: PostgresServer) -> None:
        """With the UNIQUE constraints dropped, READ COMMITTED under the lock still gives clean chains."""
        url = postgres.new_ledger_url()
        _admin(postgres, url, *DROP_BACKSTOP)
        assert _run_writers(url, "read committed", 25) == 0
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
            assert result.ok, result.reason
            assert result.entries == WRITERS * 25 * 2

    @pytest.mark.parametrize("runs", ["one", "own"])
    def test_repeatable_read_is_stopped_by_the_backstop(self, postgres: PostgresServer, runs: Runs) -> None:
        """Negative control: under REPEATABLE READ a waiter reads its snapshot's old heads; UNIQUE refuses the fork
        (of its run's chain, the ledger seq or the heads chain)."""
        url = postgres.new_ledger_url()
        refused = _run_writers(url, "repeatable read", 25, runs)
        assert refused > 0  # these appends would have forked the chain
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
            assert result.ok, result.reason
            assert result.entries == (WRITERS * 25 - refused) * 2

    def test_repeatable_read_without_the_backstop_forks(self, postgres: PostgresServer) -> None:
        """Negative control: REPEATABLE READ without the UNIQUE constraints forks one run's chain, and verify sees
        it."""
        url = postgres.new_ledger_url()
        _admin(postgres, url, *DROP_BACKSTOP)
        assert _run_writers(url, "repeatable read", 25, "one") == 0  # nothing refused: nothing stops the fork
        forks = _admin(postgres, url, "SELECT seq FROM entries GROUP BY seq HAVING count(*) > 1")
        assert forks, "no two entries share a seq: the negative control did not fork"
        run_forks = _admin(
            postgres, url, "SELECT prev_hash FROM entries GROUP BY run_id, prev_hash HAVING count(*) > 1"
        )
        assert run_forks, "no two entries of the run share a prev_hash: the run chain did not fork"
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
        assert not result.ok
        assert result.first_bad_seq is not None
        assert result.first_bad_seq <= min(row[0] for row in forks) + 1


class TestMerkleTreeOnPostgres:
    """What the hash chain alone cannot see on PostgreSQL, the tree and the signed checkpoints do."""

    @pytest.mark.parametrize(
        ("cleanup", "verdict"),
        [
            ((), "truncated after seq 100: the ledger's Merkle tree records 128 entries"),
            (
                ("DELETE FROM tree_nodes", "DELETE FROM checkpoints"),
                "rolled back to seq 100: the witness directory",
            ),
        ],
        ids=["tail-cut", "tail-cut-and-tree-and-checkpoints-wiped"],
    )
    def test_a_superuser_cutting_the_tail_is_found(
        self, postgres: PostgresServer, tmp_path: Path, cleanup: tuple[str, ...], verdict: str
    ) -> None:
        """A superuser disables the guards and deletes the last 31 entries, two whole transactions, with their head
        rows (and, the second time, every stored node and kept checkpoint): the run chains and the heads chain still
        verify (negative control), the full check names the cut."""
        url = postgres.new_ledger_url()
        key = Ed25519PrivateKey.generate()
        witness = WitnessDir(tmp_path / "witness")
        with PostgresLedger(url) as ledger:
            origin = origin_of(ledger)
            ledger.add_commit_listener(Notary(ledger, lambda: Signer(origin, key), witness, WallClock()).after_commit)
            ledger.append([draft(1, n) for n in range(100)])
            ledger.append([draft(1, n) for n in range(100, 130)])
            ledger.append([draft(1, 130, kind="run", message_type="run.finished")])  # a run's end signs one
        tables = ("entries", "run_heads", "tree_nodes", "checkpoints")
        off, on = ([f"ALTER TABLE {t} {state} TRIGGER USER" for t in tables] for state in ("DISABLE", "ENABLE"))
        cut = ("DELETE FROM entries WHERE seq > 100", "DELETE FROM run_heads WHERE entry_seq > 100")
        _admin(postgres, url, *off, *cut, *cleanup, *on)  # and covers its tracks
        verifiers = [Verifier.of(origin, key.public_key())]
        with PostgresLedger(url) as ledger:
            assert ledger.verify().ok  # the chain alone: a shorter chain is still a chain
            report = check_ledger(ledger, verifiers=verifiers, witness=witness, derived=False)
        assert not report.ok
        assert verdict in (report.reason or ""), report.line()

    def test_an_edited_stored_node_is_named(self, postgres: PostgresServer, tmp_path: Path) -> None:
        """A superuser overwrites a stored tree node: the full check names the entries it covers."""
        url = postgres.new_ledger_url()
        with PostgresLedger(url) as ledger:
            ledger.append([draft(1, n) for n in range(130)])
        _admin(
            postgres,
            url,
            "ALTER TABLE tree_nodes DISABLE TRIGGER tree_nodes_no_update",
            "UPDATE tree_nodes SET hash = sha256('forged') WHERE level = 6 AND idx = 1",
            "ALTER TABLE tree_nodes ENABLE TRIGGER tree_nodes_no_update",
        )
        with PostgresLedger(url) as ledger:
            report = check_ledger(ledger, verifiers=[], derived=False)
        assert not report.ok
        assert "the stored Merkle tree node over seq 65..128 does not match the entries" in (report.reason or "")


def _two_runs(url: str) -> None:
    """run-a and run-b appended in turns, one transaction each (seq 1 a, 2 b, 3 a, … 12 b), then run-a's entries 7
    and 8 in one transaction (seq 13, 14)."""
    with PostgresLedger(url) as ledger:
        for n in range(6):
            ledger.append([draft(1, n, run_id="run-a")])
            ledger.append([draft(2, n, run_id="run-b")])
        ledger.append([draft(1, 6, run_id="run-a"), draft(1, 7, run_id="run-a")])


_ALL_GUARDS_OFF, _ALL_GUARDS_ON = (
    tuple(f"ALTER TABLE {t} {state} TRIGGER USER" for t in ("entries", "run_heads")) for state in ("DISABLE", "ENABLE")
)
_SPLICE = (
    # run-b's entry at seq 6, renumbered to seq 5 and rehashed, replaces run-a's entry there
    "UPDATE entries e SET body = x.body, hash = encode(sha256(convert_to(x.prev || x.body, 'UTF8')), 'hex')"
    " FROM (SELECT replace(body, '\"seq\":6,', '\"seq\":5,') AS body, prev_hash AS prev FROM entries WHERE seq = 6) x"
    " WHERE e.seq = 5"
)

_HEAD_BACK = (
    # the last head row (run-a's entry 8, seq 14) re-pointed, rehashed, at run-a's entry 6 (seq 11), named before
    "UPDATE run_heads h SET entry_seq = 11, chain_seq = 6, head_hash = e.hash, hash = encode(sha256(convert_to("
    ' h.prev_hash || format(\'{"chain_seq":6,"entry_seq":11,"head_hash":"%s","run_id":"run-a","seq":13}\','
    " e.hash), 'UTF8')), 'hex') FROM entries e WHERE e.seq = 11 AND h.seq = 13"
)


def _relink(server: PostgresServer, url: str, run_id: str, from_seq: int, *, heads: bool) -> None:
    """A superuser edits the rationale of `run_id`'s entry at `from_seq` and re-links the run's chain after it
    consistently: every later entry of the run gets the new prev_hash and its hash is recomputed; with `heads`, the
    heads chain is recomputed too (each head row naming a rewritten entry, and every row's link after the first)."""
    schema = split_ledger_url(url)[1]
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{schema}"')
        for statement in _ALL_GUARDS_OFF:
            conn.execute(statement)
        rows = conn.execute("SELECT seq, body FROM entries WHERE run_id = %s ORDER BY seq", (run_id,)).fetchall()
        prev: str | None = None
        new_hash: dict[int, str] = {}
        for seq, body in rows:
            assert canonical_json(json.loads(body)).decode() == body  # the stored bytes are canonical JSON
            fields = json.loads(body)
            if seq < from_seq:
                continue
            if seq == from_seq:
                fields["rationale"] += " (as it should have read)"
            else:
                fields["prev_hash"] = prev
            text = canonical_json(fields).decode()
            prev = hashlib.sha256(fields["prev_hash"].encode() + text.encode()).hexdigest()
            new_hash[seq] = prev
            conn.execute("UPDATE entries SET body = %s, hash = %s WHERE seq = %s", (text, prev, seq))
        if heads:
            link = "0" * 64
            for seq, run, chain_seq, stored_head, entry_seq in conn.execute(
                "SELECT seq, run_id, chain_seq, head_hash, entry_seq FROM run_heads ORDER BY seq"
            ).fetchall():
                head_hash = new_hash.get(entry_seq, stored_head)
                row_hash = head_row_hash(
                    link, seq=seq, run_id=run, chain_seq=chain_seq, head_hash=head_hash, entry_seq=entry_seq
                )
                conn.execute(
                    "UPDATE run_heads SET head_hash = %s, prev_hash = %s, hash = %s WHERE seq = %s",
                    (head_hash, link, row_hash, seq),
                )
                link = row_hash
        for statement in _ALL_GUARDS_ON:
            conn.execute(statement)


class TestRunChains:
    """One chain per run and the heads chain, attacked by a superuser who bypasses the triggers: each change is
    named at its seq; what re-links everything consistently, the Merkle tree finds."""

    @pytest.mark.parametrize(
        ("statements", "bad_seq", "reason"),
        [
            (("UPDATE entries SET body = replace(body, 'entry 2', 'entry 22') WHERE seq = 5",), 5, "altered"),
            (("DELETE FROM entries WHERE seq = 5",), 5, "seq 5 is missing"),
            (
                ("UPDATE entries SET chain_seq = 9 WHERE seq = 5",),
                5,
                "run run-a: seq 5 says it is the run's entry 9, not 3",
            ),
            (("DELETE FROM entries WHERE seq = 14",), 14, "head 13 names seq 14 of run run-a, which is not in"),
            (
                ("DELETE FROM entries WHERE seq = 14", "DELETE FROM run_heads WHERE entry_seq = 14"),
                13,
                "run run-a's last entry (seq 13, its entry 7) is not its head in the heads chain (which names its"
                " entry 6)",
            ),
            (
                (
                    "ALTER TABLE entries DROP CONSTRAINT entries_run_chain_seq_unique,"
                    " DROP CONSTRAINT entries_run_prev_hash_unique",
                    _SPLICE,
                ),
                6,
                "run run-b's chain is broken: the prev_hash of seq 6 is not the hash of seq 5",
            ),
            (
                ("UPDATE run_heads SET head_hash = (SELECT hash FROM entries WHERE seq = 3) WHERE entry_seq = 5",),
                5,
                "head 5's hash does not match its fields (altered)",
            ),
            (
                ("ALTER TABLE run_heads DROP CONSTRAINT run_heads_entry_seq_unique", _HEAD_BACK),
                11,
                "head 13 moves run run-a's head back",
            ),
        ],
        ids=[
            "edit",
            "delete-a-middle-entry",
            "renumber-in-the-run",
            "cut-a-run's-tail",
            "cut-the-tail-and-its-head",
            "splice",
            "edit-a-head",
            "head-moved-back",
        ],
    )
    def test_a_superuser_change_is_named_at_its_seq(
        self, postgres: PostgresServer, statements: tuple[str, ...], bad_seq: int, reason: str
    ) -> None:
        url = postgres.new_ledger_url()
        _two_runs(url)
        with PostgresLedger(url) as ledger:
            intact = check_ledger(ledger, verifiers=[], derived=False)
            assert intact.ok, intact.line()
            assert intact.chains is not None
            assert (intact.chains.runs, intact.chains.heads) == (2, 13)
        _admin(postgres, url, *_ALL_GUARDS_OFF, *statements, *_ALL_GUARDS_ON)  # and covers its tracks
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
            report = check_ledger(ledger, verifiers=[], derived=False)
        assert (result.ok, result.first_bad_seq) == (False, bad_seq), result
        assert reason in (result.reason or ""), result.reason
        assert (report.ok, report.first_bad_seq) == (False, bad_seq), report.line()
        assert reason in (report.reason or ""), report.line()

    def test_an_entry_moved_to_another_run_through_detached_columns_is_named(self, postgres: PostgresServer) -> None:
        """The run chains read run_id and prev_hash from columns PostgreSQL generates from the stored text. A superuser
        who makes them plain columns (DROP EXPRESSION) can move run-b's last entry (seq 6) into run-a's chain
        without touching a byte of any body, so the tree and the checkpoints see nothing: its run_id and prev_hash
        columns rewritten, its hash recomputed over them, its head row re-pointed and rehashed. Every column filter
        then lists it under run-a. verify and the full check name the detached columns (both said OK)."""
        url = postgres.new_ledger_url()
        with PostgresLedger(url) as ledger:
            for n in range(3):
                ledger.append([draft(1, n, run_id="run-a")])
                ledger.append([draft(2, n, run_id="run-b")])
        ((prev, body),) = _admin(
            postgres, url, "SELECT (SELECT hash FROM entries WHERE seq = 5), body FROM entries WHERE seq = 6"
        )
        ((head_seq, head_prev),) = _admin(postgres, url, "SELECT seq, prev_hash FROM run_heads WHERE entry_seq = 6")
        moved = hashlib.sha256(prev.encode() + body.encode()).hexdigest()
        head = head_row_hash(head_prev, seq=head_seq, run_id="run-a", chain_seq=4, head_hash=moved, entry_seq=6)
        _admin(
            postgres,
            url,
            *_ALL_GUARDS_OFF,
            "ALTER TABLE entries ALTER COLUMN run_id DROP EXPRESSION, ALTER COLUMN prev_hash DROP EXPRESSION",
            f"UPDATE entries SET run_id = 'run-a', prev_hash = '{prev}', chain_seq = 4, hash = '{moved}' WHERE seq = 6",
            f"UPDATE run_heads SET run_id = 'run-a', chain_seq = 4, head_hash = '{moved}', hash = '{head}'"
            f" WHERE seq = {head_seq}",
            *_ALL_GUARDS_ON,
        )
        with PostgresLedger(url) as ledger:
            assert [e.seq for e in ledger.iter_entries(run_id="run-a")] == [1, 3, 5, 6]  # what the forgery achieves
            assert ledger.run_chains().ok  # the chains alone agree with the forged columns (negative control)
            result = ledger.verify()
            report = check_ledger(ledger, verifiers=[], derived=True)
        reason = "columns no longer generated from the stored entry: prev_hash, run_id"
        assert not result.ok
        assert reason in (result.reason or ""), result.reason
        assert not report.ok
        assert reason in (report.reason or ""), report.line()

    def test_a_deleted_middle_entry_breaks_its_run_chain(self, postgres: PostgresServer) -> None:
        """The run chains alone (without the ledger seq's gap) see a run's entry removed: the run's next entry does
        not link to the one before it in the run."""
        url = postgres.new_ledger_url()
        _two_runs(url)
        _admin(postgres, url, *_ALL_GUARDS_OFF, "DELETE FROM entries WHERE seq = 5")
        with PostgresLedger(url) as ledger:
            chains = ledger.run_chains()
        assert (chains.ok, chains.first_bad_seq) == (False, 7)
        assert "run run-a's chain is broken: the prev_hash of seq 7 is not the hash of seq 3" in (chains.problem or "")

    def test_a_consistent_relink_is_found_by_the_tree(self, postgres: PostgresServer) -> None:
        """A run chain re-linked consistently from seq 5 (hashes recomputed): the heads chain names the first head it
        changed; with the heads chain recomputed too, the chains verify (negative control) and the stored Merkle
        tree node over seq 1..64 does not match."""

        def two_runs_of_130() -> str:
            url = postgres.new_ledger_url()
            with PostgresLedger(url) as ledger:
                for n in range(65):
                    ledger.append([draft(1, n, run_id="run-a"), draft(2, n, run_id="run-b")])
            return url

        url = two_runs_of_130()
        _relink(postgres, url, "run-a", 5, heads=False)
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
        assert (result.ok, result.first_bad_seq) == (False, 5), result
        assert "head 5 says seq 5 is run run-a's entry 3" in (result.reason or ""), result.reason

        url = two_runs_of_130()
        _relink(postgres, url, "run-a", 5, heads=True)
        with PostgresLedger(url) as ledger:
            assert ledger.verify().ok  # every run chain and the heads chain hold: the rewrite is consistent
            report = check_ledger(ledger, verifiers=[], derived=False)
        assert not report.ok
        assert "the stored Merkle tree node over seq 1..64 does not match the entries" in (report.reason or "")

    def test_an_audit_package_of_one_run_is_its_chain_from_genesis(
        self, postgres: PostgresServer, tmp_path: Path
    ) -> None:
        """A whole run's package from PostgreSQL: verify.py checks run-a's 8 entries as one chain from GENESIS,
        without run-b's. With the run's third entry taken out of ledger.jsonl and proofs.jsonl it refuses the package;
        without run-chain.json (negative control) the neighbouring-seq check alone cannot see the gap."""
        url = postgres.new_ledger_url()
        _two_runs(url)
        key = Ed25519PrivateKey.generate()
        with PostgresLedger(url) as ledger:
            origin = origin_of(ledger)
            signed = Notary(ledger, lambda: Signer(origin, key), WitnessDir(tmp_path / "w"), WallClock()).checkpoint()
            assert signed is not None
            write_audit(ledger, "run-a", tmp_path / "pkg", attestation=Attestation(ledger, signed))

        def offline(package: Path) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [
                    sys.executable,
                    "-I",
                    str(tmp_path / "pkg" / "verify.py"),
                    str(package),
                    "--state",
                    str(tmp_path / "s"),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )

        whole = offline(tmp_path / "pkg")
        assert whole.returncode == 0, whole.stdout + whole.stderr
        assert "run run-a's chain holds from GENESIS (8 entries, none missing up to seq" in whole.stdout
        assert "entries after that seq are not proven absent offline" in whole.stdout
        files = {p.name: p.read_bytes() for p in (tmp_path / "pkg").iterdir()}
        cut = tmp_path / "cut"
        cut.mkdir()
        for name, data in files.items():
            kept = data
            if name.endswith(".jsonl"):  # seq 5 is run-a's third entry
                kept = b"".join(line for line in data.splitlines(keepends=True) if b'"seq":5,' not in line)
            if name == "run-chain.json":
                kept = data.replace(b'"entries":8', b'"entries":7')
            (cut / name).write_bytes(kept)
        refused = offline(cut)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "entry seq 7 (the run's entry 3) does not link to the hash of the run's entry 2" in refused.stdout
        (cut / "run-chain.json").unlink()
        unseen = offline(cut)
        assert unseen.returncode == 0, unseen.stdout + unseen.stderr
        assert "chain holds from GENESIS" not in unseen.stdout

    def test_a_version_2_schema_is_refused_in_one_line(self, postgres: PostgresServer) -> None:
        """A ledger set up before one chain per run (schema version 2) is refused, naming its version; through the
        CLI too (one line, exit 2)."""
        url = postgres.new_ledger_url()
        _admin(
            postgres,
            url,
            "ALTER TABLE ledger_meta DISABLE TRIGGER USER",
            "UPDATE ledger_meta SET value = '2' WHERE key = 'schema_version'",
        )
        with pytest.raises(
            LedgerUnavailable, match=r"schema version '2', expected 3 \(set up before one chain per run"
        ):
            PostgresLedger(url)
        invoked = CliRunner().invoke(app, ["ledger", "verify"], env={"COALITION_LEDGER": url})
        assert invoked.exit_code == 2
        lines = invoked.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "schema version '2', expected 3" in lines[0]


def _endless_writer(url: str) -> None:
    ledger = PostgresLedger(url, pool_size=1)
    n = 0
    while True:
        ledger.append([draft(9, n + i) for i in range(200)])
        n += 200


class TestRolesAndTampering:
    """The app role owns nothing; the triggers hold for the owner; what a superuser changes, verify finds."""

    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE {s}.entries SET hash = 'x'",
            "DELETE FROM {s}.entries",
            "TRUNCATE {s}.entries",
            "DELETE FROM {s}.dedupe",
            "DROP TABLE {s}.entries",
            "ALTER TABLE {s}.entries DISABLE TRIGGER USER",
            "CREATE TABLE {s}.shadow (x int)",
            "INSERT INTO {s}.ledger_meta VALUES ('schema_version', '0')",
        ],
    )
    def test_the_app_role_cannot_rewrite_or_restructure(self, postgres: PostgresServer, statement: str) -> None:
        """Every statement that would change history or the schema is refused to the role the application uses."""
        url = postgres.new_ledger_url()
        conninfo, schema = split_ledger_url(url)
        with PostgresLedger(url) as ledger:
            ledger.append([draft(1, 1), draft(1, 2)])
        with psycopg.connect(conninfo, autocommit=True) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement.format(s=f'"{schema}"'))
        with PostgresLedger(url) as ledger:
            assert ledger.verify().ok
            assert ledger.count() == 2

    def test_superuser_edit_is_found_at_its_seq(self, postgres: PostgresServer) -> None:
        """A superuser disables the triggers and edits entry 5: verify names seq 5 (and the disabled triggers)."""
        url = postgres.new_ledger_url()
        with PostgresLedger(url) as ledger:
            ledger.append([draft(1, n) for n in range(10)])
        _admin(
            postgres,
            url,
            "ALTER TABLE entries DISABLE TRIGGER entries_no_update",
            "UPDATE entries SET body = replace(body, 'entry 4', 'entry 44') WHERE seq = 5",
        )
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
        assert (result.ok, result.first_bad_seq) == (False, 5)

    def test_a_disabled_trigger_fails_verify(self, postgres: PostgresServer) -> None:
        """An intact chain whose TRUNCATE guard a superuser disabled is reported, naming the trigger."""
        url = postgres.new_ledger_url()
        with PostgresLedger(url) as ledger:
            ledger.append([draft(1, n) for n in range(3)])
        _admin(postgres, url, "ALTER TABLE entries DISABLE TRIGGER entries_no_truncate")
        with PostgresLedger(url) as ledger:
            result = ledger.verify()
        assert not result.ok
        assert "entries_no_truncate" in (result.reason or "")

    def test_derived_columns_follow_the_body(self, postgres: PostgresServer) -> None:
        """The filter columns are generated from the stored text: they cannot be written to say something else."""
        url = postgres.new_ledger_url()
        with PostgresLedger(url) as ledger:
            ledger.append([draft(1, 1)])
        with pytest.raises(psycopg.errors.GeneratedAlways):
            _admin(
                postgres,
                url,
                "ALTER TABLE entries DISABLE TRIGGER entries_no_update",
                "UPDATE entries SET run_id = 'other-run'",
            )

    def test_a_run_id_holding_nul_is_recorded_and_chained(self, postgres: PostgresServer) -> None:
        """A run id with a NUL character (a bus message may carry one: JSON's \\u0000) is recorded as it came, in
        the same batch as other runs' entries, and its run's chain is the one its derived run_id column names (NUL
        as U+FFFD, the text PostgreSQL can hold): appended twice, it is one chain of two, and the ledger verifies. It
        was a DataError that failed the recorder's whole batch, every time it was delivered again."""
        url = postgres.new_ledger_url()
        hostile = "run-\x00-x"
        with PostgresLedger(url) as ledger:
            ledger.append_batch_once("recorder", [("m1", [draft(1, 1)]), ("m2", [draft(1, 2, run_id=hostile)])])
            ledger.append([draft(1, 3, run_id=hostile)])
            result = ledger.verify()
        assert result.ok, result.reason
        assert result.chains is not None
        assert (result.chains.runs, result.chains.heads) == (2, 3)
        rows = _admin(postgres, url, "SELECT chain_seq, body FROM entries WHERE seq > 1 ORDER BY seq")
        assert [(chain_seq, json.loads(body)["run_id"]) for chain_seq, body in rows] == [(1, hostile), (2, hostile)]

    def test_writer_killed_mid_append_leaves_a_valid_chain(self, postgres: PostgresServer) -> None:
        """SIGKILL a process appending 200-entry transactions: no half-written entry; the next append chains on."""
        url = postgres.new_ledger_url()
        context = multiprocessing.get_context("fork")
        writer = context.Process(target=_endless_writer, args=(url,))
        writer.start()
        with PostgresLedger(url) as ledger:
            deadline = time.monotonic() + 30
            while ledger.count() < 600 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert writer.pid is not None
            os.kill(writer.pid, signal.SIGKILL)
            writer.join(timeout=30)
            assert ledger.count() % 200 == 0  # whole transactions only
            ledger.append([draft(1, 1)])
            result = ledger.verify()
            assert result.ok, result.reason
            assert result.entries % 200 == 1

    def test_unreachable_server_and_missing_schema_are_one_line(self, postgres: PostgresServer) -> None:
        """No server, or a database without the ledger's schema: LedgerUnavailable naming the URL, no password."""
        with pytest.raises(LedgerUnavailable, match=r"127\.0\.0\.1:1/") as caught:
            PostgresLedger("postgresql://someone:s3cret@127.0.0.1:1/test")
        assert "s3cret" not in str(caught.value)
        url = postgres.app_url("no_such_schema_here")
        with pytest.raises(LedgerUnavailable, match="no Coalition ledger in schema 'no_such_schema_here'"):
            PostgresLedger(url)


def _cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coalition", *args],
        check=False,
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


class TestFullRun:
    """helios-launch on PostgreSQL through the CLI: the SQLite digest, and the CLI and console work on it."""

    @pytest.fixture(autouse=True)
    def _logs_back_on_stderr(self) -> Iterator[None]:
        """An in-process `coalition run` points structlog at CliRunner's stream, closed afterwards: point it back."""
        yield
        from coalition.logs import configure_logging

        configure_logging("warning", "console")

    def test_same_digest_as_sqlite_and_the_tools_work(self, postgres: PostgresServer, tmp_path: Path) -> None:
        url = postgres.new_ledger_url()
        base = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
        base["COALITION_DATA_DIR"] = str(tmp_path / "data")
        on_pg = {**base, "COALITION_LEDGER": url}
        run = ["run", "helios-launch", "--bus", "memory", "--seed", "7", "--json"]
        pg_run = _cli(*run, "--run-id", "on-pg", env=on_pg, cwd=tmp_path)
        assert pg_run.returncode == 0, pg_run.stderr
        sq_run = CliRunner().invoke(
            app, [*run, "--run-id", "on-sqlite"], env={"COALITION_DATA_DIR": str(tmp_path / "data")}
        )
        assert sq_run.exit_code == 0, sq_run.output
        cli = CliRunner()
        on_pg_env = {"COALITION_LEDGER": url, "COALITION_DATA_DIR": str(tmp_path / "data")}
        on_sq_env = {"COALITION_LEDGER": str(tmp_path / "data" / "ledger.db")}

        def in_process(*args: str, env: dict[str, str]) -> Any:
            return cli.invoke(app, list(args), env=env, catch_exceptions=False)

        pg_digest = in_process("ledger", "digest", "--run", "on-pg", env=on_pg_env)
        sq_digest = in_process("ledger", "digest", "--run", "on-sqlite", env=on_sq_env)
        assert pg_digest.stdout.strip() == sq_digest.stdout.strip() != ""

        verify = in_process("ledger", "verify", env=on_pg_env)
        assert verify.exit_code == 0, verify.stdout
        assert verify.stdout.startswith("OK: ")
        assert re.search(r"; 1 run chain, \d+ heads: ok;", verify.stdout), verify.stdout
        listed = in_process("ledger", "list", "--kind", "verdict", "--gate", "market_entry", "--json", env=on_pg_env)
        assert listed.exit_code == 0
        assert '"market_entry"' in listed.stdout
        found = in_process("ledger", "list", "--search", "market entry", "--csv", "--limit", "0", env=on_pg_env)
        assert found.exit_code == 0
        assert found.stdout.count("\n") > 1
        seq = re.search(r"^(\d+),", found.stdout.splitlines()[1])
        assert seq is not None
        explained = in_process("ledger", "explain", seq.group(1), env=on_pg_env)
        assert explained.exit_code == 0
        assert f"#{seq.group(1)}" in explained.stdout
        doctor = in_process("doctor", "--bus", "memory", "--json", env=on_pg_env)
        assert "postgresql at" in doctor.stdout
        assert "intact" in doctor.stdout
        assert "Merkle tree root" in doctor.stdout
        assert re.search(r"1 run chain, \d+ heads: ok", doctor.stdout), doctor.stdout
        assert "newest checkpoint" in doctor.stdout

        # the tree and signed checkpoints on PostgreSQL: verify names them, prove and audit verify offline
        assert "consistent with the newest checkpoint" in verify.stdout, verify.stdout
        proof = in_process("ledger", "prove", "5", env=on_pg_env)
        assert proof.exit_code == 0, proof.stdout
        bundle = json.loads(proof.stdout)
        assert (bundle["seq"], bundle["leaf_index"]) == (5, 4)
        audit = in_process("audit", "on-pg", "--out", str(tmp_path / "audit-pg"), env=on_pg_env)
        assert audit.exit_code == 0, audit.stdout
        checked = json.loads((tmp_path / "audit-pg" / "verification.json").read_text())
        assert checked["ok"]
        assert "Merkle tree (every leaf, stored nodes compared)" in checked["checks"]
        assert checked["newest_checkpoint"]["size"] == checked["entries"]
        offline = subprocess.run(
            [sys.executable, "verify.py"],
            check=False,
            cwd=tmp_path / "audit-pg",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert offline.returncode == 0, offline.stdout + offline.stderr
        assert offline.stdout.startswith("OK: ")

        # the console over the same PostgreSQL ledger
        from coalition.web.app import create_app
        from coalition.web.passwords import hash_password

        console = create_app(url, tmp_path / "users.db")
        console.state.console.users.add("audrey", ["auditor"], hash_password("pw for the test"), now=datetime.now(UTC))
        with TestClient(console, base_url="http://127.0.0.1") as client:
            form = client.get("/login")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            logged = client.post(
                "/login", data={"name": "audrey", "password": "pw for the test", "csrf_token": token.group(1)}
            )
            assert logged.status_code == 200
            page = client.get("/ledger", params={"q": "market entry", "run": "on-pg"})
            assert page.status_code == 200
            assert "market entry" in page.text.lower()
            entry = client.get(f"/ledger/entries/{seq.group(1)}")
            assert entry.status_code == 200
            api = client.get("/api/ledger", params={"kind": "verdict", "limit": 5})
            assert api.status_code == 200
            assert len(api.json()["entries"]) == 5
            assert client.get("/runs/on-pg").status_code == 200
            form = client.get("/ledger/verify")
            token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert token is not None
            verified = client.post("/ledger/verify", data={"csrf_token": token.group(1)})
            assert verified.status_code == 200
            assert re.search(r"1 run chain, \d+ heads: ok \(one chain per run", verified.text), verified.text


def test_bad_ledger_url_through_the_cli_is_one_line(tmp_path: Path) -> None:
    """COALITION_LEDGER pointing at no server: one line on stderr naming it, exit 2, no traceback, no password."""
    url = "postgresql://auditor:hunter2@127.0.0.1:1/test?schema=coalition"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    env["COALITION_LEDGER"] = url
    results = [_cli("run", "helios-launch", "--bus", "memory", env=env, cwd=tmp_path)]
    for args in (("ledger", "verify"), ("ledger", "list"), ("serve", "--port", "0")):
        invoked = CliRunner().invoke(app, list(args), env={"COALITION_LEDGER": url})
        results.append(subprocess.CompletedProcess(args, invoked.exit_code, invoked.stdout, invoked.stderr))
    for result in results:
        assert result.returncode == 2, (result.args, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("error: "), result.stderr
        assert "127.0.0.1:1" in lines[0], result.stderr
        assert "hunter2" not in result.stderr + result.stdout
