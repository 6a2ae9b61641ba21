"""The sales agent (seed H9): partner deals scored, kept within finance's limits and legal's templates, and said
"yes" to only when ops has the integration capacity. Its decisions are in coalition.packs.helios.partnerships."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from coalition.agents.facts import Facts
from coalition.agents.memory import CLOSED_WITHOUT_EFFECT
from coalition.agents.narrator import Narrator
from coalition.agents.workflow import FunctionAgent, MessageDraft, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import Observation
from coalition.packs.helios import partnerships
from coalition.packs.helios.memory import HeliosMemory
from coalition.packs.helios.partnerships import Assessment, OpsCapacity, PartnerPipeline

# Deals sales may not fix itself go to the owners of the constraint they break ("off-template → Legal/Finance").
REVIEWERS = {"off_template": ("legal",), "over_deal_limit": ("finance",), "over_total": ("finance",)}


class SalesMemory(HeliosMemory):
    """The integration hours ops said it can onboard (None until ops has said: no capacity, no "yes")."""

    capacity_hours: int | None = None

    def _live_deals(self) -> list[dict[str, Any]]:
        """The arguments of this agent's deals that are pending, escalated, authorized or signed."""
        return [
            r.args
            for r in self.proposals.values()
            if r.action == "sign_partnership" and r.status not in CLOSED_WITHOUT_EFFECT
        ]

    def hours_left(self) -> int:
        """Ops' capacity less what live deals take (a denied or rejected deal gives its hours back)."""
        return (self.capacity_hours or 0) - sum(int(a.get("integration_hours", 0)) for a in self._live_deals())

    def committed_usd(self) -> Decimal:
        return sum((Decimal(str(a.get("commitment_usd", 0))) for a in self._live_deals()), Decimal(0))


class SalesAgent(FunctionAgent[SalesMemory]):
    """Partnerships: partner scoring, proposals within finance's limits and legal's templates, ops capacity first."""

    NAME = "sales"
    REACTS_TO = frozenset({"partner.pipeline", "ops.capacity"})

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, SalesMemory())

    def prepare(self, inbox: Sequence[Envelope]) -> None:
        """Take ops' capacity first: a pipeline arriving in the same step is weighed against it."""
        for envelope in inbox:
            payload = envelope.payload
            if isinstance(payload, Observation) and payload.kind == "ops.capacity":
                try:
                    self.memory.capacity_hours = OpsCapacity.model_validate(payload.data).integration_hours
                except ValidationError:
                    continue  # react() says what is wrong with it

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if not isinstance(payload, Observation):
            return
        if payload.kind == "ops.capacity":
            self.data(envelope, OpsCapacity)  # only validated: prepare() took it
        elif payload.kind == "partner.pipeline":
            pipeline = self.data(envelope, PartnerPipeline)
            hours, committed = self.memory.hours_left(), self.memory.committed_usd()
            for assessment in partnerships.assess(pipeline, hours, committed):
                self._act(assessment, envelope, plan)

    def _act(self, a: Assessment, envelope: Envelope, plan: Plan) -> None:
        c = a.candidate
        figures = {
            "score": str(a.score),
            "time_to_close_days": str(c.time_to_close_days),
            "integration_cost_usd": str(c.integration_cost_usd),
            "regulatory_drag": str(c.regulatory_drag),
            "volume_mwh": str(c.volume_mwh),
            "commitment_usd": str(c.commitment_usd),
        }
        rules = ["partner_score", f"deal/{a.verdict}"]
        if a.verdict == "propose":
            decision = f"sign {c.partner_id} ({c.kind}, {c.region}) on template {c.template}"
            facts = Facts(intent="propose", decision=decision, reasons=[a.why], figures=figures, rules=rules)
            args = {
                "partner_id": c.partner_id,
                "region": c.region,
                "template": c.template,
                "commitment_usd": str(c.commitment_usd),
                "volume_mwh": str(c.volume_mwh),
                "integration_hours": c.integration_hours,
                "score": str(a.score),
            }
            key = f"sign_partnership:{c.partner_id}"
            plan.propose(ProposalDraft("sign_partnership", args, facts, (evidence_of(envelope),), envelope, key))
        elif a.verdict in REVIEWERS:
            decision = f"review the {c.partner_id} deal: sales will not propose it as it stands"
            facts = Facts(intent="request", decision=decision, reasons=[a.why], figures=figures, rules=rules)
            data = {"partner_id": c.partner_id, "verdict": a.verdict, "why": a.why, "score": str(a.score)}
            evidence = (evidence_of(envelope),)
            plan.tell(MessageDraft(REVIEWERS[a.verdict], "deal.review", data, facts, evidence, envelope))
