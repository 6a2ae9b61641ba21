"""The executor: the only code that applies agents' actions to the world, and only for governance's authorizations.

Each action of docs/design.md has an argument model (validated before anything changes) and one small handler.
A handler checks everything it needs first and only then changes the world, so a refusal leaves it untouched.
An idempotency key that was already applied is a duplicate: reported, never applied twice.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionAuthorized, ActionExecuted, ActionProposed
from coalition.scenarios.errors import ExecutionRefused
from coalition.scenarios.world import (
    Campaign,
    Credit,
    Experiment,
    Incident,
    JurisdictionPack,
    ModelBudgetGrant,
    Money,
    Record,
    Region,
    RegulatoryStatus,
    SettlementWindow,
    World,
    cents,
    money_json,
)

GOVERNANCE_SOURCE = "governance"
Text = Annotated[str, Field(min_length=1)]
PositiveMoney = Annotated[Money, Field(gt=0)]
NonNegativeMoney = Annotated[Money, Field(ge=0)]


class Args(BaseModel):
    """Base of the argument models: frozen, strict about unknown keys, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class CommissionResearch(Args):
    topic: Text
    cost_usd: NonNegativeMoney


class SetPrice(Args):
    region: Text
    price: PositiveMoney


class ChangePricingPolicy(Args):
    floor: NonNegativeMoney
    ceiling: PositiveMoney
    surge_cap_pct: Decimal = Field(ge=0)

    @model_validator(mode="after")
    def _band(self) -> ChangePricingPolicy:
        if self.floor > self.ceiling:
            raise ValueError(f"floor {self.floor} is above ceiling {self.ceiling}")
        return self


class EnterMarket(Args):
    region: Text
    sequence: int = Field(ge=1)
    investment_usd: NonNegativeMoney


class SetSettlementPolicy(Args):
    window: SettlementWindow
    reserve_ratio: Decimal = Field(ge=0, le=1)


class CommitCapital(Args):
    amount_usd: PositiveMoney
    purpose: Text


class LaunchCampaign(Args):
    campaign_id: Text
    region: Text
    channel: Text
    copy_text: str = Field(alias="copy", min_length=1)
    claims: list[str]
    budget_usd: NonNegativeMoney
    discount_pct: Decimal = Field(ge=0, le=100)


class RunExperiment(Args):
    experiment_id: Text
    hypothesis: Text
    budget_usd: NonNegativeMoney
    metric: Text
    stop_threshold: Decimal


class StopExperiment(Args):
    experiment_id: Text
    reason: Text


class PublishJurisdictionPack(Args):
    region: Text
    status: RegulatoryStatus
    obligations: list[str]
    effective: date
    material: bool


class PauseSettlement(Args):
    region: Text
    incident_id: Text
    reason: Text


class ResumeSettlement(Args):
    region: Text
    incident_id: Text


class OpenIncident(Args):
    incident_id: Text
    kind: Text
    severity: int = Field(ge=1, le=5)
    regions: list[str]  # may be empty: a fraud incident can concern accounts, not regions
    affected_customers: int = Field(ge=0)
    summary: Text


class IssueCredit(Args):
    customer_id: Text
    incident_id: Text
    tier: Text
    amount_usd: PositiveMoney


class NotifyCustomers(Args):
    incident_id: Text
    audience: Text
    message: Text


class FreezeAccount(Args):
    account_id: Text
    incident_id: Text
    reason: Text


class RotateCredentials(Args):
    system: Text
    reason: Text


class TransferFunds(Args):
    amount_usd: PositiveMoney
    destination: Text
    reason: Text


class RequestModelBudget(Args):
    tokens: int = Field(ge=0)
    cost_usd: NonNegativeMoney
    reason: Text


@dataclass(frozen=True, slots=True)
class Context:
    """Who asked, and when: what a handler may need besides its arguments."""

    agent: str
    proposal_id: str
    day: int


Changes = dict[str, Any]
Handler = Callable[[World, Any, Context], Changes]


def _region(world: World, code: str) -> Region:
    if code not in world.state.regions:
        raise ExecutionRefused(f"unknown region {code!r}")
    return world.state.regions[code]


