"""The billing desk's agents, each a coalition.agents FunctionAgent (a LangGraph graph: observe → analyze → draft →
propose) over its engine in engines.py:

- `billing`: the billing resolver — escalation triggers, fee waivers, billing-error credits, outage compensation,
  cancellation without penalty, and the customer's answer once what it describes is settled;
- `retention`: retention offer tiers for churn signals;
- `outreach`: fair proactive outreach after an outage, and re-engagement after days without login.

Every decision comes from the policy's eligibility tables. The tables are the pack's default policy until a
`policy.brief` observation carries an `eligibility` section (with its `limits`): then the brief's."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from coalition.agents.errors import UnusableInput
from coalition.agents.memory import AgentMemory, ProposalRecord
from coalition.agents.narrator import Narrator
from coalition.agents.workflow import CopyRequest, FunctionAgent, Notice, Plan, ProposalDraft, evidence_of
from coalition.bus.envelope import Envelope
from coalition.bus.messages import Observation
from coalition.packs.billing_desk import engines
from coalition.packs.billing_desk.engines import AccountView, CaseData, OutageData, Snapshot, Step
from coalition.packs.billing_desk.rules import Eligibility, PolicyProblem, default_eligibility


class DeskMemory(AgentMemory):
    """The latest account snapshot and the outages seen (facts, not decisions)."""

    today: int = 0
    accounts: dict[str, AccountView] = Field(default_factory=dict)
    outages: dict[str, OutageData] = Field(default_factory=dict)


class DeskAgent(FunctionAgent[DeskMemory]):
    """What the desk's agents share: the policy's tables, and the snapshot and outages folded in before reacting."""

    NAME: ClassVar[str]

    def __init__(self, narrator: Narrator, rules: Eligibility | None = None) -> None:
        super().__init__(narrator, DeskMemory())
        self.rules = rules if rules is not None else default_eligibility()
        self._unusable: dict[str, str] = {}  # envelope id → why its policy brief was not used

    def prepare(self, inbox: Sequence[Envelope]) -> None:
        for envelope in inbox:
            payload = envelope.payload
            if not isinstance(payload, Observation):
                continue
            if payload.kind == "policy.brief" and isinstance(payload.data.get("eligibility"), Mapping):
                try:  # a brief whose tables do not compile is rejected (react); the tables in force stay
                    self.rules = Eligibility.from_policy(payload.data, f"policy.brief {payload.subject}".strip())
                except PolicyProblem as exc:
                    self._unusable[envelope.id] = str(exc)
            elif payload.kind == "accounts.snapshot":
                snapshot = self.data(envelope, Snapshot)
                self.memory.today = snapshot.day
                self.memory.accounts = {a.account_id: a for a in snapshot.accounts}
            elif payload.kind == "outage":
                outage = self.data(envelope, OutageData)
                self.memory.outages[outage.outage_id] = outage

    def react(self, envelope: Envelope, plan: Plan) -> None:
        problem = self._unusable.pop(envelope.id, None)
        if problem is not None:
            raise UnusableInput(self.NAME, "policy.brief", envelope.id, problem)
        self.respond(envelope, plan)

    def respond(self, envelope: Envelope, plan: Plan) -> None:
        """What this agent does with one input (after the whole inbox was folded in by `prepare`)."""
        raise NotImplementedError

    def propose(self, plan: Plan, step: Step, envelope: Envelope) -> None:
        plan.propose(ProposalDraft(step.action, step.args, step.facts, (evidence_of(envelope),), envelope, step.key))

    def kind(self, envelope: Envelope) -> str | None:
        payload = envelope.payload
        return payload.kind if isinstance(payload, Observation) else None


class BillingAgent(DeskAgent):
    """Billing resolver: eligibility checks → adjustment or escalation → the customer's answer (C1-C6, C8)."""

    NAME = "billing"
    REACTS_TO = frozenset({"case", "outage", "accounts.snapshot", "policy.brief"})

    def __init__(self, narrator: Narrator, rules: Eligibility | None = None) -> None:
        super().__init__(narrator, rules)

    def respond(self, envelope: Envelope, plan: Plan) -> None:
        kind = self.kind(envelope)
        if kind == "outage":
            outage = self.data(envelope, OutageData)
            for account_id in sorted(set(outage.accounts)):
                step = engines.outage_credit(outage, account_id, self.rules)
                if step is not None and account_id in self.memory.accounts:
                    self.propose(plan, step, envelope)
        elif kind == "case":
            case = self.data(envelope, CaseData)
            if case.kind != "churn_signal":
                self._case(case, envelope, plan)

    def _case(self, case: CaseData, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        text = payload.text if isinstance(payload, Observation) else None
        resolution = engines.resolve_case(
            case, self.memory.accounts.get(case.account_id), self.rules, self.memory.outages
        )
        for step in resolution.steps:
            self.propose(plan, step, envelope)
        keys = tuple(step.key for step in resolution.steps)

        def words(records: Mapping[str, ProposalRecord | None]) -> CopyRequest:
            statuses = {key: (r.status if r is not None else None) for key, r in records.items()}
            outcome = engines.told_outcome(resolution, statuses)
            return CopyRequest(
                arg="message",
                audience=f"customer {case.account_id}",
                facts=engines.outcome_facts(resolution, outcome),
                untrusted=text or None,
            )

        args: dict[str, Any] = {"account_id": case.account_id, "case_id": case.case_id, "rule": resolution.rule}
        draft = ProposalDraft(
            "notify_customer",
            args,
            engines.outcome_facts(resolution, resolution.outcome),
            (evidence_of(envelope),),
            envelope,
            f"notify:{case.case_id}",
        )
        plan.notify_after(Notice(draft, after=keys, words=words))


class RetentionAgent(DeskAgent):
    """Retention: the offer tier the policy assigns by tenure, usage and churn risk; the tone is the model's (C9)."""

    NAME = "retention"
    REACTS_TO = frozenset({"case", "outage", "accounts.snapshot", "policy.brief"})  # outages fold into memory

    def __init__(self, narrator: Narrator, rules: Eligibility | None = None) -> None:
        super().__init__(narrator, rules)

    def respond(self, envelope: Envelope, plan: Plan) -> None:
        if self.kind(envelope) != "case":
            return
        case = self.data(envelope, CaseData)
        if case.kind != "churn_signal":
            return
        step = engines.retention_offer(case, self.memory.accounts.get(case.account_id), self.rules)
        if step is not None:
            self.propose(plan, step, envelope)


class OutreachAgent(DeskAgent):
    """Outreach: the contact list after an outage in the policy's fair order (C7); a check-in after days without
    login (C13)."""

    NAME = "outreach"
    REACTS_TO = frozenset({"outage", "accounts.snapshot", "policy.brief"})

    def __init__(self, narrator: Narrator, rules: Eligibility | None = None) -> None:
        super().__init__(narrator, rules)

    def respond(self, envelope: Envelope, plan: Plan) -> None:
        kind = self.kind(envelope)
        if kind == "outage":
            step = engines.outreach_wave(self.data(envelope, OutageData), self.memory.accounts, self.rules)
            if step is not None:
                self.propose(plan, step, envelope)
        elif kind == "accounts.snapshot":
            for step in engines.reengagements(self.data(envelope, Snapshot), self.rules):
                if not self.memory.ever_proposed(step.key):
                    plan.propose(
                        ProposalDraft(
                            step.action,
                            step.args,
                            step.facts,
                            (evidence_of(envelope),),
                            envelope,
                            step.key,
                            copy=CopyRequest(
                                arg="message", audience=f"customer {step.args['account_id']}", facts=step.facts
                            ),
                        )
                    )
