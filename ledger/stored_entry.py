"""A stored entry body read as the fields a reader of a finished run looks at, without an entry model per row."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """What a run's end reads of each of its entries (its expectations and summary): the fields as stored.

    The ledger validated every entry when it was written; a run's end reads hundreds of them back, and an entry
    model per row (JSON into pydantic) cost about twice the JSON parse alone."""

    seq: int
    kind: str
    actor: str
    subject: str
    outcome: str | None
    gate: str | None
    message_type: str | None
    rule_ids: list[str]
    payload: dict[str, Any]

    @classmethod
    def of(cls, body: dict[str, Any]) -> StoredEntry:
        """A stored body (every field but `hash`, as JSON): the fields an entry model would hold."""
        return cls(
            body["seq"],
            body["kind"],
            body["actor"],
            body.get("subject", ""),
            body.get("outcome"),
            body.get("gate"),
            body.get("message_type"),
            body.get("rule_ids") or [],
            body.get("payload") or {},
        )
