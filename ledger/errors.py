"""Errors of the ledger package."""

from __future__ import annotations


class LedgerError(Exception):
    """Base of every ledger error."""


class LedgerUnavailable(LedgerError):
    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"ledger at {path} cannot be opened: {reason}")
        self.path = path
        self.reason = reason


class LedgerWriteFailed(LedgerError):
    """A write did not happen (disk full, read-only file or directory, the file removed while open, an I/O error):
    the transaction was rolled back, so nothing of it is in the ledger."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"could not write to the ledger at {path}: {reason}")
        self.path = path
        self.reason = reason


class AppendOnlyViolation(LedgerError):
    """Someone tried to update or delete a ledger row."""


class EntryNotFound(LedgerError):
    """No entry has the sequence number asked for."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"no ledger entry with seq {seq}")
        self.seq = seq


class MalformedEntry(LedgerError):
    """A stored entry no longer parses: the file was edited outside the ledger (run `coalition ledger verify`)."""

    def __init__(self, seq: object, reason: str) -> None:
        super().__init__(
            f"ledger entry {seq} is malformed ({reason}); the file was altered: run coalition ledger verify"
        )
        self.seq = seq
        self.reason = reason
