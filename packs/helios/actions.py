"""Helios Renewables Exchange's actions, each declared once (at the end of this module) with its handler: the effect
on the Helios world. A handler checks everything it needs first and only then changes the world, so a refusal
(ActionRefused) leaves it untouched. The argument models are in arguments.py; what governance learns when an action
applies is in learned.py. A new action touches three files: its model (arguments.py), its handler and declaration
(here) and the permission in the default policy."""

from __future__ import annotations

from decimal import Decimal

from coalition.domain import Action, ActionContext, ActionRefused, Changes
from coalition.packs.helios import learned
from coalition.packs.helios.arguments import (
    ChangePricingPolicy,
    CommissionResearch,
    CommitCapital,
    EnterMarket,
    FreezeAccount,
    IssueCredit,
    LaunchCampaign,
    MakeLiquidityOffer,
    NotifyCustomers,
    OpenIncident,
    PauseSettlement,
    PublishJurisdictionPack,
    RequestModelBudget,
    ResumeSettlement,
    RotateCredentials,
    RunExperiment,
    SetPrice,
    SetSettlementPolicy,
    SignPartnership,
    StopExperiment,
    TransferFunds,
)
from coalition.packs.helios.world import (
    Campaign,
    Credit,
    Experiment,
    Incident,
    JurisdictionPack,
    ModelBudgetGrant,
    Record,
    Region,
    World,
    cents,
    money_json,
)


def _region(world: World, code: str) -> Region:
    if code not in world.state.regions:
        raise ActionRefused(f"unknown region {code!r}")
    return world.state.regions[code]


def _regions(world: World, code: str) -> list[Region]:
    """One region, or every region for "*"."""
    if code == "*":
        return [world.state.regions[c] for c in sorted(world.state.regions)]
    return [_region(world, code)]


def _require_cash(world: World, amount: Decimal, what: str) -> None:
    if amount > world.state.cash_usd:
        raise ActionRefused(f"{what} of {amount} USD exceeds cash on hand ({world.state.cash_usd} USD)")


def _spend(world: World, ctx: ActionContext, amount: Decimal) -> None:
    s = world.state
    s.cash_usd = cents(s.cash_usd - amount)
    s.totals.spend_usd = cents(s.totals.spend_usd + amount)
    s.spent_by_agent[ctx.agent] = cents(s.spent_by_agent.get(ctx.agent, Decimal("0")) + amount)


def commission_research(world: World, a: CommissionResearch, ctx: ActionContext) -> Changes:
    _require_cash(world, a.cost_usd, "research cost")
    _spend(world, ctx, a.cost_usd)
    record = Record(kind="research", day=ctx.day, amount_usd=a.cost_usd, fields={"topic": a.topic})
    world.state.research.append(record)
    return {"research": {"topic": a.topic, "cost_usd": money_json(a.cost_usd)}}


def set_price(world: World, a: SetPrice, ctx: ActionContext) -> Changes:
    region = _region(world, a.region)
    old, region.price = region.price, a.price
    return {"price": {"region": region.code, "old": money_json(old), "new": money_json(a.price)}}


def change_pricing_policy(world: World, a: ChangePricingPolicy, ctx: ActionContext) -> Changes:
    policy = world.state.pricing_policy
    old = {"floor": money_json(policy.floor), "ceiling": money_json(policy.ceiling)}
    old["surge_cap_pct"] = float(policy.surge_cap_pct)
    policy.floor, policy.ceiling, policy.surge_cap_pct = a.floor, a.ceiling, a.surge_cap_pct
    new = {"floor": money_json(a.floor), "ceiling": money_json(a.ceiling), "surge_cap_pct": float(a.surge_cap_pct)}
    return {"pricing_policy": {"old": old, "new": new}}


def enter_market(world: World, a: EnterMarket, ctx: ActionContext) -> Changes:
    region = _region(world, a.region)
    if region.active:
        raise ActionRefused(f"region {region.code} is already an active market")
    _require_cash(world, a.investment_usd, "market entry investment")
    _spend(world, ctx, a.investment_usd)
    region.active, region.entry_sequence, region.investment_usd = True, a.sequence, a.investment_usd
    return {"market": {"region": region.code, "active": True, "sequence": a.sequence}}


