"""The marketing agent: campaigns within guardrails, the claims-review loop with legal, growth experiments,
complaint comms."""

from __future__ import annotations

from decimal import Decimal

from pydantic import Field

from coalition.agents.narrator import Narrator
from coalition.agents.workflow import CopyRequest, FunctionAgent, MessageDraft, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import AgentMessage, Observation, VerdictIssued
from coalition.packs.helios.agents.marketing import engine
from coalition.packs.helios.memory import HeliosMemory
from coalition.packs.helios.payloads import (
    ClaimsReview,
    CustomerComplaints,
    ExperimentPlan,
    ExperimentResult,
    GrowthGoal,
    PriceGuardrails,
)


class MarketingMemory(HeliosMemory):
    """Marketing remembers finance's guardrails, pending claims reviews and the experiments it was asked to run."""

    guardrails: PriceGuardrails | None = None
    reviews_requested: dict[str, str] = Field(default_factory=dict)  # campaign id -> denied proposal id
    experiments: dict[str, ExperimentPlan] = Field(default_factory=dict)  # experiment id -> its plan


class MarketingAgent(FunctionAgent[MarketingMemory]):
    """Chief Growth Agent: a controlled language system mapped to compliance-approved claims."""

    NAME = "marketing"
    REACTS_TO = frozenset(
        {
            "price.guardrails",
            "claims.review",
            "growth.goal",
            "customer.complaints",
            "experiment.plan",
            "experiment.result",
        }
    )
    REACTS_TO_VERDICTS = True

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, MarketingMemory())

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if isinstance(payload, VerdictIssued):
            self._after_verdict(envelope, payload, plan)
        elif isinstance(payload, AgentMessage):
            if payload.kind == "price.guardrails":
                self.memory.guardrails = self.data(envelope, PriceGuardrails)
            elif payload.kind == "claims.review":
                self._revise_after_review(envelope, plan)
        elif isinstance(payload, Observation):
            if payload.kind == "growth.goal":
                decision = engine.campaign(self.data(envelope, GrowthGoal), evidence_of(envelope), self._cap())
                self._launch(envelope, decision, plan, supersedes=None)
            elif payload.kind == "customer.complaints":
                self._complaints(envelope, payload, plan)
            elif payload.kind == "experiment.plan":
                self._start_experiment(envelope, plan)
            elif payload.kind == "experiment.result":
                self._experiment_result(envelope, plan)

    def _cap(self) -> Decimal | None:
        brief = self.memory.brief
        return engine.max_discount(self.memory.guardrails, brief.max_discount_pct if brief is not None else None)

    def _launch(
        self, trigger: Envelope, decision: engine.CampaignDecision, plan: Plan, *, supersedes: str | None
    ) -> None:
        plan.propose(
            ProposalDraft(
                action="launch_campaign",
                args=decision.args,
                facts=decision.facts,
                evidence=(evidence_of(trigger),),
                trigger=trigger,
                key=engine.campaign_key(decision.args),
                supersedes=supersedes,
            )
        )

    def _after_verdict(self, envelope: Envelope, verdict: VerdictIssued, plan: Plan) -> None:
        record = self.memory.proposals.get(verdict.proposal_id)
        if verdict.outcome != "deny" or record is None or record.action != "launch_campaign":
            return
        if not self.memory.may_revise(record.proposal_id):
            return
        reason = engine.why_denied(verdict)
        campaign_id = str(record.args["campaign_id"])
        if reason == "claims" and campaign_id not in self.memory.reviews_requested:
            request, facts = engine.review_request(record.args, verdict)
            self.memory.reviews_requested[campaign_id] = record.proposal_id
            plan.tell(
                MessageDraft(
                    to=("legal",),
                    kind="claims.review_request",
                    data=request.model_dump(mode="json"),
                    facts=facts,
                    evidence=(evidence_of(envelope),),
                    trigger=envelope,
                )
            )
        elif reason == "discount":
            decision = engine.capped_discount(record.args, self._cap())
            if decision is not None:
                self._launch(envelope, decision, plan, supersedes=record.proposal_id)

    def _revise_after_review(self, envelope: Envelope, plan: Plan) -> None:
        review = self.data(envelope, ClaimsReview)
        denied = self.memory.reviews_requested.get(review.campaign_id)
        if denied is None or not self.memory.may_revise(denied):
            return
        record = self.memory.proposals[denied]
        self._launch(envelope, engine.revised_campaign(record.args, review), plan, supersedes=denied)

    def _start_experiment(self, envelope: Envelope, plan: Plan) -> None:
        experiment = self.data(envelope, ExperimentPlan)
        if experiment.experiment_id in self.memory.experiments:
            return  # a plan is acted on once; a repeated plan is not a second experiment
        self.memory.experiments[experiment.experiment_id] = experiment
        market, brief = self.memory.market, self.memory.brief
        budget = market.budgets.get(self.NAME) if market is not None else None
        allowed = brief.allowed_jurisdictions if brief is not None else []
        decision = engine.start_experiment(experiment, budget, allowed)
        if decision is not None:
            self._experiment_proposal(envelope, "run_experiment", decision, plan)

    def _experiment_result(self, envelope: Envelope, plan: Plan) -> None:
        result = self.data(envelope, ExperimentResult)
        state = engine.experiment_state(result.experiment_id, self.memory.proposals)
        decision = engine.after_result(self.memory.experiments.get(result.experiment_id), result, state)
        if decision is None:
            return
        if decision.stop is not None:
            self._experiment_proposal(envelope, "stop_experiment", decision.stop, plan)
        plan.tell(
            MessageDraft(
                to=("finance",),
                kind="growth.metrics",
                data=decision.metrics.model_dump(mode="json"),
                facts=decision.metrics_facts,
                evidence=(evidence_of(envelope),),
                trigger=envelope,
            )
        )

    def _experiment_proposal(
        self, trigger: Envelope, action: str, decision: engine.ExperimentDecision, plan: Plan
    ) -> None:
        plan.propose(
            ProposalDraft(
                action=action,
                args=decision.args,
                facts=decision.facts,
                evidence=(evidence_of(trigger),),
                trigger=trigger,
                key=decision.key,
            )
        )

    def _complaints(self, envelope: Envelope, payload: Observation, plan: Plan) -> None:
        response = engine.complaints_response(self.data(envelope, CustomerComplaints), evidence_of(envelope))
        if response is None:
            return
        evidence = (evidence_of(envelope),)
        plan.propose(
            ProposalDraft(
                action="pause_settlement",
                args=response.pause_args,
                facts=response.pause_facts,
                evidence=evidence,
                trigger=envelope,
                key=f"pause_settlement:{response.pause_args['region']}:{response.incident_id}",
            )
        )
        plan.propose(
            ProposalDraft(
                action="notify_customers",
                args=response.notify_args,
                facts=response.notify_facts,
                evidence=evidence,
                trigger=envelope,
                key=f"notify_customers:{response.incident_id}",
                copy=CopyRequest(
                    arg="message", audience=response.audience, facts=response.copy_facts, untrusted=payload.text
                ),
            )
        )