def _regions(world: World, code: str) -> list[Region]:
    """One region, or every region for "*"."""
    if code == "*":
        return [world.state.regions[c] for c in sorted(world.state.regions)]
    return [_region(world, code)]


def _require_cash(world: World, amount: Decimal, what: str) -> None:
    if amount > world.state.cash_usd:
        raise ExecutionRefused(f"{what} of {amount} USD exceeds cash on hand ({world.state.cash_usd} USD)")


def _spend(world: World, ctx: Context, amount: Decimal) -> None:
    s = world.state
    s.cash_usd = cents(s.cash_usd - amount)
    s.totals.spend_usd = cents(s.totals.spend_usd + amount)
    s.spent_by_agent[ctx.agent] = cents(s.spent_by_agent.get(ctx.agent, Decimal("0")) + amount)


def _commission_research(world: World, a: CommissionResearch, ctx: Context) -> Changes:
    _require_cash(world, a.cost_usd, "research cost")
    _spend(world, ctx, a.cost_usd)
    record = Record(kind="research", day=ctx.day, amount_usd=a.cost_usd, fields={"topic": a.topic})
    world.state.research.append(record)
    return {"research": {"topic": a.topic, "cost_usd": money_json(a.cost_usd)}}


def _set_price(world: World, a: SetPrice, ctx: Context) -> Changes:
    region = _region(world, a.region)
    old, region.price = region.price, a.price
    return {"price": {"region": region.code, "old": money_json(old), "new": money_json(a.price)}}


def _change_pricing_policy(world: World, a: ChangePricingPolicy, ctx: Context) -> Changes:
    policy = world.state.pricing_policy
    old = {"floor": money_json(policy.floor), "ceiling": money_json(policy.ceiling)}
    old["surge_cap_pct"] = float(policy.surge_cap_pct)
    policy.floor, policy.ceiling, policy.surge_cap_pct = a.floor, a.ceiling, a.surge_cap_pct
    new = {"floor": money_json(a.floor), "ceiling": money_json(a.ceiling), "surge_cap_pct": float(a.surge_cap_pct)}
    return {"pricing_policy": {"old": old, "new": new}}


def _enter_market(world: World, a: EnterMarket, ctx: Context) -> Changes:
    region = _region(world, a.region)
    if region.active:
        raise ExecutionRefused(f"region {region.code} is already an active market")
    _require_cash(world, a.investment_usd, "market entry investment")
    _spend(world, ctx, a.investment_usd)
    region.active, region.entry_sequence, region.investment_usd = True, a.sequence, a.investment_usd
    return {"market": {"region": region.code, "active": True, "sequence": a.sequence}}


def _set_settlement_policy(world: World, a: SetSettlementPolicy, ctx: Context) -> Changes:
    settlement = world.state.settlement
    old = {"window": settlement.window, "reserve_ratio": float(settlement.reserve_ratio)}
    settlement.window, settlement.reserve_ratio = a.window, a.reserve_ratio
    world.rebalance_reserves()
    new = {"window": a.window, "reserve_ratio": float(a.reserve_ratio)}
    return {"settlement": {"old": old, "new": new}, "reserves_usd": money_json(world.state.reserves_usd)}


def _commit_capital(world: World, a: CommitCapital, ctx: Context) -> Changes:
    _require_cash(world, a.amount_usd, "capital commitment")
    world.state.cash_usd = cents(world.state.cash_usd - a.amount_usd)
    record = Record(kind="capital_commitment", day=ctx.day, amount_usd=a.amount_usd, fields={"purpose": a.purpose})
    world.state.capital_commitments.append(record)
    return {"capital_commitment": {"amount_usd": money_json(a.amount_usd), "purpose": a.purpose}}


