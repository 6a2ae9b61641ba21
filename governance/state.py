"""What governance knows about the business, folded from messages (live) or ledger entries (rebuild).

The state is an immutable value: `apply` returns a new state and never changes the old one, so evaluate()
stays a pure function of (proposal, state, policy). Budgets are reserved when governance authorizes an
action and become spend when the executor reports it applied (released if it failed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from coalition.bus.errors import MessageRejected
from coalition.bus.message import Message, parse_payload
from coalition.bus.messages import (
    ActionAuthorized,
    ActionExecuted,
    ActionProposed,
    ApprovalGranted,
    ApprovalRejected,
    EscalationResolved,
    Observation,
    ProposalHeld,
    RunStarted,
    VerdictIssued,
)
from coalition.domain import catalog
from coalition.governance.escalation import Decision, Escalation, check_decision
from coalition.governance.money import to_decimal
from coalition.governance.policy import BudgetPeriod, Holds, Policy
from coalition.ledger.entry import LedgerEntry

ZERO = Decimal(0)
BudgetKey = tuple[str, str]  # (agent, period key)


@dataclass(frozen=True, slots=True)
class Charge:
    """An authorized action not yet executed: what it reserved, against whose budget and which period."""

    proposal_id: str
    agent: str
    action: str
    args: Mapping[str, Any]
    period: str
    amount: Decimal  # charged to the budget (0 when the action is not charged)
    credit_customer: str | None = None  # whom it credits, and how much (Action.credit)
    credit_usd: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class Hold:
    """A proposal waiting for the escalation it depends on (policy `holds`), and where its story continues."""

    held_by: str
    dependency: str  # "incident_id=inc-7"
    message_id: str | None = None  # the proposal.held envelope (the cause of the verdict that ends the hold)
    correlation_id: str | None = None


@dataclass(frozen=True, slots=True)
class GovernanceState:
    """Spend and reservations per agent and period, credit authorized per account, what the pack's executed
    actions and observations taught governance (`learned`), proposals awaiting a verdict and escalations (open and
    decided)."""

    budget_period: BudgetPeriod = "month"
    directory: Mapping[str, tuple[str, ...]] | None = None  # None: trust the roles recorded in the ledger
    now: datetime | None = None
    run_id: str | None = None
    policy_version: str | None = None
    spent: Mapping[BudgetKey, Decimal] = field(default_factory=dict)
    reserved: Mapping[BudgetKey, Decimal] = field(default_factory=dict)
    increases: Mapping[BudgetKey, Decimal] = field(default_factory=dict)
    charges: Mapping[str, Charge] = field(default_factory=dict)
    credits: Mapping[str, Decimal] = field(default_factory=dict)  # per account, by the actions declaring a credit
    # named values the pack keeps (Action.learns, GovernanceDecl.observes), read by its rules and state fields
    learned: Mapping[str, Any] = field(default_factory=dict)
    proposals: Mapping[str, ActionProposed] = field(default_factory=dict)  # awaiting a verdict
    escalations: Mapping[str, Escalation] = field(default_factory=dict)
    held: Mapping[str, Hold] = field(default_factory=dict)  # proposal id → the escalation it waits for

    @classmethod
    def initial(cls, policy: Policy, *, run_id: str | None = None) -> GovernanceState:
        """The state before anything happened under this policy."""
        directory = {name: tuple(roles) for name, roles in policy.approvers.items()}
        return cls(budget_period=policy.budgets.period, directory=directory, run_id=run_id)

    # ----- reading -------------------------------------------------------------------------------------

    def period_key(self, when: datetime | None = None) -> str:
        """The budget period a moment falls in ("2025-03" for month, "2025-03-04" for day, …)."""
        moment = when or self.now
        if self.budget_period == "run" or moment is None:
            return "run"
        if self.budget_period == "day":
            return moment.date().isoformat()
        if self.budget_period == "week":
            year, week, _ = moment.isocalendar()
            return f"{year}-W{week:02d}"
        return f"{moment.year:04d}-{moment.month:02d}"

    def committed(self, agent: str, period: str | None = None) -> Decimal:
        """Spend plus reservations of an agent in a period (the current one by default)."""
        key = (agent, period or self.period_key())
        return self.spent.get(key, ZERO) + self.reserved.get(key, ZERO)

    def increase(self, agent: str, period: str | None = None) -> Decimal:
        return self.increases.get((agent, period or self.period_key()), ZERO)

    def open_escalations(self) -> list[Escalation]:
        """Pending escalations, oldest proposal first (stable order)."""
        return [e for e in self.escalations.values() if e.status == "pending"]

    def holder(self, proposal: ActionProposed, holds: Holds) -> tuple[str, str] | None:
        """The unresolved escalation this proposal depends on (a shared dependency key), and the key=value; None
        when nothing holds it or its action is safe while an escalation is pending."""
        if proposal.action in holds.safe_while_pending:
            return None
        for key in holds.dependency_keys:
            value = proposal.args.get(key)
            if value is None:
                continue
            for escalation in self.escalations.values():
                if escalation.resolved or escalation.proposal_id == proposal.proposal_id:
                    continue
                if escalation.proposal.args.get(key) == value:
                    return escalation.proposal_id, f"{key}={value}"
        return None

    def held_by(self, escalation_id: str) -> list[tuple[str, Hold]]:
        """The proposals an escalation holds, in the order they were held."""
        return [(pid, hold) for pid, hold in self.held.items() if hold.held_by == escalation_id]

    def credited(self, customer: str) -> Decimal:
        return self.credits.get(customer, ZERO)

    # ----- folding -------------------------------------------------------------------------------------

    def at(self, when: datetime) -> GovernanceState:
        """The same state, seen at simulated time `when` (it selects the budget period)."""
        return self if when == self.now else _replace(self, now=when)

    def apply(
        self,
        message: Message,
        *,
        sim_time: datetime | None = None,
        message_id: str | None = None,
        correlation_id: str | None = None,
    ) -> GovernanceState:
        """The state after one message (messages governance does not track leave it unchanged)."""
        state = self.at(sim_time) if sim_time is not None else self
        handler = _HANDLERS.get(type(message))
        if handler is None:
            return state
        return handler(state, message, message_id, correlation_id)

    def apply_entry(self, entry: LedgerEntry) -> GovernanceState:
        """Fold one ledger entry (entries without a known message type are skipped)."""
        if not entry.message_type:
            return self
        try:
            message = parse_payload(entry.message_type, entry.payload)
        except (MessageRejected, ValueError):
            return self
        return self.apply(
            message, sim_time=entry.sim_time, message_id=entry.message_id, correlation_id=entry.correlation_id
        )


def fold_ledger(entries: Iterable[LedgerEntry], *, policy: Policy | None = None) -> GovernanceState:
    """Rebuild the governance state from ledger entries, in ledger order."""
    state = GovernanceState.initial(policy) if policy is not None else GovernanceState()
    for entry in entries:
        state = state.apply_entry(entry)
    return state


# ----- a new state from an old one -----------------------------------------------------------------------------

_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(GovernanceState))
_FIELD_SET = frozenset(_FIELD_NAMES)
_new = object.__new__
_set = object.__setattr__


def _replace(s: GovernanceState, **changes: Any) -> GovernanceState:
    """dataclasses.replace(s, **changes) for a GovernanceState, without its generic checks and __init__ call (every
    field is an init field, and there is no __post_init__): governance derives a new state on every message it folds
    and every superstep it sees, and the generic replace took half of that."""
    if type(s) is not GovernanceState or not changes.keys() <= _FIELD_SET:
        return dataclasses.replace(s, **changes)  # a subclass's fields, or a name of no field (refused)
    out = _new(GovernanceState)
    for name in _FIELD_NAMES:
        _set(out, name, changes[name] if name in changes else getattr(s, name))
    return out


# ----- handlers (one per message type) ----------------------------------------------------------------------


def _with(mapping: Mapping[Any, Any], key: Any, value: Any) -> dict[Any, Any]:
    out = dict(mapping)
    out[key] = value
    return out


def _without(mapping: Mapping[Any, Any], key: Any) -> dict[Any, Any]:
    out = dict(mapping)
    out.pop(key, None)
    return out


def _add(mapping: Mapping[BudgetKey, Decimal], key: BudgetKey, amount: Decimal) -> dict[BudgetKey, Decimal]:
    return _with(mapping, key, mapping.get(key, ZERO) + amount)


def _on_run_started(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, RunStarted)
    return _replace(s, policy_version=m.policy_version)


def _on_observation(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, Observation)
    for pack in catalog().packs.values():
        observe = pack.governance.observes.get(m.kind)
        if observe is not None:
            return _learn(s, observe(s.learned, m.data))
    return s


def _learn(s: GovernanceState, changes: Mapping[str, Any]) -> GovernanceState:
    return _replace(s, learned={**s.learned, **changes}) if changes else s


def _on_proposed(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, ActionProposed)
    return _replace(s, proposals=_with(s.proposals, m.proposal_id, m))


def _on_held(s: GovernanceState, m: Message, mid: str | None, cid: str | None) -> GovernanceState:
    assert isinstance(m, ProposalHeld)
    return _replace(s, held=_with(s.held, m.proposal_id, Hold(m.held_by, m.dependency, mid, cid)))


def _on_verdict(s: GovernanceState, m: Message, mid: str | None, cid: str | None) -> GovernanceState:
    assert isinstance(m, VerdictIssued)
    proposal = s.proposals.get(m.proposal_id)
    state = _replace(s, proposals=_without(s.proposals, m.proposal_id)) if proposal is not None else s
    if m.proposal_id in state.held:
        state = _replace(state, held=_without(state.held, m.proposal_id))
    draft = state.escalations.get(proposal.supersedes or "") if proposal is not None else None
    if (
        draft is not None
        and draft.is_draft
        and draft.final is None
        and draft.status == "approved"
        and proposal is not None
        and proposal.agent == draft.agent  # another agent naming the draft does not use its adoption up
    ):
        # the final proposal of an adopted draft: its verdict uses the adoption up (one final per draft)
        final = dataclasses.replace(draft, final=m.proposal_id)
        state = _replace(state, escalations=_with(state.escalations, draft.proposal_id, final))
    if m.outcome != "escalate" or proposal is None or m.proposal_id in s.escalations:
        return state
    escalation = Escalation(
        proposal=proposal,
        proposal_hash=m.proposal_hash,
        gate=m.gate or "unknown",
        approver_roles=tuple(m.approver_roles),
        approvals_required=max(m.approvals_required, 1),
        expires_at=m.expires_at,
        reasons=tuple(m.reasons),
        rule_ids=tuple(m.rule_ids),
        opened_at=s.now,
        correlation_id=cid,
        verdict_message_id=mid,
        policy_version=m.policy_version,
    )
    return _replace(state, escalations=_with(state.escalations, m.proposal_id, escalation))


def _on_decision(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, (ApprovalGranted, ApprovalRejected))
    escalation = s.escalations.get(m.proposal_id)
    if escalation is None:
        return s
    kind: Any = "approve" if isinstance(m, ApprovalGranted) else "reject"
    directory = s.directory if s.directory is not None else {m.approver: (m.role,)}
    check = check_decision(
        escalation,
        approver=m.approver,
        decision=kind,
        proposal_hash=m.proposal_hash,
        now=s.now,
        directory=directory,
        amend=m.args,
    )
    if not check.accepted:
        return s  # the approvals service refuses these on write; a forged or late entry never counts
    decision = Decision(m.approver, check.role or m.role, kind, m.reason, m.proposal_hash, m.method, s.now, m.args)
    return _replace(s, escalations=_with(s.escalations, m.proposal_id, escalation.with_decision(decision)))


def _on_resolved(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, EscalationResolved)
    escalation = s.escalations.get(m.proposal_id)
    state = s
    if escalation is not None:
        resolved = escalation.resolve(m.outcome, m.reason, budget_increase_usd=m.budget_increase_usd)
        state = _replace(s, escalations=_with(s.escalations, m.proposal_id, resolved))
    if m.outcome == "approved" and m.budget_increase_usd and escalation is not None:
        key = (escalation.agent, s.period_key())
        state = _replace(state, increases=_add(s.increases, key, to_decimal(m.budget_increase_usd)))
    return state


def _on_authorized(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, ActionAuthorized)
    if m.proposal_id in s.charges:
        return s
    period = s.period_key()
    amount = charged_amount(m.action, m.args) or ZERO
    customer: str | None = None
    credit = ZERO
    declared = catalog().actions.get(m.action)
    if declared is not None and declared.credit is not None:
        account, amount_arg = declared.credit
        customer = str(m.args.get(account, ""))
        credit = maybe_decimal(m.args.get(amount_arg)) or ZERO
    charge = Charge(m.proposal_id, m.agent, m.action, dict(m.args), period, amount, customer, credit)
    changes: dict[str, Any] = {"charges": _with(s.charges, m.proposal_id, charge)}
    if amount:
        changes["reserved"] = _add(s.reserved, (m.agent, period), amount)
    if customer is not None and credit:
        changes["credits"] = _with(s.credits, customer, s.credits.get(customer, ZERO) + credit)
    return _replace(s, **changes)


def _on_executed(s: GovernanceState, m: Message, _mid: str | None, _cid: str | None) -> GovernanceState:
    assert isinstance(m, ActionExecuted)
    charge = s.charges.get(m.proposal_id)
    if charge is None or m.status == "duplicate":
        return s
    key = (charge.agent, charge.period)
    changes: dict[str, Any] = {"charges": _without(s.charges, m.proposal_id)}
    if charge.amount:
        changes["reserved"] = _add(s.reserved, key, -charge.amount)
        if m.status == "applied":
            changes["spent"] = _add(s.spent, key, charge.amount)
    if m.status == "failed":
        if charge.credit_customer is not None and charge.credit_usd:
            customer = charge.credit_customer
            changes["credits"] = _with(s.credits, customer, s.credits.get(customer, ZERO) - charge.credit_usd)
        return _replace(s, **changes)
    return _learn(_replace(s, **changes), _world_effects(s, charge))


def _world_effects(s: GovernanceState, charge: Charge) -> Mapping[str, Any]:
    """What an applied action changed that governance must know: the pack's declaration of the action says."""
    action = catalog().actions.get(charge.action)
    if action is None or action.learns is None:
        return {}
    return action.learns(s.learned, charge.args)


def charged_amount(action: str, args: Mapping[str, Any]) -> Decimal | None:
    """The amount an action charges to its agent's budget; None for actions that are not charged."""
    declared = catalog().actions.get(action)
    return declared.charged(args) if declared is not None else None


def maybe_decimal(value: object) -> Decimal | None:
    """A Decimal when the value reads as a number, None otherwise (absent or unreadable)."""
    if value is None:
        return None
    try:
        return to_decimal(value)
    except ValueError:
        return None


_Handler = Callable[[GovernanceState, Message, str | None, str | None], GovernanceState]
_HANDLERS: dict[type[Message], _Handler] = {
    RunStarted: _on_run_started,
    Observation: _on_observation,
    ActionProposed: _on_proposed,
    VerdictIssued: _on_verdict,
    ProposalHeld: _on_held,
    ApprovalGranted: _on_decision,
    ApprovalRejected: _on_decision,
    EscalationResolved: _on_resolved,
    ActionAuthorized: _on_authorized,
    ActionExecuted: _on_executed,
}
