"""The ops agent: the outage runbook (incident, pause, credits, comms), restoration, fraud containment and
billing disputes."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from pydantic import Field

from coalition.agents.facts import Facts
from coalition.agents.memory import UNDECIDED, ProposalRecord
from coalition.agents.narrator import Narrator
from coalition.agents.workflow import (
    CopyRequest,
    FunctionAgent,
    MessageDraft,
    Notice,
    Plan,
    ProposalDraft,
    evidence_of,
)
from coalition.bus.envelope import Envelope
from coalition.bus.messages import Observation
from coalition.packs.helios.agents.ops import engine
from coalition.packs.helios.memory import HeliosMemory
from coalition.packs.helios.payloads import DisputeCase, MeterOutage, MeterRestored, SuspiciousTrades


class OpsMemory(HeliosMemory):
    """Ops remembers which region its executed pauses hold, for which incident (a proposed pause may never apply)."""

    paused: dict[str, str] = Field(default_factory=dict)  # region -> incident id, from applied executions only


class OpsAgent(FunctionAgent[OpsMemory]):
    """Chief Operations Agent: diagnose → propose action → execute within permissions → log."""

    NAME = "ops"
    REACTS_TO = frozenset({"meter.outage", "meter.restored", "suspicious.trades", "dispute"})

    def __init__(self, narrator: Narrator) -> None:
        super().__init__(narrator, OpsMemory())

    def react(self, envelope: Envelope, plan: Plan) -> None:
        payload = envelope.payload
        if isinstance(payload, Observation):
            if payload.kind == "meter.outage":
                self._outage(envelope, plan)
            elif payload.kind == "meter.restored":
                self._restored(envelope, plan)
            elif payload.kind == "suspicious.trades":
                self._fraud(envelope, plan)
            elif payload.kind == "dispute":
                self._dispute(envelope, plan)

    def _outage(self, envelope: Envelope, plan: Plan) -> None:
        brief = self.memory.brief
        tiers: dict[str, Decimal] = dict(brief.credit_tiers) if brief is not None else {}
        response = engine.outage_response(
            self.data(envelope, MeterOutage),
            evidence_of(envelope),
            tiers,
            brief.max_credit_usd if brief is not None else None,
            brief.incident_severity_bound if brief is not None else None,
        )
        evidence = (evidence_of(envelope),)
        incident = response.incident_id

        def propose(action: str, args: dict[str, object], facts: Facts, key: str) -> None:
            plan.propose(ProposalDraft(action, args, facts, evidence, envelope, key))

        propose("open_incident", response.incident_args, response.incident_facts, f"open_incident:{incident}")
        if self._pause_of(response.region, plan) is None:
            propose("pause_settlement", response.pause_args, response.pause_facts, f"pause_settlement:{incident}")
        credit_keys = [f"issue_credit:{incident}:{credit.customer_id}" for credit in response.credits]
        for credit, key in zip(response.credits, credit_keys, strict=True):
            propose("issue_credit", response.credit_args(credit), credit.facts, key)
        pause_key = f"pause_settlement:{incident}"

        def words(records: Mapping[str, ProposalRecord | None]) -> CopyRequest:
            pause = records.get(pause_key)
            credits = [records.get(key) for key in credit_keys]
            paid = [Decimal(str(r.args["amount_usd"])) for r in credits if r is not None and r.status == "applied"]
            facts = engine.outage_notice_facts(
                response.region,
                incident,
                paused=pause is not None and pause.status == "applied",
                credited=paid,
                not_credited=sum(1 for r in credits if r is not None and r.status != "applied"),
            )
            return CopyRequest(arg="message", audience=response.audience, facts=facts)

        plan.notify_after(
            Notice(
                ProposalDraft(
                    "notify_customers",
                    response.notify_args,
                    response.notify_facts,
                    evidence,
                    envelope,
                    f"notify_customers:{incident}",
                ),
                after=(pause_key, *credit_keys),
                words=words,
            )
        )
        plan.tell(
            MessageDraft(
                to=("finance", "marketing", "legal"),
                kind="incident.notice",
                data=response.notice.model_dump(mode="json"),
                facts=response.notice_facts,
                evidence=evidence,
                trigger=envelope,
            )
        )

    def executed(self, record: ProposalRecord) -> None:
        """A region is paused once ops' pause is applied, and no longer once its resume is."""
        if record.status != "applied" or record.action not in ("pause_settlement", "resume_settlement"):
            return
        region, incident = str(record.args["region"]), str(record.args["incident_id"])
        if record.action == "pause_settlement":
            self.memory.paused[region] = incident
        elif record.action == "resume_settlement" and self.memory.paused.get(region) == incident:
            del self.memory.paused[region]

    def _pause_of(self, region: str, plan: Plan) -> str | None:
        """The incident whose pause holds the region, or is on its way (proposed now or awaiting its verdict,
        approval or execution); None when nothing pauses it — a denied, rejected or failed pause does not."""
        if region in self.memory.paused:
            return self.memory.paused[region]
        on_the_way = [
            (draft.args["region"], draft.args["incident_id"])
            for draft in plan.drafts
            if isinstance(draft, ProposalDraft) and draft.action == "pause_settlement"
        ]
        on_the_way += [
            (record.args.get("region"), record.args.get("incident_id"))
            for record in self.memory.proposals.values()
            if record.action == "pause_settlement" and record.status in UNDECIDED
        ]
        return next((str(incident) for where, incident in on_the_way if where == region), None)

    def _restored(self, envelope: Envelope, plan: Plan) -> None:
        region = self.data(envelope, MeterRestored).region
        incident = self._pause_of(region, plan)
        if incident is None:
            return
        plan.propose(
            ProposalDraft(
                "resume_settlement",
                {"region": region, "incident_id": incident},
                engine.resume_facts(region, incident),
                (evidence_of(envelope),),
                envelope,
                f"resume_settlement:{incident}",
            )
        )

    def _fraud(self, envelope: Envelope, plan: Plan) -> None:
        response = engine.fraud_response(self.data(envelope, SuspiciousTrades), evidence_of(envelope))
        evidence = (evidence_of(envelope),)
        incident = response.incident_id
        plan.propose(
            ProposalDraft(
                "open_incident",
                response.incident_args,
                response.incident_facts,
                evidence,
                envelope,
                f"open_incident:{incident}",
            )
        )
        for account, facts in response.freezes:
            plan.propose(
                ProposalDraft(
                    "freeze_account",
                    {"account_id": account, "incident_id": incident, "reason": response.reason},
                    facts,
                    evidence,
                    envelope,
                    f"freeze_account:{account}",
                )
            )
        plan.tell(
            MessageDraft(
                to=("finance", "legal"),
                kind="incident.notice",
                data=response.notice.model_dump(mode="json"),
                facts=response.notice_facts,
                evidence=evidence,
                trigger=envelope,
            )
        )

    def _dispute(self, envelope: Envelope, plan: Plan) -> None:
        """Decide by the fixed rules, credit when eligible, and tell the customer (the wording may vary)."""
        brief = self.memory.brief
        tiers: dict[str, Decimal] = dict(brief.credit_tiers) if brief is not None else {}
        case = self.data(envelope, DisputeCase)
        decision = engine.dispute_decision(case, tiers, brief.max_credit_usd if brief is not None else None)
        evidence = (evidence_of(envelope),)
        credit_key = f"issue_credit:{case.case_id}:{case.customer_id}"
        if decision.eligible:
            plan.propose(
                ProposalDraft("issue_credit", decision.credit_args(), decision.facts, evidence, envelope, credit_key)
            )
        audience = f"customer {case.customer_id}"

        def words(records: Mapping[str, ProposalRecord | None]) -> CopyRequest:
            credit = records.get(credit_key)
            status = credit.status if credit is not None else None
            facts = engine.dispute_notice_facts(decision, status)
            # the planned credit is the notice's reason only if it was paid: one governance did not let through (a
            # person's amendment over the maximum, denied) is not cited beside a notice that says none was issued
            because = None if not decision.eligible or status == "applied" else [facts.decision]
            return CopyRequest(
                arg="message",
                audience=audience,
                facts=facts,
                untrusted=None,
                rationale=None if because is None else planned.model_copy(update={"reasons": because}),
            )

        planned = Facts(
            intent="propose",
            decision=f"answer dispute {case.case_id} for {audience}",
            reasons=[decision.facts.decision],
        )

        plan.notify_after(
            Notice(
                ProposalDraft(
                    "notify_customers",
                    {"incident_id": case.case_id, "audience": audience},
                    planned,
                    evidence,
                    envelope,
                    f"notify_customers:{case.case_id}",
                ),
                after=(credit_key,) if decision.eligible else (),
                words=words,
            )
        )
