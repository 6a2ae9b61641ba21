"""The decision ledger: append-only, hash-chained, every entry with its rationale."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
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

_LAZY: dict[str, str] = {
    "AppendOnlyViolation": "coalition.ledger.errors",
    "ChainLink": "coalition.ledger.explain",
    "Decision": "coalition.ledger.explain",
    "EntryDraft": "coalition.ledger.entry",
    "EntryNotFound": "coalition.ledger.errors",
    "Explanation": "coalition.ledger.explain",
    "GENESIS_HASH": "coalition.ledger.entry",
    "Ledger": "coalition.ledger.base",
    "LedgerEntry": "coalition.ledger.entry",
    "LedgerError": "coalition.ledger.errors",
    "LedgerQuery": "coalition.ledger.base",
    "LedgerUnavailable": "coalition.ledger.errors",
    "LedgerWriteFailed": "coalition.ledger.errors",
    "MalformedEntry": "coalition.ledger.errors",
    "ModelRef": "coalition.ledger.entry",
    "Recorder": "coalition.ledger.recorder",
    "RunInfo": "coalition.ledger.base",
    "SqliteLedger": "coalition.ledger.sqlite",
    "VerifyResult": "coalition.ledger.base",
    "draft_from_envelope": "coalition.ledger.mapping",
    "entry_hash": "coalition.ledger.entry",
    "explain": "coalition.ledger.explain",
    "run_digest": "coalition.ledger.digest",
    "seal": "coalition.ledger.entry",
}
lazy_package(__name__, _LAZY)

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
