"""What evaluate() returns: plain frozen dataclasses (no pydantic in the hot path), turned into messages later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

Outcome = Literal["allow", "deny", "escalate"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One rule's objection: a deny, or an escalation with who must approve it and by when."""

    outcome: Literal["deny", "escalate"]
    rule_id: str
    reason: str
    gate: str | None = None
    approver_roles: tuple[str, ...] = ()
    approvals_required: int = 0
    expires_after: timedelta | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The decision on one proposal. For an escalation, gate/approver_roles/approvals_required/expires_after
    say who must approve and by when; reasons are human-readable and never empty."""

    outcome: Outcome
    reasons: tuple[str, ...]
    rule_ids: tuple[str, ...]
    gate: str | None = None
    approver_roles: tuple[str, ...] = ()
    approvals_required: int = 0
    expires_after: timedelta | None = None
    policy_version: str = ""

    @property
    def allowed(self) -> bool:
        return self.outcome == "allow"
