"""What an agent remembers across supersteps: its proposals and their fate, and the rules it was told."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from coalition.agents.payloads import Brief, WorldData

ProposalStatus = Literal[
    "pending", "allowed", "denied", "escalated", "approved", "rejected", "expired", "applied", "failed", "adopted"
]
# A proposal in one of these states is over without effect: the same thing may be proposed again. An adopted
# assistive draft has none of its own: its final proposal carries it on.
CLOSED_WITHOUT_EFFECT: frozenset[str] = frozenset({"denied", "rejected", "expired", "failed", "adopted"})
# A proposal in one of these states may still take effect (it waits for a verdict, humans or the executor).
UNDECIDED: frozenset[str] = frozenset({"pending", "allowed", "escalated", "approved"})
_VERDICT_STATUS: dict[str, ProposalStatus] = {"allow": "allowed", "deny": "denied", "escalate": "escalated"}


class ProposalRecord(BaseModel):
    """One proposal this agent made: its dedupe key, its status, and whether it was already revised."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proposal_id: str
    action: str
    args: dict[str, Any]
    key: str  # what makes two proposals "the same thing", e.g. "<action>:<subject>"
    status: ProposalStatus = "pending"
    revision_of: str | None = None  # the proposal this one revises (a revision is never revised again)
    revised: bool = False  # a revision was already made after a denial of this proposal


class AgentMemory(BaseModel):
    """Serialisable agent memory; each agent extends it with what its domain needs."""

    model_config = ConfigDict(extra="forbid")
    # Observation kind → (the field that keeps its latest data, the model it is read with): the graph's first node
    # folds these in. A pack's memory may read the brief with its own (richer) model and fold its own snapshots.
    FOLDS: ClassVar[Mapping[str, tuple[str, type[WorldData]]]] = {"policy.brief": ("brief", Brief)}

    brief: Brief | None = None
    proposals: dict[str, ProposalRecord] = Field(default_factory=dict)

    def is_live(self, key: str) -> bool:
        """True when a proposal with this key is pending, escalated, authorized or applied (do not repeat it)."""
        return any(r.key == key and r.status not in CLOSED_WITHOUT_EFFECT for r in self.proposals.values())

    def ever_proposed(self, key: str) -> bool:
        """True when any proposal with this key was made, whatever became of it (for things asked once)."""
        return any(r.key == key for r in self.proposals.values())

    def latest(self, key: str) -> ProposalRecord | None:
        """The most recent proposal made under this key, whatever became of it (None if none was made)."""
        return next((r for r in reversed(self.proposals.values()) if r.key == key), None)

    def remember(self, record: ProposalRecord) -> None:
        self.proposals[record.proposal_id] = record

    def set_status(self, proposal_id: str, status: ProposalStatus) -> ProposalRecord | None:
        record = self.proposals.get(proposal_id)
        if record is None:
            return None
        updated = record.model_copy(update={"status": status})
        self.proposals[proposal_id] = updated
        return updated

    def on_verdict(self, proposal_id: str, outcome: str) -> ProposalRecord | None:
        return self.set_status(proposal_id, _VERDICT_STATUS[outcome])

    def mark_revised(self, proposal_id: str) -> None:
        record = self.proposals[proposal_id]
        self.proposals[proposal_id] = record.model_copy(update={"revised": True})

    def may_revise(self, proposal_id: str) -> bool:
        """At most one revision per denial, and never a revision of a revision: no loop can form."""
        record = self.proposals.get(proposal_id)
        return record is not None and not record.revised and record.revision_of is None