def set_settlement_policy(world: World, a: SetSettlementPolicy, ctx: ActionContext) -> Changes:
    settlement = world.state.settlement
    old = {"window": settlement.window, "reserve_ratio": float(settlement.reserve_ratio)}
    settlement.window, settlement.reserve_ratio = a.window, a.reserve_ratio
    world.rebalance_reserves()
    new = {"window": a.window, "reserve_ratio": float(a.reserve_ratio)}
    return {"settlement": {"old": old, "new": new}, "reserves_usd": money_json(world.state.reserves_usd)}


def commit_capital(world: World, a: CommitCapital, ctx: ActionContext) -> Changes:
    _require_cash(world, a.amount_usd, "capital commitment")
    world.state.cash_usd = cents(world.state.cash_usd - a.amount_usd)
    record = Record(kind="capital_commitment", day=ctx.day, amount_usd=a.amount_usd, fields={"purpose": a.purpose})
    world.state.capital_commitments.append(record)
    return {"capital_commitment": {"amount_usd": money_json(a.amount_usd), "purpose": a.purpose}}


def launch_campaign(world: World, a: LaunchCampaign, ctx: ActionContext) -> Changes:
    region = _region(world, a.region)
    if a.campaign_id in world.state.campaigns:
        raise ActionRefused(f"campaign {a.campaign_id!r} already exists")
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


def run_experiment(world: World, a: RunExperiment, ctx: ActionContext) -> Changes:
    if a.experiment_id in world.state.experiments:
        raise ActionRefused(f"experiment {a.experiment_id!r} already exists")
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


def stop_experiment(world: World, a: StopExperiment, ctx: ActionContext) -> Changes:
    experiment = world.state.experiments.get(a.experiment_id)
    if experiment is None:
        raise ActionRefused(f"unknown experiment {a.experiment_id!r}")
    if experiment.status == "stopped":
        raise ActionRefused(f"experiment {a.experiment_id!r} is already stopped")
    experiment.status, experiment.stop_reason = "stopped", a.reason
    return {"experiment": {"experiment_id": a.experiment_id, "status": "stopped"}}


def publish_jurisdiction_pack(world: World, a: PublishJurisdictionPack, ctx: ActionContext) -> Changes:
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


def pause_settlement(world: World, a: PauseSettlement, ctx: ActionContext) -> Changes:
    regions = _regions(world, a.region)
    for region in regions:
        region.settlement_paused = True
    return {"settlement_paused": {"regions": [r.code for r in regions], "incident_id": a.incident_id}}


def resume_settlement(world: World, a: ResumeSettlement, ctx: ActionContext) -> Changes:
    regions = [r for r in _regions(world, a.region) if r.settlement_paused]
    if not regions:
        raise ActionRefused(f"settlement is not paused in {a.region!r}")
    for region in regions:
        region.settlement_paused = False
    changes: Changes = {"settlement_resumed": {"regions": [r.code for r in regions], "incident_id": a.incident_id}}
    incident = world.state.incidents.get(a.incident_id)
    if incident is not None and incident.status == "open":
        incident.status, incident.resolved_day = "resolved", ctx.day
        changes["incident"] = {"incident_id": incident.id, "status": "resolved"}
    return changes


def open_incident(world: World, a: OpenIncident, ctx: ActionContext) -> Changes:
    if a.incident_id in world.state.incidents:
        raise ActionRefused(f"incident {a.incident_id!r} is already open")
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


def issue_credit(world: World, a: IssueCredit, ctx: ActionContext) -> Changes:
    customer = world.state.customers.get(a.customer_id)
    if customer is None:
        raise ActionRefused(f"unknown customer {a.customer_id!r}")
    s = world.state
    customer.credits_usd = cents(customer.credits_usd + a.amount_usd)
    s.cash_usd = cents(s.cash_usd - a.amount_usd)
    s.totals.credits_usd = cents(s.totals.credits_usd + a.amount_usd)
    s.credits.append(
        Credit(customer_id=customer.id, incident_id=a.incident_id, tier=a.tier, amount_usd=a.amount_usd, day=ctx.day)
    )
    return {"credit": {"customer_id": customer.id, "tier": a.tier, "amount_usd": money_json(a.amount_usd)}}


def notify_customers(world: World, a: NotifyCustomers, ctx: ActionContext) -> Changes:
    fields = {"incident_id": a.incident_id, "audience": a.audience, "message": a.message, "agent": ctx.agent}
    world.state.notifications.append(Record(kind="notification", day=ctx.day, fields=fields))
    return {"notification": {"incident_id": a.incident_id, "audience": a.audience}}


