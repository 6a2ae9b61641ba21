"""Entry numbers within a run: #1 is a run's first entry, whatever else the ledger holds before or between its
entries. What people see beside a run (summaries, tables, `ledger explain N`) uses these; the ledger-wide
sequence number stays the identity that verification, proofs and links use."""

from __future__ import annotations

from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry


class RunNumbering:
    """Converts between a run's entry numbers and ledger-wide sequence numbers (cached look-ups)."""

    def __init__(self, ledger: Ledger, run_id: str) -> None:
        self._ledger = ledger
        self.run_id = run_id
        self._numbers: dict[int, int] = {}

    def number(self, seq: int) -> int:
        """The run's number of the entry at ledger sequence `seq` (an entry of this run)."""
        if seq not in self._numbers:
            self._numbers[seq] = self._ledger.count(LedgerQuery(run_id=self.run_id, before_seq=seq + 1))
        return self._numbers[seq]

    def entry(self, number: int) -> LedgerEntry | None:
        """The run's entry number `number` (1-based), or None when the run has fewer entries."""
        if number < 1:
            return None
        found = self._ledger.query(LedgerQuery(run_id=self.run_id, limit=number))
        if len(found) < number:
            return None
        entry = found[-1]
        self._numbers[entry.seq] = number
        return entry

    def entries(self) -> int:
        return self._ledger.count(LedgerQuery(run_id=self.run_id))


def numbers_of(entries: list[LedgerEntry]) -> dict[int, int]:
    """Ledger seq → run number for a whole run's entries given in ledger order (no look-ups)."""
    return {entry.seq: n for n, entry in enumerate(entries, 1)}
