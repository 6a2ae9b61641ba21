"""Processes that open one new SQLite ledger at once all get it: switching a new file to WAL needs it alone, and SQLite
answers "database is locked" there at once rather than waiting out its busy timeout (on main, 2 to 11 of 80 new
ledgers opened by eight processes at once had an opener fail; 150 here). A new file is set up in the writers' turn
(ledger/writer_lock.py)."""

from __future__ import annotations

import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from coalition.ledger import SqliteLedger

pytestmark = pytest.mark.integration

PROCESSES = 8
PATHS = 150


def _open_each(paths: list[Path], barrier: Barrier, errors: multiprocessing.Queue[str]) -> None:  # type: ignore[type-arg]
    """Open every path in turn, all the processes starting each path together; report what failed."""
    for path in paths:
        barrier.wait(timeout=60)
        try:
            SqliteLedger(path, synchronous="NORMAL").close()
        except Exception as exc:  # what failed is the test's finding, whatever it is
            errors.put(f"{path.parent.name}: {type(exc).__name__}: {exc}")


def test_processes_opening_one_new_ledger_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    paths = [tmp_path / f"ledger-{n}" / "ledger.db" for n in range(PATHS)]  # each a new directory, as a first run's
    barrier = context.Barrier(PROCESSES)
    errors: multiprocessing.Queue[str] = context.Queue()  # type: ignore[type-arg]
    workers = [context.Process(target=_open_each, args=(paths, barrier, errors)) for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES
    failures = []
    while not errors.empty():
        failures.append(errors.get())
    assert failures == []
    for path in paths:  # and each is one ledger, created once
        with SqliteLedger(path, create=False, read_only=True) as ledger:
            assert ledger.verify().ok
            assert ledger.ledger_id
