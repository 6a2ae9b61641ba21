"""An escalation and its state machine (pending → approved | rejected | expired), as pure values.

Separation of duties lives here: the proposer never decides its own proposal, the approver must hold one of
the gate's roles, distinct approvers make the quorum, a decision binds to the proposal hash, expiry is a deny
and a decided escalation stays decided. A refusal is a value (`DecisionCheck(accepted=False, …)`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from coalition.bus.messages import ActionProposed
from coalition.governance.lanes import DRAFT_REVIEW

EscalationStatus = Literal["pending", "approved", "rejected", "expired"]
DecisionKind = Literal["approve", "reject"]
# Why a decision was refused, for machines (the reason says it for people). Who decides: not_an_approver,
# wrong_role, self_approval; the escalation's state: unknown_escalation, already_decided, same_approver,
# expired, stale_hash; the input: missing_approver, missing_reason, no_sim_time.
RefusalCode = Literal[
    "not_an_approver",
    "wrong_role",
    "self_approval",
    "unknown_escalation",
    "already_decided",
    "same_approver",
    "expired",
    "stale_hash",
    "missing_approver",
    "missing_reason",
    "no_sim_time",
    "run_finished",
    "unsigned",
    "bad_signature",
    "bad_amendment",
]


@dataclass(frozen=True, slots=True)
class Decision:
    """One human decision on one escalation, as recorded in the ledger."""

    approver: str
    role: str
    decision: DecisionKind
    reason: str
    proposal_hash: str
    method: str = "cli"
    sim_time: datetime | None = None
    args: Mapping[str, Any] | None = None  # an amended assistive draft: the arguments adopted instead


@dataclass(frozen=True, slots=True)
class DecisionCheck:
    """Whether a decision may be recorded, and why (a refusal names what is wrong)."""

    accepted: bool
    reason: str
    role: str | None = None
    code: RefusalCode | None = None  # set on every refusal


@dataclass(frozen=True, slots=True)
class Escalation:
    """A proposal that waits for humans: what was asked, the gate that fired, and the decisions so far."""

    proposal: ActionProposed
    proposal_hash: str
    gate: str
    approver_roles: tuple[str, ...]
    approvals_required: int
    expires_at: datetime | None
    reasons: tuple[str, ...] = ()
    rule_ids: tuple[str, ...] = ()
    opened_at: datetime | None = None
    correlation_id: str | None = None
    verdict_message_id: str | None = None
    policy_version: str | None = None
    approvals: tuple[Decision, ...] = ()
    rejections: tuple[Decision, ...] = ()
    status: EscalationStatus = "pending"
    resolved: bool = False  # governance published escalation.resolved
    resolution_reason: str | None = None
    budget_increase_usd: str | None = None
    final: str | None = None  # a draft review: the final proposal that carried the adopted draft to governance

    @property
    def proposal_id(self) -> str:
        return self.proposal.proposal_id

    @property
    def agent(self) -> str:
        return self.proposal.agent

    @property
    def approvers(self) -> tuple[str, ...]:
        return tuple(d.approver for d in self.approvals)

    @property
    def is_open(self) -> bool:
        return self.status == "pending"

    @property
    def is_draft(self) -> bool:
        """An assistive draft waiting for a person to adopt, amend or drop it (governance/lanes.py)."""
        return self.gate == DRAFT_REVIEW

    @property
    def adopted_args(self) -> dict[str, Any]:
        """The arguments a person adopted: the latest amendment among the approvals, else the draft's own."""
        amended = [d.args for d in self.approvals if d.args is not None]
        return dict(amended[-1]) if amended else dict(self.proposal.args)

    @property
    def amended(self) -> bool:
        return any(d.args is not None for d in self.approvals)

    def if_approved(self) -> str:
        """What approving sets in motion, in words, for the approvals inbox."""
        p = self.proposal
        if self.is_draft:
            return (
                f"the {p.agent} agent proposes the draft's {p.action} with the arguments you adopt (these, or yours "
                "with --amend) and governance evaluates it like any proposal: it may still deny or escalate it"
            )
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(p.args.items()))
        effect = f"governance authorizes the {p.agent} agent's {p.action}({args}) and the executor applies it once"
        if p.action == "request_model_budget":
            effect += f"; the {p.agent} agent may then spend that much more on language models"
        elif self.gate == "budget_overrun" or "budget.money" in self.rule_ids:
            effect += f"; the {p.agent} agent's budget for the period is raised by the overrun"
        if self.approvals_required > 1:
            effect += f" (after {self.approvals_required} distinct approvers)"
        return effect

    def is_overdue(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def with_decision(self, decision: Decision) -> Escalation:
        """The escalation after a decision that `check_decision` accepted (a repeat approver counts once)."""
        if self.status != "pending":
            return self
        if decision.decision == "reject":
            return dataclasses.replace(self, rejections=(*self.rejections, decision), status="rejected")
        if decision.approver in self.approvers:
            return self
        approvals = (*self.approvals, decision)
        status: EscalationStatus = "approved" if len(approvals) >= self.approvals_required else "pending"
        return dataclasses.replace(self, approvals=approvals, status=status)

    def resolve(self, outcome: EscalationStatus, reason: str, *, budget_increase_usd: str | None = None) -> Escalation:
        return dataclasses.replace(
            self, status=outcome, resolved=True, resolution_reason=reason, budget_increase_usd=budget_increase_usd
        )


def is_proposer(approver: str, agent: str) -> bool:
    """An approver named like the proposing agent ("finance", "agent:finance") is the proposer."""
    name = approver.strip().casefold()
    return name in {agent.casefold(), f"agent:{agent.casefold()}"}


def check_decision(
    escalation: Escalation | None,
    *,
    approver: str,
    decision: DecisionKind,
    proposal_hash: str | None,
    now: datetime | None,
    directory: Mapping[str, tuple[str, ...] | list[str]],
    amend: Mapping[str, Any] | None = None,
) -> DecisionCheck:
    """May `approver` record `decision` on this escalation now? Pure; the first failed check is the reason.
    `amend`: the decision adopts these arguments instead of the proposal's (assistive drafts only)."""
    if escalation is None:
        return DecisionCheck(False, "no escalation for this proposal", code="unknown_escalation")
    gate = escalation.gate
    if amend is not None and (decision != "approve" or not escalation.is_draft):
        why = "only an approval amends" if decision != "approve" else f"gate {gate} is not an assistive draft"
        return DecisionCheck(False, f"cannot amend: {why} (amend drafts at gate {DRAFT_REVIEW})", code="bad_amendment")
    if escalation.status != "pending" or escalation.resolved:
        return DecisionCheck(False, _already(escalation), code="already_decided")
    if now is not None and escalation.is_overdue(now):
        return DecisionCheck(
            False,
            f"the escalation expired at {_iso(escalation.expires_at)} and resolves as denied; too late to decide",
            code="expired",
        )
    if proposal_hash is not None and proposal_hash != escalation.proposal_hash:
        return DecisionCheck(
            False,
            f"the decision names proposal hash {proposal_hash[:12]}… but the escalated proposal is "
            f"{escalation.proposal_hash[:12]}… (a decision binds to the exact proposal)",
            code="stale_hash",
        )
    if is_proposer(approver, escalation.agent) or approver.strip().casefold().startswith("agent:"):
        return DecisionCheck(
            False, f"{approver} proposed this action (or is an agent) and cannot decide it", code="self_approval"
        )
    roles = tuple(directory.get(approver, ()))
    if not roles:
        return DecisionCheck(False, f"{approver} is not in the policy's approver directory", code="not_an_approver")
    matching = [r for r in escalation.approver_roles if r in roles]
    if not matching:
        return DecisionCheck(
            False,
            f"{approver} holds {', '.join(roles)}; gate {gate} needs one of {', '.join(escalation.approver_roles)}",
            code="wrong_role",
        )
    if decision == "approve" and approver in escalation.approvers:
        return DecisionCheck(
            False,
            f"{approver} already approved; the same approver counts once (four-eyes needs another person)",
            code="same_approver",
        )
    return DecisionCheck(True, "accepted", role=matching[0])


def _already(escalation: Escalation) -> str:
    """The truth about a decided escalation, for whoever decides it too late: what it became, and by whom."""
    deciders = escalation.rejections if escalation.status == "rejected" else escalation.approvals
    names = ", ".join(f"{d.approver} ({d.role})" if d.role else d.approver for d in deciders)
    by = f" by {names}" if names and escalation.status in ("approved", "rejected") else ""
    state = "resolved" if escalation.resolved else "decided"
    return f"the escalation is already {state}: {escalation.status}{by}; a decision cannot be changed"


def _iso(when: datetime | None) -> str:
    return when.isoformat() if when is not None else "?"
