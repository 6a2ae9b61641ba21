"""The Ledger port: append, query, verify — no update, no delete. Backends: sqlite.py and postgres.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from coalition.ledger.entry import EntryDraft, LedgerEntry
from coalition.ledger.run_chains import ChainsReport


@dataclass(frozen=True, slots=True)
class LedgerQuery:
    """Filters for `Ledger.query`; every filter is optional and they combine with AND."""

    run_id: str | None = None
    agent: str | None = None  # matches actor "agent:<name>" and the payload's proposing agent
    actor: str | None = None
    kind: str | None = None
    gate: str | None = None
    outcome: str | None = None
    subject: str | None = None
    correlation_id: str | None = None
    causation_id: str | None = None
    message_id: str | None = None
    search: str | None = None  # full-text search over rationale (and subject)
    action: str | None = None  # the payload's action (proposals, verdicts, authorizations, executions); no index
    after_seq: int | None = None
    before_seq: int | None = None
    limit: int | None = None
    newest_first: bool = False


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """OK with the count of entries checked, or the first bad sequence and why."""

    ok: bool
    entries: int
    first_bad_seq: int | None = None
    reason: str | None = None
    head_hash: str | None = None
    chains: ChainsReport | None = None  # every run's chain and the heads chain, on a ledger that chains each run


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    first_seq: int
    last_seq: int
    entries: int
    scenario: str | None = None
    status: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


class CommitListeners:
    """Who a backend tells of every append after it commits (the notary signs checkpoints so); a backend sets
    `_listeners = []` and calls `_committed` after each commit."""

    _listeners: list[Callable[[list[LedgerEntry]], None]]

    def add_commit_listener(self, listener: Callable[[list[LedgerEntry]], None]) -> None:
        """Call `listener` with the entries of every append after it commits."""
        self._listeners.append(listener)

    def _committed(self, entries: list[LedgerEntry]) -> None:
        if entries:
            for listener in self._listeners:
                listener(entries)


@runtime_checkable
class Ledger(Protocol):
    """Append-only, hash-chained record of every decision with its rationale."""

    def append(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        """Append drafts in order, in one transaction; all or nothing."""
        ...

    def append_once(self, consumer: str, message_id: str, drafts: Sequence[EntryDraft]) -> list[LedgerEntry] | None:
        """Append together with a dedupe row (consumer, message_id) in one transaction; None if already done."""
        ...

    def append_batch_once(self, consumer: str, items: Sequence[tuple[str, Sequence[EntryDraft]]]) -> list[LedgerEntry]:
        """append_once for many (message_id, drafts) in ONE transaction; ids already recorded are skipped."""
        ...

    def append_checked(
        self, consumer: str, prepare: Callable[[], tuple[str, Sequence[EntryDraft]]]
    ) -> list[LedgerEntry] | None:
        """In ONE write transaction (no other writer in between): call `prepare`, which may read this ledger and
        raises to refuse, then append the drafts it returns with the dedupe row (consumer, message_id); None if
        that id was already recorded. What `prepare` read is still true when its drafts are appended."""
        ...

    def deferred_sync(self) -> AbstractContextManager[None]:
        """A block whose commits may wait for one sync at its end to survive a power cut (they survive a process
        crash at once), for a writer that redoes the block when it did not end; see SqliteLedger.deferred_sync."""
        ...

    def get(self, seq: int) -> LedgerEntry | None: ...

    def query(self, q: LedgerQuery) -> list[LedgerEntry]: ...

    def iter_entries(self, *, run_id: str | None = None, batch: int = 5000) -> Iterator[LedgerEntry]: ...

    def count(self, q: LedgerQuery | None = None) -> int: ...

    def runs(self) -> list[RunInfo]: ...

    def head(self) -> tuple[int, str]:
        """(last sequence, last hash); (0, GENESIS_HASH) when empty."""
        ...

    def verify(self) -> VerifyResult: ...

    def close(self) -> None: ...
