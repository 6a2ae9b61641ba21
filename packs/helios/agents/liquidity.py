"""The liquidity agent (seed H10): when one side of a regional market outgrows the other, a targeted offer to the
short side within the offer budget and the incentive cap. Its decisions are in coalition.packs.helios.liquidity."""

from __future__ import annotations

from coalition.agents.facts import Facts
from coalition.agents.narrator import Narrator
from coalition.agents.workflow import FunctionAgent, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import Observation
from coalition.packs.helios import liquidity
from coalition.packs.helios.liquidity import MarketSides
from coalition.packs.helios.memory import HeliosMemory


class LiquidityAgent(FunctionAgent[HeliosMemory]):
    """Market balance: both sides of each market scale in tandem through targeted offers."""

    NAME = "liquidity"
    REACTS_TO = frozenset({"market.sides"})

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, HeliosMemory())

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if not (isinstance(payload, Observation) and payload.kind == "market.sides"):
            return
        sides = self.data(envelope, MarketSides)
        evidence = evidence_of(envelope)
        count = payload.subject or evidence[:12]  # which count of the sides the offer answers (ids never repeat)
        for offer in liquidity.offers(sides):
            offer_id = f"{offer.region}-{offer.side}-{count}"
            facts = Facts(
                intent="propose",
                decision=(
                    f"offer {offer.incentive_pct}% to {offer.targets} {offer.side} in {offer.region} "
                    f"({offer.budget_usd} USD)"
                ),
                reasons=[f"{offer.side} trail the other side's growth by {offer.gap_pct} points in {offer.region}"],
                figures={
                    "gap_pct": str(offer.gap_pct),
                    "incentive_pct": str(offer.incentive_pct),
                    "targets": str(offer.targets),
                    "budget_usd": str(offer.budget_usd),
                },
                rules=["liquidity/short_side_offer"],
            )
            args = {
                "offer_id": offer_id,
                "region": offer.region,
                "side": offer.side,
                "incentive_pct": str(offer.incentive_pct),
                "targets": offer.targets,
                "budget_usd": str(offer.budget_usd),
            }
            key = f"make_liquidity_offer:{offer_id}"
            plan.propose(ProposalDraft("make_liquidity_offer", args, facts, (evidence,), envelope, key))
