"""Writers of one SQLite ledger take turns through the writer lock (coalition.ledger.writer_lock): the turn is
taken before every write transaction and handed on however it ends — a commit, a message already recorded, a
failing prepare(), an append-only violation — and a process that holds it keeps every other writer out until it
lets go, after which the waiting append goes through at once."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_ledger_tree import draft

from coalition.ledger import SqliteLedger
from coalition.ledger.writer_lock import WriterLock


def free(path: Path) -> bool:
    """Whether another writer could take the turn right now."""
    other = WriterLock(str(path), timeout_s=0)
    try:
        return other.acquire()
    finally:
        other.close()


def test_the_turn_is_handed_on_however_a_write_ends(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path) as ledger:
        ledger.append([draft(1)])
        assert free(path)
        assert ledger.append_once("c", "m-1", [draft(2)]) is not None
        assert ledger.append_once("c", "m-1", [draft(3)]) is None  # already recorded: rolled back
        assert free(path)

        def failing() -> tuple[str, list[object]]:
            raise RuntimeError("prepare failed")

        with pytest.raises(RuntimeError):
            ledger.append_checked("c", failing)  # type: ignore[arg-type]
        assert free(path)
        with pytest.raises(TypeError):
            ledger.append([object()])  # type: ignore[list-item]
        assert free(path)
        assert ledger.count() == 2
    lock_file = tmp_path / "ledger.db-writer"
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600


def test_commit_listeners_run_after_the_turn_is_handed_on(tmp_path: Path) -> None:
    """A slow listener (a notary writing checkpoints to its witness) must not keep every other writer waiting."""
    path = tmp_path / "ledger.db"
    during: list[bool] = []
    with SqliteLedger(path) as ledger:
        ledger.add_commit_listener(lambda entries: during.append(free(path)))
        ledger.append([draft(1)])
        ledger.append_once("c", "m-1", [draft(2)])
        ledger.append_batch_once("c", [("m-2", [draft(3)]), ("m-3", [draft(4)])])
    assert during == [True, True, True]


def test_a_held_turn_times_out_rather_than_waiting_forever(tmp_path: Path) -> None:
    holder = WriterLock(str(tmp_path / "l.db"), timeout_s=0)
    assert holder.acquire()
    try:
        started = time.monotonic()
        assert not WriterLock(str(tmp_path / "l.db"), timeout_s=0.05).acquire()
        assert time.monotonic() - started < 5
    finally:
        holder.close()
    assert free(tmp_path / "l.db")


def test_no_lock_file_possible_leaves_sqlite_to_take_turns(tmp_path: Path) -> None:
    (tmp_path / "l.db-writer").mkdir()  # the lock file's name is taken by a folder: no lock file can be opened
    assert WriterLock(str(tmp_path / "l.db"), timeout_s=0).acquire()
    with SqliteLedger(tmp_path / "l.db") as ledger:  # and the ledger appends with SQLite's own locking alone
        ledger.append([draft(1)])
        assert ledger.count() == 1


APPEND = """
import sys
from test_ledger_tree import draft
from coalition.ledger import SqliteLedger
with SqliteLedger(sys.argv[1]) as ledger:
    print("appending", flush=True)
    ledger.append([draft(7)])
print("appended", flush=True)
"""


@pytest.mark.serial
def test_another_process_waits_for_the_turn_and_goes_through_once_it_is_free(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SqliteLedger(path).close()
    holder = WriterLock(str(path), timeout_s=0)
    assert holder.acquire()
    here = Path(__file__).parent  # test_ledger_tree, and the shared drafts it imports from tests/
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(here), str(here.parent)])}
    child = subprocess.Popen([sys.executable, "-c", APPEND, str(path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "appending"
        time.sleep(1.0)  # long enough for an append that ignored the turn to be done many times over
        assert child.poll() is None
        with SqliteLedger(path, read_only=True) as reader:
            assert reader.count() == 0
        holder.release()
        out, _ = child.communicate(timeout=30)
        assert child.returncode == 0
        assert out.strip() == "appended"
    finally:
        holder.close()
        if child.poll() is None:
            child.kill()
    with SqliteLedger(path, read_only=True) as reader:
        assert reader.count() == 1
