"""A SQLite ledger never drops the locks SQLite holds for the process's other connections to the same file.

POSIX advisory locks belong to a process and a file: closing ANY descriptor of a file releases every lock the
process holds on it, SQLite's included (sqlite.org/howtocorrupt.html §2.2). A ledger that opened and closed its own
descriptor of the database, its `-wal` or its `-shm` while the console's long-lived ledger (or a live run's) had the
same file open would silently take away that connection's locks: the next process to open the file then believes it
is alone and resets the shared index under it, or checkpoints the log away under a reader ("database disk image is
malformed"). The web console does exactly this: one ledger open for its life, another opened and closed per run.

Checked on Linux through /proc/locks: the locks this process holds before a second ledger on the same file is
opened, written to and closed are all still held afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from verdict_drafts import verdict_draft

from coalition.ledger import SqliteLedger
from coalition.ledger.entry import EntryDraft

PROC_LOCKS = Path("/proc/locks")

pytestmark = pytest.mark.skipif(not PROC_LOCKS.exists(), reason="needs Linux's /proc/locks to see a process's locks")


def _draft(n: int) -> EntryDraft:
    return verdict_draft(n, run_id="run-locks")


def _held_by_this_process() -> set[tuple[str, ...]]:
    """(type, device:inode, start, end) of every POSIX lock this process holds (lines of /proc/locks; a line with
    `->` is a waiter, not a holder)."""
    me = str(os.getpid())
    held = set()
    for line in PROC_LOCKS.read_text().splitlines():
        parts = line.split()
        if "->" in parts or len(parts) < 8 or parts[1] != "POSIX" or parts[4] != me:
            continue
        held.add((parts[3], parts[5], parts[6], parts[7]))
    return held


class TestOtherConnectionsKeepTheirLocks:
    def test_a_second_ledger_opened_and_closed_leaves_the_first_ones_locks(self, tmp_path: Path) -> None:
        path = tmp_path / "ledger.db"
        with SqliteLedger(path, create=True) as writer:
            writer.append([_draft(0)])
            with SqliteLedger(path, read_only=True) as console:  # the console's ledger, open for its life
                assert console.verify().ok
                before = _held_by_this_process()
                assert before, "SQLite holds no lock for the open ledgers: nothing to check"
                for n in range(1, 4):  # a live run's ledger, opened (create=True as a run does), used, closed
                    with SqliteLedger(path, create=True) as run:
                        run.append([_draft(n)])
                    lost = before - _held_by_this_process()
                    assert not lost, f"closing another ledger of the file released this process's locks: {lost}"
                assert console.verify().ok
                assert console.count() == 4