def freeze_account(world: World, a: FreezeAccount, ctx: ActionContext) -> Changes:
    if a.account_id in world.state.frozen_accounts:
        raise ActionRefused(f"account {a.account_id!r} is already frozen")
    fields = {"incident_id": a.incident_id, "reason": a.reason}
    world.state.frozen_accounts[a.account_id] = Record(kind="frozen_account", day=ctx.day, fields=fields)
    return {"frozen_account": {"account_id": a.account_id, "incident_id": a.incident_id}}


def rotate_credentials(world: World, a: RotateCredentials, ctx: ActionContext) -> Changes:
    fields = {"system": a.system, "reason": a.reason}
    world.state.credential_rotations.append(Record(kind="credential_rotation", day=ctx.day, fields=fields))
    return {"credentials_rotated": {"system": a.system}}


def transfer_funds(world: World, a: TransferFunds, ctx: ActionContext) -> Changes:
    _require_cash(world, a.amount_usd, "transfer")
    world.state.cash_usd = cents(world.state.cash_usd - a.amount_usd)
    fields = {"destination": a.destination, "reason": a.reason}
    world.state.transfers.append(Record(kind="transfer", day=ctx.day, amount_usd=a.amount_usd, fields=fields))
    return {"transfer": {"amount_usd": money_json(a.amount_usd), "destination": a.destination}}


def request_model_budget(world: World, a: RequestModelBudget, ctx: ActionContext) -> Changes:
    """The grant is recorded; no cash moves (model spend is paid to providers, outside the simulated books)."""
    grant = ModelBudgetGrant(
        agent=ctx.agent, proposal_id=ctx.proposal_id, tokens=a.tokens, cost_usd=a.cost_usd, reason=a.reason, day=ctx.day
    )
    world.state.model_budget_grants.append(grant)
    return {"model_budget": {"agent": ctx.agent, "tokens": a.tokens, "cost_usd": money_json(a.cost_usd)}}


def sign_partnership(world: World, a: SignPartnership, ctx: ActionContext) -> Changes:
    """The deal is signed: its commitment is recorded (no cash moves until the partner delivers)."""
    region = _region(world, a.region)
    if a.partner_id in world.state.partnerships:
        raise ActionRefused(f"partner {a.partner_id!r} is already signed")
    fields = {
        "region": region.code,
        "template": a.template,
        "volume_mwh": str(a.volume_mwh),
        "integration_hours": str(a.integration_hours),
        "score": str(a.score),
    }
    record = Record(kind="partnership", day=ctx.day, amount_usd=a.commitment_usd, fields=fields)
    world.state.partnerships[a.partner_id] = record
    partnership = {"partner_id": a.partner_id, "region": region.code, "commitment_usd": money_json(a.commitment_usd)}
    return {"partnership": partnership}


def make_liquidity_offer(world: World, a: MakeLiquidityOffer, ctx: ActionContext) -> Changes:
    """A targeted offer to a region's short side; its budget is spent from cash."""
    region = _region(world, a.region)
    if a.offer_id in world.state.liquidity_offers:
        raise ActionRefused(f"offer {a.offer_id!r} already exists")
    _require_cash(world, a.budget_usd, "offer budget")
    _spend(world, ctx, a.budget_usd)
    fields = {"region": region.code, "side": a.side, "incentive_pct": str(a.incentive_pct), "targets": str(a.targets)}
    record = Record(kind="liquidity_offer", day=ctx.day, amount_usd=a.budget_usd, fields=fields)
    world.state.liquidity_offers[a.offer_id] = record
    offer = {"offer_id": a.offer_id, "region": region.code, "side": a.side, "budget_usd": money_json(a.budget_usd)}
    return {"liquidity_offer": offer}


