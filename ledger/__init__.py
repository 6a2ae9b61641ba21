"""The decision ledger: append-only, hash-chained, every entry with its rationale."""

from coalition.ledger.base import Ledger, LedgerQuery, RunInfo, VerifyResult
from coalition.ledger.entry import GENESIS_HASH, EntryDraft, LedgerEntry, ModelRef, entry_hash, seal
from coalition.ledger.errors import AppendOnlyViolation, ChainBroken, LedgerError, LedgerUnavailable

__all__ = [
    "GENESIS_HASH",
    "AppendOnlyViolation",
    "ChainBroken",
    "EntryDraft",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerQuery",
    "LedgerUnavailable",
    "ModelRef",
    "RunInfo",
    "VerifyResult",
    "entry_hash",
    "seal",
]
