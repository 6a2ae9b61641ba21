"""The decision ledger: append-only, hash-chained, every entry with its rationale."""

from coalition.ledger.base import Ledger, LedgerQuery, RunInfo, VerifyResult
from coalition.ledger.digest import run_digest
from coalition.ledger.entry import GENESIS_HASH, EntryDraft, LedgerEntry, ModelRef, entry_hash, seal
from coalition.ledger.errors import (
    AppendOnlyViolation,
    EntryNotFound,
    LedgerError,
    LedgerUnavailable,
    LedgerWriteFailed,
    MalformedEntry,
)
from coalition.ledger.explain import ChainLink, Decision, Explanation, explain
from coalition.ledger.mapping import draft_from_envelope
from coalition.ledger.recorder import Recorder
from coalition.ledger.sqlite import SqliteLedger

__all__ = [
    "GENESIS_HASH",
    "AppendOnlyViolation",
    "ChainLink",
    "Decision",
    "EntryDraft",
    "EntryNotFound",
    "Explanation",
    "Ledger",
    "LedgerEntry",
    "LedgerError",
    "LedgerQuery",
    "LedgerUnavailable",
    "LedgerWriteFailed",
    "MalformedEntry",
    "ModelRef",
    "Recorder",
    "RunInfo",
    "SqliteLedger",
    "VerifyResult",
    "draft_from_envelope",
    "entry_hash",
    "explain",
    "run_digest",
    "seal",
]