ACTIONS: tuple[Action, ...] = (
    Action(
        "commission_research",
        CommissionResearch,
        commission_research,
        proposers=("research",),
        charges="cost_usd",
        doc="Buy a study or dataset on a topic.",
    ),
    Action(
        "set_price",
        SetPrice,
        set_price,
        proposers=("finance",),
        learns=learned.set_price,
        doc="Set a region's price (USD/MWh) within the band and the surge cap.",
    ),
    Action(
        "change_pricing_policy",
        ChangePricingPolicy,
        change_pricing_policy,
        proposers=("finance",),
        learns=learned.change_pricing_policy,
        doc="Replace the pricing band and surge cap (gate pricing_policy_change).",
    ),
    Action(
        "enter_market",
        EnterMarket,
        enter_market,
        proposers=("finance",),
        charges="investment_usd",
        doc="Open a region as a market, in the shortlist's sequence (gate market_entry).",
    ),
    Action(
        "set_settlement_policy",
        SetSettlementPolicy,
        set_settlement_policy,
        proposers=("finance",),
        learns=learned.set_settlement_policy,
        doc="Choose the settlement window (T+1/T+3) and reserve ratio (gate settlement_policy_change).",
    ),
    Action(
        "commit_capital",
        CommitCapital,
        commit_capital,
        proposers=("finance",),
        doc="Commit cash to a purpose (gate capital_commitment at the threshold).",
    ),
    Action(
        "launch_campaign",
        LaunchCampaign,
        launch_campaign,
        proposers=("marketing",),
        charges="budget_usd",
        doc="Launch a campaign with approved claims only, within the discount limit.",
    ),
    Action(
        "run_experiment",
        RunExperiment,
        run_experiment,
        proposers=("marketing",),
        charges="budget_usd",
        doc="Start a growth experiment with a metric and a stop threshold.",
    ),
    Action(
        "stop_experiment",
        StopExperiment,
        stop_experiment,
        proposers=("marketing",),
        doc="Stop a running experiment.",
    ),
    Action(
        "publish_jurisdiction_pack",
        PublishJurisdictionPack,
        publish_jurisdiction_pack,
        proposers=("legal",),
        learns=learned.publish_jurisdiction_pack,
        doc="Publish a region's regulatory status and obligations (gate compliance_change when material).",
    ),
    Action(
        "pause_settlement",
        PauseSettlement,
        pause_settlement,
        proposers=("ops",),
        learns=learned.pause_settlement,
        dependency_keys=("incident_id",),
        safe_while_pending=True,
        doc="Pause settlement in a region (or every region, '*') during an incident.",
    ),
    Action(
        "resume_settlement",
        ResumeSettlement,
        resume_settlement,
        proposers=("ops",),
        learns=learned.resume_settlement,
        dependency_keys=("incident_id",),
        safe_while_pending=True,
        doc="Resume paused settlement; resolves the incident.",
    ),
    Action(
        "open_incident",
        OpenIncident,
        open_incident,
        proposers=("ops",),
        dependency_keys=("incident_id",),
        doc="Open an incident with a severity 1..5 (gate incident_severity above the bound).",
    ),
    Action(
        "issue_credit",
        IssueCredit,
        issue_credit,
        proposers=("ops",),
        credit=("customer_id", "amount_usd"),
        dependency_keys=("incident_id",),
        doc="Credit a customer by tier, within the maximum credit per customer.",
    ),
    Action(
        "notify_customers",
        NotifyCustomers,
        notify_customers,
        proposers=("marketing", "ops"),
        dependency_keys=("incident_id",),
        doc="Send a notice to an audience about an incident.",
    ),
    Action(
        "freeze_account",
        FreezeAccount,
        freeze_account,
        proposers=("ops",),
        dependency_keys=("incident_id",),
        safe_while_pending=True,
        doc="Freeze a suspicious account.",
    ),
    Action(
        "rotate_credentials",
        RotateCredentials,
        rotate_credentials,
        proposers=("ops",),
        doc="Rotate a system's credentials (high-impact tool credential_change).",
    ),
    Action(
        "transfer_funds",
        TransferFunds,
        transfer_funds,
        proposers=("finance",),
        doc="Move cash to a destination (high-impact tool money_movement).",
    ),
    Action(
        "request_model_budget",
        RequestModelBudget,
        request_model_budget,
        proposers=("research", "finance", "marketing", "legal", "ops"),
        doc="Ask for more model tokens or dollars (gate budget_overrun, always).",
    ),
    Action(
        "sign_partnership",
        SignPartnership,
        sign_partnership,
        proposers=("sales",),
        dependency_keys=("partner_id",),
        doc="Sign a partner on a legal template within finance's limits (gate partnership_commitment when large).",
    ),
    Action(
        "make_liquidity_offer",
        MakeLiquidityOffer,
        make_liquidity_offer,
        proposers=("liquidity",),
        charges="budget_usd",
        doc="A targeted offer to a region's short side (producers or buyers), within budget and the incentive cap.",
    ),
)
