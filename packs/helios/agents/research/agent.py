"""The research agent: market signals in, a ranked shortlist and no-go list out; news screened, never obeyed."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, ValidationError

from coalition.agents.narrator import Narrator
from coalition.agents.workflow import FunctionAgent, MessageDraft, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import Observation
from coalition.packs.helios.agents.research import engine
from coalition.packs.helios.memory import HeliosMemory
from coalition.packs.helios.payloads import BudgetPressure, MarketSignals, NewsItem, NoGoRegions, ScreeningFlag


class ResearchMemory(HeliosMemory):
    """Research remembers every untrusted text it screened (the flags travel in later shortlists)."""

    screening: list[ScreeningFlag] = Field(default_factory=list)


class ResearchAgent(FunctionAgent[ResearchMemory]):
    """Chief Intelligence Officer: evidence pipeline and market scoring."""

    NAME = "research"
    REACTS_TO = frozenset({"news", "market.signals", "budget.pressure"})

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, ResearchMemory())

    def prepare(self, inbox: Sequence[Envelope]) -> None:
        """Screen every news item of the step first, so a shortlist of the same step carries the flags."""
        seen = {f.evidence_id for f in self.memory.screening}
        for envelope in inbox:
            payload = envelope.payload
            if not (isinstance(payload, Observation) and payload.kind == "news"):
                continue
            evidence = evidence_of(envelope)
            if evidence in seen:
                continue
            try:
                source = NewsItem.model_validate(payload.data).source
            except ValidationError:
                source = ""
            self.memory.screening.append(engine.screen_news(evidence, source, payload.text))
            seen.add(evidence)

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if not isinstance(payload, Observation):
            return
        if payload.kind == "news":
            self.data(envelope, NewsItem)  # only validated: the screen ran in prepare()
        elif payload.kind == "market.signals":
            signals = self.data(envelope, MarketSignals)
            view = engine.assess(signals, list(self.memory.screening))
            evidence = (evidence_of(envelope), *(s.id for s in signals.sources))
            flagged = tuple(f.evidence_id for f in self.memory.screening if f.flags)
            plan.tell(
                MessageDraft(
                    to=("finance", "legal", "marketing"),
                    kind="market.shortlist",
                    data=view.shortlist.model_dump(mode="json"),
                    facts=view.facts,
                    evidence=evidence + flagged,
                    trigger=envelope,
                )
            )
            if view.no_go and view.no_go_facts is not None:
                plan.tell(
                    MessageDraft(
                        to=("legal",),
                        kind="no_go.regions",
                        data=NoGoRegions(regions=view.no_go).model_dump(mode="json"),
                        facts=view.no_go_facts,
                        evidence=evidence,
                        trigger=envelope,
                    )
                )
        elif payload.kind == "budget.pressure":
            decision = engine.commission(self.data(envelope, BudgetPressure))
            plan.propose(
                ProposalDraft(
                    action="commission_research",
                    args=engine.commission_args(decision),
                    facts=decision.facts,
                    evidence=(evidence_of(envelope),),
                    trigger=envelope,
                    key=f"commission_research:{decision.topic}",
                )
            )