def _launch_campaign(world: World, a: LaunchCampaign, ctx: Context) -> Changes:
    region = _region(world, a.region)
    if a.campaign_id in world.state.campaigns:
        raise ExecutionRefused(f"campaign {a.campaign_id!r} already exists")
    _require_cash(world, a.budget_usd, "campaign budget")
    reach = int(a.budget_usd / world.state.cost_per_reach_usd)
    _spend(world, ctx, a.budget_usd)
    # A campaign brings buyers: demand grows by reach/200k, at most 10%.
    uplift = min(Decimal(reach) / Decimal(200_000), Decimal("0.1"))
    region.demand_mw = (region.demand_mw * (1 + uplift)).quantize(Decimal("0.001"))
    world.state.campaigns[a.campaign_id] = Campaign(
        id=a.campaign_id,
        region=region.code,
        channel=a.channel,
        copy_text=a.copy_text,
        claims=list(a.claims),
        budget_usd=a.budget_usd,
        discount_pct=a.discount_pct,
        reach=reach,
        day=ctx.day,
    )
    return {"campaign": {"campaign_id": a.campaign_id, "region": region.code, "reach": reach}}


def _run_experiment(world: World, a: RunExperiment, ctx: Context) -> Changes:
    if a.experiment_id in world.state.experiments:
        raise ExecutionRefused(f"experiment {a.experiment_id!r} already exists")
    _require_cash(world, a.budget_usd, "experiment budget")
    reach = int(a.budget_usd / world.state.cost_per_reach_usd)
    _spend(world, ctx, a.budget_usd)
    world.state.experiments[a.experiment_id] = Experiment(
        id=a.experiment_id,
        hypothesis=a.hypothesis,
        budget_usd=a.budget_usd,
        metric=a.metric,
        stop_threshold=a.stop_threshold,
        reach=reach,
        day=ctx.day,
    )
    return {"experiment": {"experiment_id": a.experiment_id, "status": "running", "reach": reach}}


def _stop_experiment(world: World, a: StopExperiment, ctx: Context) -> Changes:
    experiment = world.state.experiments.get(a.experiment_id)
    if experiment is None:
        raise ExecutionRefused(f"unknown experiment {a.experiment_id!r}")
    if experiment.status == "stopped":
        raise ExecutionRefused(f"experiment {a.experiment_id!r} is already stopped")
    experiment.status, experiment.stop_reason = "stopped", a.reason
    return {"experiment": {"experiment_id": a.experiment_id, "status": "stopped"}}


def _publish_jurisdiction_pack(world: World, a: PublishJurisdictionPack, ctx: Context) -> Changes:
    region = _region(world, a.region)
    old, region.status = region.status, a.status
    world.state.jurisdiction_packs[region.code] = JurisdictionPack(
        region=region.code,
        status=a.status,
        obligations=list(a.obligations),
        effective=a.effective,
        material=a.material,
        day=ctx.day,
    )
    return {"jurisdiction": {"region": region.code, "old": old, "new": a.status, "obligations": len(a.obligations)}}


def _pause_settlement(world: World, a: PauseSettlement, ctx: Context) -> Changes:
    regions = _regions(world, a.region)
    for region in regions:
        region.settlement_paused = True
    return {"settlement_paused": {"regions": [r.code for r in regions], "incident_id": a.incident_id}}


def _resume_settlement(world: World, a: ResumeSettlement, ctx: Context) -> Changes:
    regions = [r for r in _regions(world, a.region) if r.settlement_paused]
    if not regions:
        raise ExecutionRefused(f"settlement is not paused in {a.region!r}")
    for region in regions:
        region.settlement_paused = False
    changes: Changes = {"settlement_resumed": {"regions": [r.code for r in regions], "incident_id": a.incident_id}}
    incident = world.state.incidents.get(a.incident_id)
    if incident is not None and incident.status == "open":
        incident.status, incident.resolved_day = "resolved", ctx.day
        changes["incident"] = {"incident_id": incident.id, "status": "resolved"}
    return changes


def _open_incident(world: World, a: OpenIncident, ctx: Context) -> Changes:
    if a.incident_id in world.state.incidents:
        raise ExecutionRefused(f"incident {a.incident_id!r} is already open")
    for code in a.regions:
        if code != "*":
            _region(world, code)
    world.state.incidents[a.incident_id] = Incident(
        id=a.incident_id,
        kind=a.kind,
        severity=a.severity,
        regions=list(a.regions),
        affected_customers=a.affected_customers,
        summary=a.summary,
        opened_day=ctx.day,
    )
    return {"incident": {"incident_id": a.incident_id, "status": "open", "severity": a.severity}}


