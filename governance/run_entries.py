"""A run's `run` entries (its run.started, which holds the run's documents and approver directory, and its
run.finished), read once in a pass that asks for them again and again.

Every human decision recorded reads them (who may sign, whether the run has ended), and so does each fold of an
escalation's story that holds a decision; replay --verify records every decision of a run again, into its own
in-memory ledger, so it read the ~26 KB run.started entry back as an entry model a dozen times. Inside
`run_entries_read_once` they are read again only when their number has changed: a ledger is append-only, so
the same number of a run's `run` entries is the same entries (a run.finished appended since is read).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry

# (ledger, run id, the entries read) inside run_entries_read_once(); None elsewhere (every call reads)
_read: ContextVar[list[tuple[Ledger, str, list[LedgerEntry]]] | None] = ContextVar("run_entries_read", default=None)


@contextmanager
def run_entries_read_once() -> Iterator[None]:
    """Inside, run_entries reads a run's `run` entries again only when their number has changed. For one pass over
    a ledger this process writes alone (replay --verify's derivation): nothing else rewrites an entry there."""
    token = _read.set([])
    try:
        yield
    finally:
        _read.reset(token)


def run_entries(ledger: Ledger, run_id: str, *, limit: int | None = None) -> list[LedgerEntry]:
    """The run's `run` entries in sequence order, the first `limit` of them (None: all). Read them, never change
    them: inside run_entries_read_once, the next caller is handed the same entries."""
    kept = _read.get()
    if kept is None:
        return ledger.query(LedgerQuery(run_id=run_id, kind="run", limit=limit))
    count = ledger.count(LedgerQuery(run_id=run_id, kind="run"))
    index = next((i for i, (held, held_run, _) in enumerate(kept) if held is ledger and held_run == run_id), len(kept))
    if index == len(kept) or len(kept[index][2]) != count:  # not read yet, or appended to since
        read = (ledger, run_id, ledger.query(LedgerQuery(run_id=run_id, kind="run")))
        kept[index : index + 1] = [read]
    entries = kept[index][2]
    return entries if limit is None else entries[: max(limit, 0)]
