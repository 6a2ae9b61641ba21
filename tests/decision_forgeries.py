"""What someone with write access to a ledger (and no approver's key) appends to pass for human decisions: an
unsigned approval in carol's name, and a signed rejection re-filed as an approval under its own type."""

from __future__ import annotations

from coalition.ledger.base import Ledger
from coalition.ledger.entry import EntryDraft, LedgerEntry


def append_forged_decisions(ledger: Ledger, rejection: LedgerEntry) -> None:
    """Beside the signed `rejection`, an unsigned approval in carol's name (message id forged-1) and the rejection
    itself filed again with message type approval.granted (forged-2)."""
    fields = {name: getattr(rejection, name) for name in EntryDraft.model_fields}
    unsigned = {**rejection.payload, "approver": "carol", "role": "board", "reason": "forged", "signature": None}
    forged = {"kind": "approval", "message_type": "approval.granted", "approver": "carol", "rationale": "forged"}
    ledger.append(
        [
            EntryDraft(**{**fields, **forged, "payload": unsigned, "message_id": "forged-1"}),
            EntryDraft(**{**fields, "message_type": "approval.granted", "message_id": "forged-2"}),
        ]
    )