def _issue_credit(world: World, a: IssueCredit, ctx: Context) -> Changes:
    customer = world.state.customers.get(a.customer_id)
    if customer is None:
        raise ExecutionRefused(f"unknown customer {a.customer_id!r}")
    s = world.state
    customer.credits_usd = cents(customer.credits_usd + a.amount_usd)
    s.cash_usd = cents(s.cash_usd - a.amount_usd)
    s.totals.credits_usd = cents(s.totals.credits_usd + a.amount_usd)
    s.credits.append(
        Credit(customer_id=customer.id, incident_id=a.incident_id, tier=a.tier, amount_usd=a.amount_usd, day=ctx.day)
    )
    return {"credit": {"customer_id": customer.id, "tier": a.tier, "amount_usd": money_json(a.amount_usd)}}


def _notify_customers(world: World, a: NotifyCustomers, ctx: Context) -> Changes:
    fields = {"incident_id": a.incident_id, "audience": a.audience, "message": a.message, "agent": ctx.agent}
    world.state.notifications.append(Record(kind="notification", day=ctx.day, fields=fields))
    return {"notification": {"incident_id": a.incident_id, "audience": a.audience}}


def _freeze_account(world: World, a: FreezeAccount, ctx: Context) -> Changes:
    if a.account_id in world.state.frozen_accounts:
        raise ExecutionRefused(f"account {a.account_id!r} is already frozen")
    fields = {"incident_id": a.incident_id, "reason": a.reason}
    world.state.frozen_accounts[a.account_id] = Record(kind="frozen_account", day=ctx.day, fields=fields)
    return {"frozen_account": {"account_id": a.account_id, "incident_id": a.incident_id}}


def _rotate_credentials(world: World, a: RotateCredentials, ctx: Context) -> Changes:
    fields = {"system": a.system, "reason": a.reason}
    world.state.credential_rotations.append(Record(kind="credential_rotation", day=ctx.day, fields=fields))
    return {"credentials_rotated": {"system": a.system}}


def _transfer_funds(world: World, a: TransferFunds, ctx: Context) -> Changes:
    _require_cash(world, a.amount_usd, "transfer")
    world.state.cash_usd = cents(world.state.cash_usd - a.amount_usd)
    fields = {"destination": a.destination, "reason": a.reason}
    world.state.transfers.append(Record(kind="transfer", day=ctx.day, amount_usd=a.amount_usd, fields=fields))
    return {"transfer": {"amount_usd": money_json(a.amount_usd), "destination": a.destination}}


def _request_model_budget(world: World, a: RequestModelBudget, ctx: Context) -> Changes:
    """The grant is recorded; no cash moves (model spend is paid to providers, outside the simulated books)."""
    grant = ModelBudgetGrant(
        agent=ctx.agent, proposal_id=ctx.proposal_id, tokens=a.tokens, cost_usd=a.cost_usd, reason=a.reason, day=ctx.day
    )
    world.state.model_budget_grants.append(grant)
    return {"model_budget": {"agent": ctx.agent, "tokens": a.tokens, "cost_usd": money_json(a.cost_usd)}}


@dataclass(frozen=True, slots=True)
class ActionSpec:
    """An action of the executor's vocabulary: its argument model and its handler."""

    args: type[Args]
    handler: Handler


ACTIONS: dict[str, ActionSpec] = {
    "commission_research": ActionSpec(CommissionResearch, _commission_research),
    "set_price": ActionSpec(SetPrice, _set_price),
    "change_pricing_policy": ActionSpec(ChangePricingPolicy, _change_pricing_policy),
    "enter_market": ActionSpec(EnterMarket, _enter_market),
    "set_settlement_policy": ActionSpec(SetSettlementPolicy, _set_settlement_policy),
    "commit_capital": ActionSpec(CommitCapital, _commit_capital),
    "launch_campaign": ActionSpec(LaunchCampaign, _launch_campaign),
    "run_experiment": ActionSpec(RunExperiment, _run_experiment),
    "stop_experiment": ActionSpec(StopExperiment, _stop_experiment),
    "publish_jurisdiction_pack": ActionSpec(PublishJurisdictionPack, _publish_jurisdiction_pack),
    "pause_settlement": ActionSpec(PauseSettlement, _pause_settlement),
    "resume_settlement": ActionSpec(ResumeSettlement, _resume_settlement),
    "open_incident": ActionSpec(OpenIncident, _open_incident),
    "issue_credit": ActionSpec(IssueCredit, _issue_credit),
    "notify_customers": ActionSpec(NotifyCustomers, _notify_customers),
    "freeze_account": ActionSpec(FreezeAccount, _freeze_account),
    "rotate_credentials": ActionSpec(RotateCredentials, _rotate_credentials),
    "transfer_funds": ActionSpec(TransferFunds, _transfer_funds),
    "request_model_budget": ActionSpec(RequestModelBudget, _request_model_budget),
}


