"""The finance agent: entry sequencing from the shortlist, guardrails for marketing, prices, settlement, capital."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from coalition.agents.errors import UnusableInput
from coalition.agents.memory import ProposalRecord
from coalition.agents.money import dec
from coalition.agents.narrator import Narrator
from coalition.agents.workflow import FunctionAgent, MessageDraft, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import AgentMessage, Observation, VerdictIssued
from coalition.packs.helios.agents.finance import engine
from coalition.packs.helios.memory import HeliosMemory
from coalition.packs.helios.payloads import (
    CapitalNeed,
    PolicyBrief,
    PricingBand,
    SettlementMismatch,
    Shortlist,
    SupplyShock,
)


class FinanceMemory(HeliosMemory):
    """Finance remembers how often each region's surge price was denied (to ask for a wider cap, once)."""

    surge_denials: dict[str, int] = Field(default_factory=dict)  # region -> set_price denials above the band


class FinanceAgent(FunctionAgent[FinanceMemory]):
    """Chief Financial Agent: pricing engine, treasury and capital allocation."""

    NAME = "finance"
    REACTS_TO = frozenset({"market.shortlist", "policy.brief", "supply.shock", "settlement.mismatch", "capital.need"})
    REACTS_TO_VERDICTS = True

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, FinanceMemory())

    def _band(self) -> PricingBand | None:
        """The pricing band in force: today's snapshot if it states one (the world's band starts as the policy's
        and follows executed changes), else the policy brief's."""
        if self.memory.market is not None and self.memory.market.pricing_policy is not None:
            return self.memory.market.pricing_policy
        return self.memory.brief.pricing if self.memory.brief is not None else None

    def _base_price(self, region: str) -> Decimal | None:
        market = self.memory.market
        if market is None or region not in market.prices:
            return None
        return market.prices[region].base_price

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if isinstance(payload, VerdictIssued):
            self._after_verdict(envelope, payload, plan)
        elif isinstance(payload, AgentMessage):
            if payload.kind == "market.shortlist":
                self._enter_markets(envelope, plan)
        elif isinstance(payload, Observation):
            self._observation(envelope, payload, plan)

    def _observation(self, envelope: Envelope, payload: Observation, plan: Plan) -> None:
        evidence = (evidence_of(envelope),)
        if payload.kind == "policy.brief":
            rails = engine.guardrails(self.data(envelope, PolicyBrief))
            if rails is not None:
                data, facts = rails
                plan.tell(
                    MessageDraft(
                        to=("marketing",),
                        kind="price.guardrails",
                        data=data.model_dump(mode="json"),
                        facts=facts,
                        evidence=evidence,
                        trigger=envelope,
                    )
                )
        elif payload.kind == "supply.shock":
            shock = self.data(envelope, SupplyShock)
            base = self._base_price(shock.region)
            if base is None:
                raise UnusableInput(self.NAME, payload.kind, envelope.id, f"no base price known for {shock.region}")
            price = engine.clearing_price(shock, base)
            plan.propose(
                ProposalDraft(
                    action="set_price",
                    args=price.args(),
                    facts=price.facts,
                    evidence=evidence,
                    trigger=envelope,
                    key=f"set_price:{price.region}:{price.price}",
                )
            )
        elif payload.kind == "settlement.mismatch":
            mismatch = self.data(envelope, SettlementMismatch)
            settlement = self.memory.market.settlement if self.memory.market is not None else None
            decision = engine.settlement_policy(mismatch, settlement.window if settlement else "T+1")
            if decision is not None:
                plan.propose(
                    ProposalDraft(
                        action="set_settlement_policy",
                        args=decision.args(),
                        facts=decision.facts,
                        evidence=evidence,
                        trigger=envelope,
                        key=f"set_settlement_policy:{decision.window}",
                    )
                )
        elif payload.kind == "capital.need":
            need = engine.capital(self.data(envelope, CapitalNeed))
            plan.propose(
                ProposalDraft(
                    action="commit_capital",
                    args=need.args(),
                    facts=need.facts,
                    evidence=evidence,
                    trigger=envelope,
                    key=f"commit_capital:{need.purpose}:{need.amount_usd}",
                )
            )

    def _enter_markets(self, envelope: Envelope, plan: Plan) -> None:
        shortlist = self.data(envelope, Shortlist)
        active = self.memory.market.active_markets if self.memory.market is not None else []
        for entry in engine.plan_entries(shortlist, self.memory.brief, active):
            plan.propose(
                ProposalDraft(
                    action="enter_market",
                    args=entry.args(),
                    facts=entry.facts,
                    evidence=(evidence_of(envelope),),
                    trigger=envelope,
                    key=f"enter_market:{entry.region}",
                )
            )

    def _after_verdict(self, envelope: Envelope, verdict: VerdictIssued, plan: Plan) -> None:
        """A denied price is re-proposed once, at the nearest price the band allows."""
        record = self.memory.proposals.get(verdict.proposal_id)
        if verdict.outcome != "deny" or record is None or record.action != "set_price":
            return
        if not self.memory.may_revise(record.proposal_id):
            return
        self._reprice(envelope, record, plan)

    def _surge_denied(
        self, envelope: Envelope, plan: Plan, *, region: str, denied: Decimal, base: Decimal, band: PricingBand
    ) -> None:
        """Count surge denials; at the threshold ask humans for a wider surge cap (gate pricing_policy_change)."""
        denials = self.memory.surge_denials.get(region, 0) + 1
        self.memory.surge_denials[region] = denials
        change = engine.pricing_policy_change(region, denials, denied, base, band)
        if change is None:
            return
        plan.propose(
            ProposalDraft(
                action="change_pricing_policy",
                args=change.args(),
                facts=change.facts,
                evidence=(evidence_of(envelope),),
                trigger=envelope,
                key=f"change_pricing_policy:{change.surge_cap_pct}",
            )
        )

    def _reprice(self, envelope: Envelope, record: ProposalRecord, plan: Plan) -> None:
        region = str(record.args["region"])
        band, base = self._band(), self._base_price(region)
        if band is None or base is None:
            return
        decision = engine.in_band(region, dec(record.args["price"]), base, band)
        if decision is None:
            return
        if decision.price < dec(record.args["price"]):
            self._surge_denied(envelope, plan, region=region, denied=dec(record.args["price"]), base=base, band=band)
        plan.propose(
            ProposalDraft(
                action="set_price",
                args=decision.args(),
                facts=decision.facts,
                evidence=(evidence_of(envelope),),
                trigger=envelope,
                key=f"set_price:{region}:{decision.price}",
                supersedes=record.proposal_id,
            )
        )
