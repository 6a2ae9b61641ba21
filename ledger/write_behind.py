"""A run's recorder flushes held back and written together, for a run whose bus and ledger writes are its own.

The recorder writes each superstep in its own transaction (`Recorder.flush`): entries, dedupe rows, the full-text
index's new segment and the commit, under the lock every other writer of the ledger file waits for. A sweep run of
price-spike makes about 24 such transactions of one or two entries each, and that fixed cost is most of the time a
run holds the lock. Nothing in a run reads those entries between most of its supersteps, so a sweep run (whose bus
is its own, in memory, and whose commits are synced once, at the end of its `deferred_sync` block) hands the
ledger through `WriteBehindLedger`: the recorder's flushes are held, and written in ONE `append_batch_once`, in the
order they were flushed, as soon as anything uses the ledger (a read, another write, the block's end).

What anything in the run reads is therefore what it would have read had every flush been written at once; the
entries, their order, their dedupe rows and what the bus acknowledges are the same (only `wall_time`, one per
transaction, is later). A flush's deliveries are acknowledged only after the commit that holds them, as the recorder
always does. A process that dies with flushes held loses them with the bus they came from: the job is taken again
and the run resumes from what the ledger kept, as after a crash between two flushes (whose boundaries these are).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from coalition.ledger.base import Ledger, LedgerQuery, RunInfo, VerifyResult
from coalition.ledger.entry import EntryDraft, LedgerEntry

Items = Sequence[tuple[str, Sequence[EntryDraft]]]

# Held items are written once this many are waiting, whatever reads the ledger (a bound on what is held).
MAX_HELD = 1000


class WriteBehindLedger:
    """`ledger` with the recorder's flushes held back (`hold_batch_once`) until anything else uses it.

    Every method of the Ledger port, and any other attribute of the ledger (run_bodies, tree, add_checkpoint, …),
    writes what is held first. `write_held` writes it; `held_writes` is the scope a run is made in (written at its
    end)."""

    def __init__(self, ledger: Ledger, *, max_held: int = MAX_HELD) -> None:
        self._ledger = ledger
        self._max_held = max_held
        self._consumer: str | None = None
        self._items: list[tuple[str, Sequence[EntryDraft]]] = []
        self._then: list[Callable[[], object]] = []

    @property
    def inner(self) -> Ledger:
        return self._ledger

    def hold_batch_once(self, consumer: str, items: Items, *, then: Callable[[], object]) -> None:
        """What `append_batch_once(consumer, items)` writes, held back; `then` is called once it is committed."""
        if self._consumer is not None and consumer != self._consumer:
            self.write_held()  # one dedupe consumer a batch
        self._consumer = consumer
        self._items.extend(items)
        self._then.append(then)
        if len(self._items) >= self._max_held:
            self.write_held()

    def write_held(self) -> list[LedgerEntry]:
        """Append everything held in one transaction, then call each flush's `then` (its acknowledgement)."""
        if self._consumer is None:
            return []
        consumer, items, then = self._consumer, self._items, self._then
        self._consumer, self._items, self._then = None, [], []  # a failed write is not tried again
        written = self._ledger.append_batch_once(consumer, items) if items else []
        for call in then:
            call()
        return written

    # -- the Ledger port: what is held first ------------------------------------------------------------------

    def append(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        self.write_held()
        return self._ledger.append(drafts)

    def append_once(self, consumer: str, message_id: str, drafts: Sequence[EntryDraft]) -> list[LedgerEntry] | None:
        self.write_held()
        return self._ledger.append_once(consumer, message_id, drafts)

    def append_batch_once(self, consumer: str, items: Items) -> list[LedgerEntry]:
        self.write_held()
        return self._ledger.append_batch_once(consumer, items)

    def append_checked(
        self, consumer: str, prepare: Callable[[], tuple[str, Sequence[EntryDraft]]]
    ) -> list[LedgerEntry] | None:
        self.write_held()
        return self._ledger.append_checked(consumer, prepare)

    def deferred_sync(self) -> AbstractContextManager[None]:
        self.write_held()
        return self._ledger.deferred_sync()

    def get(self, seq: int) -> LedgerEntry | None:
        self.write_held()
        return self._ledger.get(seq)

    def query(self, q: LedgerQuery) -> list[LedgerEntry]:
        self.write_held()
        return self._ledger.query(q)

    def iter_entries(self, *, run_id: str | None = None, batch: int = 5000) -> Iterator[LedgerEntry]:
        self.write_held()
        return self._ledger.iter_entries(run_id=run_id, batch=batch)

    def count(self, q: LedgerQuery | None = None) -> int:
        self.write_held()
        return self._ledger.count(q)

    def runs(self) -> list[RunInfo]:
        self.write_held()
        return self._ledger.runs()

    def head(self) -> tuple[int, str]:
        self.write_held()
        return self._ledger.head()

    def verify(self) -> VerifyResult:
        self.write_held()
        return self._ledger.verify()

    def close(self) -> None:
        self.write_held()
        self._ledger.close()

    def __getattr__(self, name: str) -> Any:
        """Anything else of the ledger (only reached for names this class does not define): what is held first."""
        if name.startswith("_"):
            raise AttributeError(name)
        self.write_held()
        return getattr(self._ledger, name)


@contextmanager
def held_writes(ledger: Ledger) -> Iterator[WriteBehindLedger]:
    """`ledger` as a run with its own bus sees it, the recorder's flushes held back; what is held is written when
    the block ends (however it ends: what a run flushed before it failed is recorded, as without the block)."""
    behind = WriteBehindLedger(ledger)
    try:
        yield behind
    finally:
        behind.write_held()