def validate_args(action: str, args: dict[str, Any]) -> Args:
    """The action's arguments as its model; ExecutionRefused with a one-line reason when they do not fit."""
    spec = ACTIONS.get(action)
    if spec is None:
        raise ExecutionRefused(f"unknown action {action!r}")
    try:
        return spec.args.model_validate(args)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(args)"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ExecutionRefused(f"invalid args for {action}: {where}: {message}") from None


def _proposal_mismatch(auth: ActionAuthorized, proposal: ActionProposed | None) -> str | None:
    """Why an authorization does not authorize what its proposal asked for (None: it does)."""
    if proposal is None:
        return f"authorization names proposal {auth.proposal_id}, which no agent proposed in this run"
    if proposal.proposal_hash != auth.proposal_hash:
        return f"authorization is for proposal hash {auth.proposal_hash[:12]}, not {proposal.proposal_hash[:12]}"
    if (proposal.agent, proposal.action, proposal.args) != (auth.agent, auth.action, auth.args):
        return f"authorization's agent, action or arguments differ from proposal {auth.proposal_id}"
    return None


class Executor:
    """Applies `action.authorized` envelopes from governance to the world, once per idempotency key."""

    def __init__(self, world: World) -> None:
        self._world = world

    @property
    def world(self) -> World:
        return self._world

    def apply(self, envelope: Envelope, *, proposals: Mapping[str, ActionProposed] | None = None) -> ActionExecuted:
        """Apply one authorization. With `proposals` (what the agents asked for, by proposal id), it must name a
        proposal seen there, by that proposal's exact hash, for the same agent, action and arguments."""
        payload = envelope.payload
        if not isinstance(payload, ActionAuthorized):
            return ActionExecuted(
                authorization_id="",
                proposal_id="",
                agent="",
                action="",
                idempotency_key="",
                status="failed",
                detail=f"refused: envelope {envelope.id} is {envelope.type!r}, not an action.authorized",
            )

        def result(status: Literal["applied", "duplicate", "failed"], detail: str, changes: Changes) -> ActionExecuted:
            return ActionExecuted(
                authorization_id=payload.authorization_id,
                proposal_id=payload.proposal_id,
                agent=payload.agent,
                action=payload.action,
                idempotency_key=payload.idempotency_key,
                status=status,
                changes=changes,
                detail=detail,
            )

        if envelope.source != GOVERNANCE_SOURCE:
            return result("failed", f"refused: authorization came from {envelope.source!r}, not governance", {})
        if proposals is not None:
            mismatch = _proposal_mismatch(payload, proposals.get(payload.proposal_id))
            if mismatch is not None:
                return result("failed", f"refused: {mismatch}; nothing changed", {})
        state = self._world.state
        if payload.idempotency_key in state.applied_keys:
            first = state.applied_keys[payload.idempotency_key]
            return result("duplicate", f"already applied (idempotency key of proposal {first}); nothing changed", {})
        try:
            args = validate_args(payload.action, payload.args)
            ctx = Context(agent=payload.agent, proposal_id=payload.proposal_id, day=state.day)
            changes = ACTIONS[payload.action].handler(self._world, args, ctx)
        except ExecutionRefused as exc:
            return result("failed", f"refused: {exc.detail}; nothing changed", {})
        state.applied_keys[payload.idempotency_key] = payload.proposal_id
        return result("applied", f"{payload.action} applied on day {state.day}", changes)
