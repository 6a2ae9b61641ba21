"""The legal agent: claims linting for marketing, no-go regions, jurisdiction packs and obligations."""

from __future__ import annotations

from pydantic import Field

from coalition.agents.errors import UnusableInput
from coalition.agents.narrator import Narrator
from coalition.agents.screening import screen
from coalition.agents.workflow import FunctionAgent, MessageDraft, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import AgentMessage, Observation
from coalition.packs.helios.agents.legal import engine
from coalition.packs.helios.memory import HeliosMemory
from coalition.packs.helios.payloads import ClaimsReviewRequest, NoGoRegion, NoGoRegions, RegulatoryChange


class LegalMemory(HeliosMemory):
    """Legal remembers the regions research found no legal path in, to weigh a jurisdiction pack against them."""

    no_go: dict[str, NoGoRegion] = Field(default_factory=dict)


class LegalAgent(FunctionAgent[LegalMemory]):
    """Chief Compliance Agent: regulatory monitoring, claims linting, jurisdiction packs."""

    NAME = "legal"
    REACTS_TO = frozenset({"claims.review_request", "no_go.regions", "regulatory.change"})

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, LegalMemory())

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if isinstance(payload, AgentMessage):
            if payload.kind == "claims.review_request":
                self._review(envelope, plan)
            elif payload.kind == "no_go.regions":
                for region in self.data(envelope, NoGoRegions).regions:
                    self.memory.no_go[region.region] = region
        elif isinstance(payload, Observation) and payload.kind == "regulatory.change":
            self._regulatory_change(envelope, payload, plan)

    def _review(self, envelope: Envelope, plan: Plan) -> None:
        request = self.data(envelope, ClaimsReviewRequest)
        if self.memory.brief is None:
            raise UnusableInput(self.NAME, "claims.review_request", envelope.id, "no policy.brief received yet")
        review, facts = engine.lint(request, self.memory.brief)
        plan.tell(
            MessageDraft(
                to=("marketing",),
                kind="claims.review",
                data=review.model_dump(mode="json"),
                facts=facts,
                evidence=(evidence_of(envelope),),
                trigger=envelope,
            )
        )

    def _regulatory_change(self, envelope: Envelope, payload: Observation, plan: Plan) -> None:
        change = self.data(envelope, RegulatoryChange)
        pack = engine.jurisdiction_pack(change, screen(payload.text), self.memory.no_go.get(change.region))
        evidence = (evidence_of(envelope),)
        plan.propose(
            ProposalDraft(
                action="publish_jurisdiction_pack",
                args=pack.args(),
                facts=pack.facts,
                evidence=evidence,
                trigger=envelope,
                key=f"publish_jurisdiction_pack:{change.region}:{change.status}:{change.effective.isoformat()}",
            )
        )
        plan.tell(
            MessageDraft(
                to=("ops", "marketing"),
                kind="obligations",
                data=pack.notice.model_dump(mode="json"),
                facts=pack.notice_facts,
                evidence=evidence,
                trigger=envelope,
            )
        )
