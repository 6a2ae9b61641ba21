"""The governance service on the bus: proposals in; verdicts, authorizations and resolutions out.

Each superstep it folds the world's facts published on the bus in earlier steps (observations, executions,
the run's start), resolves escalations that reached their quorum, were rejected or expired, then evaluates the
step's proposals in canonical order (agent name, then stream order). Its own outputs are folded into its
state as it publishes them, so a later proposal of the same step sees an earlier one's budget reservation.

Human decisions live in the ledger (any process may append them). They are taken in only at decision points
that the runner chooses — after a day has settled — and only once the simulated clock has reached the time
they were recorded at, so that a resumed or replayed run takes each decision at the same point of the story.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import structlog

from coalition.bus.base import Bus, Delivery
from coalition.bus.canonical import canonical_json
from coalition.bus.clock import Clock, IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.message import Message
from coalition.bus.messages import (
    ActionAuthorized,
    ActionProposed,
    DeadLettered,
    EscalationResolved,
    ProposalHeld,
    ReviewSampled,
    RunStarted,
    ShadowVerdict,
    VerdictIssued,
)
from coalition.bus.topics import AUTHORIZATIONS, CONTROL, DEAD_LETTERS, EXECUTIONS, OBSERVATIONS, PROPOSALS, VERDICTS
from coalition.governance.decision_signatures import RunIdentities, decision_entry_problem
from coalition.governance.escalation import Decision, Escalation
from coalition.governance.evaluate import evaluate
from coalition.governance.lanes import ASSISTIVE, DRAFT_REVIEW
from coalition.governance.money import usd
from coalition.governance.policy import Policy
from coalition.governance.rules.budgets import MoneyBudget, overrun
from coalition.governance.state import GovernanceState, charged_amount
from coalition.governance.tiers import SAMPLED, sample_draw
from coalition.governance.verdict import Verdict
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry

GROUP = "governance"
SOURCE = "governance"
FACT_TOPICS = (CONTROL, OBSERVATIONS, EXECUTIONS)  # what governance learns about the world, in this order
HUMAN_DECISIONS = ("approval", "rejection")

log = structlog.get_logger(__name__)


def _named(decisions: tuple[Decision, ...]) -> tuple[str, str]:
    """'name (role), …' and their reasons joined, for the decisions of one kind."""
    return ", ".join(f"{d.approver} ({d.role})" for d in decisions), "; ".join(d.reason for d in decisions)


def resolution_text(escalation: Escalation) -> str:
    """A rejection's resolution names who rejected and, separately, who had approved before (four-eyes)."""
    rejected_by, rejected_why = _named(escalation.rejections)
    text = f"rejected by {rejected_by}: {rejected_why}"
    if escalation.approvals:
        approved_by, approved_why = _named(escalation.approvals)
        text += f"; approved before that by {approved_by}: {approved_why}"
    return text


def idempotency_key(authorization_id: str, action: str, args: dict[str, object]) -> str:
    """sha256(authorization_id ‖ action ‖ canonical args): the executor applies each key at most once."""
    digest = hashlib.sha256(authorization_id.encode())
    digest.update(b"\x1f" + action.encode() + b"\x1f")
    digest.update(canonical_json(args))
    return digest.hexdigest()


class GovernanceService:
    """Governance as a participant of the superstep loop (phase B)."""

    def __init__(
        self,
        bus: Bus,
        ledger: Ledger,
        policy: Policy,
        *,
        ids: IdFactory,
        clock: Clock,
        run_id: str,
        consumer: str = "governance-1",
        state: GovernanceState | None = None,
        shadow_policy: Policy | None = None,
        seed: int | str = 0,
    ) -> None:
        self._bus = bus
        self._seed = seed  # the run's seed: with the proposal id, it draws the sampled tier's sample
        self._ledger = ledger
        self._policy = policy
        self._shadow = shadow_policy  # evaluated beside the policy on every proposal, recorded, never acted on
        self._ids = ids.child("governance")
        self._clock = clock
        self._run_id = run_id
        self._consumer = consumer
        self._state = state or GovernanceState.initial(policy, run_id=run_id)
        self._applied: set[str] = set()  # envelope ids already folded (own outputs, proposals read)
        self._decided: set[str] = set()  # proposal ids with a verdict: a redelivered proposal is not re-decided
        self._taken: set[int] = set()  # ledger seqs of human decisions already folded
        self._run_identities: RunIdentities | None = None
        self._accept_runs: tuple[str, ...] = ()  # a re-execution: the original run's bound decisions count here
        self._held_facts: list[Delivery] = []  # facts published in the current step, for the next one
        self._superstep = 0
        self._budget = MoneyBudget(policy.budgets.agents, policy.gate("budget_overrun"))
        for topic in (PROPOSALS, *FACT_TOPICS):
            bus.ensure_group(topic, GROUP)

    def accept_decisions_of(self, run_id: str) -> None:
        """This run re-executes `run_id` (a replay, a verify, a what-if): the human decisions signed for that run
        are taken here as they were signed. Only the process that re-executes says so: no ledger entry can."""
        self._accept_runs = (run_id,)
        self._run_identities = None

    @property
    def state(self) -> GovernanceState:
        return self._state

    @property
    def policy(self) -> Policy:
        return self._policy

    def pending(self) -> list[Escalation]:
        """Open escalations (waiting for humans), oldest first."""
        return self._state.open_escalations()

    # ----- the superstep ---------------------------------------------------------------------------------

    def step(self, superstep: int) -> int:
        """Handle one superstep; returns how many messages were published."""
        self._superstep = superstep
        now = self._clock.now()
        self._learn_facts(superstep)
        self._state = self._state.at(now)
        out: list[tuple[str, Envelope]] = []
        out.extend(self._resolve_decided(now))
        out.extend(self._expire(now))
        deliveries = self._drain([PROPOSALS])
        proposals: list[tuple[int, Envelope, ActionProposed]] = []
        for index, delivery in enumerate(deliveries):
            envelope = delivery.envelope
            if envelope is None or not isinstance(envelope.payload, ActionProposed):
                out.append(self._dead_letter(delivery, now))
                continue
            proposals.append((index, envelope, envelope.payload))
        proposals.sort(key=lambda item: (item[2].agent, item[0]))
        for _, envelope, proposal in proposals:
            out.extend(self._decide(envelope, proposal, now))
        if out:
            self._bus.publish_many(out)
        if deliveries:
            self._bus.ack(GROUP, deliveries)
        self._ids.new()  # the id a step.done report once took: ledgers recorded before its removal replay identical
        return len(out)

    def tick(self, now: datetime | None = None, *, take_decisions: bool = True) -> int:
        """Expire overdue escalations now (expired = deny); returns how many resolutions were published.

        `take_decisions=False`: the caller takes decisions only at its recorded decision points (the runner)."""
        when = now or self._clock.now()
        if take_decisions:
            self.accept_decisions(when)  # a decision recorded in time (but not yet folded) must not be expired
        self._state = self._state.at(when)
        out = self._expire(when)
        if out:
            self._bus.publish_many(out)
        return len(out)

    def accept_decisions(self, now: datetime | None = None) -> int:
        """A decision point: fold the human decisions recorded in the ledger for escalations that are open now,
        recorded at or before `now` (simulated). Returns how many were taken; the next step resolves them."""
        return len(self.take_decisions(now))

    def take_decisions(self, now: datetime | None = None, *, only: Sequence[str] | None = None) -> list[LedgerEntry]:
        """accept_decisions, returning the entries taken. `only`: exactly these decisions (message ids), in this
        order — the ones an earlier attempt or the original run recorded taking at this point."""
        when = now or self._clock.now()
        open_ids = {e.proposal_id for e in self._state.open_escalations()}
        decisions = [
            entry
            for kind in HUMAN_DECISIONS
            for entry in self._ledger.query(LedgerQuery(run_id=self._run_id, kind=kind))
        ]
        if only is not None:
            by_id: dict[str | None, LedgerEntry] = {}
            for entry in sorted(decisions, key=lambda e: e.seq):  # the first signed one under each id is the one the
                # run took: a later one under its id is an altered ledger's, and so is an unsigned one filed under it
                # before (an id is derived from the proposal and the approver: it can be written before they decide)
                if entry.message_id not in by_id and decision_entry_problem(entry, self._identities()) is None:
                    by_id[entry.message_id] = entry
            chosen = [by_id[m] for m in only if m in by_id]
        else:  # in ledger order, as the approvals inbox folds them: a rejection recorded before an approval wins
            chosen = [e for e in sorted(decisions, key=lambda e: e.seq) if e.subject in open_ids and e.sim_time <= when]
        taken: list[LedgerEntry] = []
        for entry in chosen:
            if entry.seq in self._taken:
                continue
            self._taken.add(entry.seq)
            problem = decision_entry_problem(entry, self._identities())
            if problem is not None:  # written past the approvals service: it decides nothing (ledger verify shows it)
                log.warning("governance.unsigned_decision", seq=entry.seq, reason=problem)
                continue
            self._state = self._state.apply_entry(entry)
            taken.append(entry)
        return taken

    def _identities(self) -> RunIdentities:
        """Who may sign decisions in this run, as its run.started recorded it (read once it is in the ledger)."""
        if self._run_identities is None:
            for entry in self._ledger.query(LedgerQuery(run_id=self._run_id, kind="run", limit=5)):
                if entry.message_type == RunStarted.TYPE:
                    settings = entry.payload.get("settings")
                    self._run_identities = RunIdentities.from_settings(
                        settings if isinstance(settings, dict) else {},
                        run_id=self._run_id,
                        accept_runs=self._accept_runs,
                    )
        return self._run_identities or RunIdentities(
            {}, interactive=False, runs=frozenset({self._run_id, *self._accept_runs})
        )

    def _learn_facts(self, superstep: int) -> None:
        """Fold what the world published before this step (run start, observations, executions), canonically:
        topic order, then superstep, then stream order. Facts of this very step wait for the next one."""
        deliveries = self._held_facts + self._drain(FACT_TOPICS)
        ready = [d for d in deliveries if d.envelope is None or d.envelope.superstep < superstep]
        self._held_facts = [d for d in deliveries if d.envelope is not None and d.envelope.superstep >= superstep]
        rank = {topic: i for i, topic in enumerate(FACT_TOPICS)}
        ordered = sorted(
            (d for d in ready if d.envelope is not None),
            key=lambda d: (rank[d.topic], d.envelope.superstep if d.envelope is not None else 0),
        )  # sorted() is stable: stream order is kept within a topic and superstep
        for delivery in ordered:
            envelope = delivery.envelope
            assert envelope is not None
            if envelope.id in self._applied:
                continue
            self._applied.add(envelope.id)
            self._state = self._state.apply(
                envelope.payload,
                sim_time=envelope.sim_time,
                message_id=envelope.id,
                correlation_id=envelope.correlation_id,
            )
        if ready:
            self._bus.ack(GROUP, ready)

    def _decide(self, envelope: Envelope, proposal: ActionProposed, now: datetime) -> list[tuple[str, Envelope]]:
        if proposal.proposal_id in self._decided:
            return []
        self._decided.add(proposal.proposal_id)
        self._fold(proposal, envelope.id, envelope.correlation_id)
        sender = envelope.source
        if sender != f"agent:{proposal.agent}":  # an agent may only speak for itself (defence in depth)
            reason = f"the proposal says it comes from the {proposal.agent} agent but {sender} sent it; denied"
            verdict = Verdict("deny", (reason,), ("identity.sender",), policy_version=self._policy.version)
            return self._issue(proposal, verdict, now, envelope.correlation_id, envelope.id)
        return self._judge(proposal, now, envelope.correlation_id, envelope.id)

    def _judge(
        self, proposal: ActionProposed, now: datetime, correlation_id: str | None, causation_id: str | None
    ) -> list[tuple[str, Envelope]]:
        """Hold the proposal if an unresolved escalation it depends on is open (policy `holds`), else evaluate it."""
        hold = self._state.holder(proposal, self._policy.holds)
        if hold is not None:
            held_by, dependency = hold
            escalation = self._state.escalations[held_by]
            message = ProposalHeld(
                proposal_id=proposal.proposal_id,
                proposal_hash=proposal.proposal_hash,
                agent=proposal.agent,
                action=proposal.action,
                held_by=held_by,
                gate=escalation.gate,
                dependency=dependency,
                reason=(
                    f"held: it depends on {held_by} ({dependency}), escalated at gate {escalation.gate}; approval "
                    "releases it to governance, rejection or expiry cancels it"
                ),
                policy_version=self._policy.version,
            )
            log.info("governance.held", proposal_id=proposal.proposal_id, held_by=held_by)
            return [self._emit(VERDICTS, message, now, correlation_id, causation_id)]
        verdict = self._assistive(proposal) or evaluate(proposal, self._state, self._policy)
        shadow = None
        if self._shadow is not None:
            would = evaluate(proposal, self._state, self._shadow)
            shadow = ShadowVerdict(
                outcome=would.outcome,
                reasons=list(would.reasons),
                rule_ids=list(would.rule_ids),
                gate=would.gate,
                policy_version=would.policy_version,
            )
        return self._issue(proposal, verdict, now, correlation_id, causation_id, shadow=shadow)

    def _assistive(self, proposal: ActionProposed) -> Verdict | None:
        """The assistive lane (governance/lanes.py): a proposal of an action in it is a draft, escalated at gate
        draft_review for a person to adopt, amend or drop — unless it is the final proposal of a draft a person
        adopted (it supersedes that draft and carries exactly the adopted action and arguments), which is then
        evaluated like any proposal. A final that is not what the person adopted is denied. None: not the lane's."""
        lane = self._policy.lanes.get(proposal.agent)
        if lane is None or lane.lane_of(proposal.action) != ASSISTIVE:
            return None
        draft = self._state.escalations.get(proposal.supersedes or "")
        if draft is not None and draft.is_draft:
            problem = (
                f"its draft {draft.proposal_id} was {draft.status}, not adopted"
                if draft.status != "approved"
                else f"draft {draft.proposal_id} was already finalised by {draft.final}"
                if draft.final is not None
                else f"it proposes {proposal.action} but the draft was {draft.proposal.action}"
                if proposal.action != draft.proposal.action
                else "its arguments are not the ones the person adopted"
                if canonical_json(proposal.args) != canonical_json(draft.adopted_args)
                else None
            )
            if problem is None:
                return None
            reason = f"assistive lane: this is not the draft a person adopted — {problem}"
            return Verdict("deny", (reason,), ("lane.assistive",), policy_version=self._policy.version)
        would = evaluate(proposal, self._state, self._policy)
        said = {"allow": "allowed", "deny": "denied", "escalate": f"escalated at gate {would.gate}"}[would.outcome]
        preview = f"would be {said}" + ("" if would.allowed else f": {would.reasons[0]}")
        reason = (
            f"assistive lane: the {proposal.agent} agent's draft of {proposal.action} waits for a person to adopt, "
            f"amend or drop it (governance's preview of the draft: {preview})"
        )
        return Verdict(
            "escalate",
            (reason,),
            ("lane.assistive",),
            gate=DRAFT_REVIEW,
            approver_roles=lane.review_roles,
            approvals_required=1,
            expires_after=lane.review_after,
            policy_version=self._policy.version,
        )

    def _end_holds(self, escalation: Escalation, outcome: str, now: datetime) -> list[tuple[str, Envelope]]:
        """After an escalation's resolution: approval releases what it held to governance (in the order held);
        rejection, expiry or a denial at approval time cancels each held proposal with a deny verdict."""
        out: list[tuple[str, Envelope]] = []
        for proposal_id, hold in self._state.held_by(escalation.proposal_id):
            proposal = self._state.proposals.get(proposal_id)
            if proposal is None:
                continue
            if outcome == "approved":
                out.extend(self._judge(proposal, now, hold.correlation_id, hold.message_id))
                continue
            reason = (
                f"cancelled: it depends on {escalation.proposal_id} ({hold.dependency}), whose escalation at gate "
                f"{escalation.gate} was {outcome}"
            )
            verdict = Verdict(
                "deny", (reason,), ("gate.holds_dependents",), gate=escalation.gate, policy_version=self._policy.version
            )
            out.extend(self._issue(proposal, verdict, now, hold.correlation_id, hold.message_id))
        return out

    def _issue(
        self,
        proposal: ActionProposed,
        verdict: Verdict,
        now: datetime,
        correlation_id: str | None,
        causation_id: str | None,
        *,
        shadow: ShadowVerdict | None = None,
    ) -> list[tuple[str, Envelope]]:
        expires_at = now + verdict.expires_after if verdict.expires_after is not None else None
        p_hash = proposal.proposal_hash
        issued = VerdictIssued(
            proposal_id=proposal.proposal_id,
            proposal_hash=p_hash,
            agent=proposal.agent,
            action=proposal.action,
            outcome=verdict.outcome,
            reasons=list(verdict.reasons),
            rule_ids=list(verdict.rule_ids),
            gate=verdict.gate,
            approver_roles=list(verdict.approver_roles),
            approvals_required=verdict.approvals_required,
            expires_at=expires_at,
            policy_version=verdict.policy_version,
            shadow=shadow,
        )
        log.info(
            "governance.verdict", proposal_id=proposal.proposal_id, outcome=verdict.outcome, rules=verdict.rule_ids
        )
        out = [self._emit(VERDICTS, issued, now, correlation_id, causation_id)]
        if verdict.outcome == "allow":
            out.append(
                self._authorize(
                    proposal,
                    p_hash,
                    basis="policy",
                    rule_ids=list(verdict.rule_ids),
                    now=now,
                    correlation_id=correlation_id or proposal.proposal_id,
                )
            )
            out.extend(self._sample(proposal, now, correlation_id or proposal.proposal_id))
        draft = self._state.escalations.get(proposal.supersedes or "")
        if draft is not None and draft.is_draft and draft.final == proposal.proposal_id:
            # the final proposal of an adopted draft: what the draft held is judged now (held again by the final's
            # own escalation, if it escalates), or cancelled when the final is denied
            outcome = "approved" if verdict.outcome != "deny" else "adopted, but its final proposal was denied"
            out.extend(self._end_holds(draft, outcome, now))
        return out

    def _sample(self, proposal: ActionProposed, now: datetime, correlation_id: str) -> list[tuple[str, Envelope]]:
        """An allowed proposal of a `sampled` tier drawn for review (the draw: run seed and proposal id only)."""
        tier = self._policy.tiers.of(proposal.agent, proposal.action)
        if tier.tier != SAMPLED or tier.rate is None:
            return []
        draw = sample_draw(self._seed, proposal.proposal_id)
        if draw >= tier.rate:
            return []
        message = ReviewSampled(
            proposal_id=proposal.proposal_id,
            proposal_hash=proposal.proposal_hash,
            agent=proposal.agent,
            action=proposal.action,
            rate=f"{tier.rate:g}",
            draw=f"{draw:.6f}",
            policy_version=self._policy.version,
        )
        log.info("governance.sampled", proposal_id=proposal.proposal_id, draw=draw)
        return [self._emit(VERDICTS, message, now, correlation_id, None)]

    def _resolve_decided(self, now: datetime) -> list[tuple[str, Envelope]]:
        out: list[tuple[str, Envelope]] = []
        for escalation in list(self._state.escalations.values()):
            if escalation.resolved or escalation.status not in ("approved", "rejected"):
                continue
            correlation = escalation.correlation_id or escalation.proposal_id
            who, why = _named(escalation.approvals)
            if escalation.status == "rejected":
                message = EscalationResolved(
                    proposal_id=escalation.proposal_id,
                    proposal_hash=escalation.proposal_hash,
                    outcome="rejected",
                    approvers=[d.approver for d in escalation.rejections],
                    reason=resolution_text(escalation),
                )
                out.append(self._emit(VERDICTS, message, now, correlation, escalation.verdict_message_id))
                out.extend(self._end_holds(escalation, "rejected", now))
                continue
            if escalation.is_draft:  # adopted: nothing is authorized; the agent's final proposal is evaluated
                verb = "amended" if escalation.amended else "adopted"
                message = EscalationResolved(
                    proposal_id=escalation.proposal_id,
                    proposal_hash=escalation.proposal_hash,
                    outcome="approved",
                    approvers=list(escalation.approvers),
                    reason=f"draft {verb} by {who}: {why}",
                    adopted_args=escalation.adopted_args,
                )
                out.append(self._emit(VERDICTS, message, now, correlation, escalation.verdict_message_id))
                continue  # what the draft holds waits for its final proposal's verdict (_issue)
            # An approval never overrides a hard limit: re-check the proposal against today's state.
            recheck = evaluate(escalation.proposal, self._state, self._policy)
            if recheck.outcome == "deny":
                message = EscalationResolved(
                    proposal_id=escalation.proposal_id,
                    proposal_hash=escalation.proposal_hash,
                    outcome="rejected",
                    approvers=list(escalation.approvers),
                    reason=f"approved by {who}, but now denied: {recheck.reasons[0]}",
                )
                out.append(self._emit(VERDICTS, message, now, correlation, escalation.verdict_message_id))
                out.extend(self._end_holds(escalation, "denied when approved", now))
                continue
            increase = self._budget_increase(escalation)
            message = EscalationResolved(
                proposal_id=escalation.proposal_id,
                proposal_hash=escalation.proposal_hash,
                outcome="approved",
                approvers=list(escalation.approvers),
                reason=f"approved by {who}: {why}",
                budget_increase_usd=increase,
            )
            out.append(self._emit(VERDICTS, message, now, correlation, escalation.verdict_message_id))
            out.append(
                self._authorize(
                    escalation.proposal,
                    escalation.proposal_hash,
                    basis="approval",
                    rule_ids=list(escalation.rule_ids),
                    now=now,
                    correlation_id=correlation,
                )
            )
            out.extend(self._end_holds(escalation, "approved", now))
        return out

    def _budget_increase(self, escalation: Escalation) -> str | None:
        """Approving a proposal that overruns its budget raises the budget by the overrun (measured now)."""
        proposal = escalation.proposal
        amount = charged_amount(proposal.action, proposal.args)
        if amount is None:
            return None
        over = overrun(self._state, proposal.agent, self._budget.limit(proposal.agent), amount)
        return usd(over) if over else None

    def _expire(self, now: datetime) -> list[tuple[str, Envelope]]:
        out: list[tuple[str, Envelope]] = []
        for escalation in self._state.open_escalations():
            if not escalation.is_overdue(now):
                continue
            expires = escalation.expires_at.isoformat() if escalation.expires_at else "?"
            got = f"{len(escalation.approvals)} of {escalation.approvals_required} approvals"
            message = EscalationResolved(
                proposal_id=escalation.proposal_id,
                proposal_hash=escalation.proposal_hash,
                outcome="expired",
                approvers=list(escalation.approvers),
                reason=f"no decision by {expires} ({got}); an expired escalation is denied",
            )
            correlation = escalation.correlation_id or escalation.proposal_id
            out.append(self._emit(VERDICTS, message, now, correlation, escalation.verdict_message_id))
            out.extend(self._end_holds(escalation, "expired", now))
        return out

    def _authorize(
        self,
        proposal: ActionProposed,
        p_hash: str,
        *,
        basis: str,
        rule_ids: list[str],
        now: datetime,
        correlation_id: str,
    ) -> tuple[str, Envelope]:
        authorization_id = self._ids.derive("authorization", proposal.proposal_id)
        message = ActionAuthorized(
            authorization_id=authorization_id,
            proposal_id=proposal.proposal_id,
            proposal_hash=p_hash,
            agent=proposal.agent,
            action=proposal.action,
            args=dict(proposal.args),
            idempotency_key=idempotency_key(authorization_id, proposal.action, proposal.args),
            basis="approval" if basis == "approval" else "policy",
            rule_ids=rule_ids,
        )
        return self._emit(AUTHORIZATIONS, message, now, correlation_id, None)

    # ----- plumbing ----------------------------------------------------------------------------------------

    def _drain(self, topics: tuple[str, ...] | list[str]) -> list[Delivery]:
        deliveries: list[Delivery] = []
        while True:
            batch = self._bus.read(topics, GROUP, self._consumer, count=500)
            if not batch:
                return deliveries
            deliveries.extend(batch)

    def _fold(self, message: Message, message_id: str, correlation_id: str | None) -> None:
        self._applied.add(message_id)
        self._state = self._state.apply(message, message_id=message_id, correlation_id=correlation_id)

    def _wrap(
        self, message: Message, now: datetime, *, correlation_id: str | None, causation_id: str | None
    ) -> Envelope:
        return Envelope.wrap(
            message,
            id=self._ids.new(),
            source=SOURCE,
            run_id=self._run_id,
            superstep=self._superstep,
            sim_time=now,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )

    def _emit(
        self, topic: str, message: Message, now: datetime, correlation_id: str | None, causation_id: str | None
    ) -> tuple[str, Envelope]:
        envelope = self._wrap(message, now, correlation_id=correlation_id, causation_id=causation_id)
        self._fold(message, envelope.id, envelope.correlation_id)
        return topic, envelope

    def _dead_letter(self, delivery: Delivery, now: datetime) -> tuple[str, Envelope]:
        raw = delivery.raw
        envelope = delivery.envelope
        reason = delivery.error or (
            f"{envelope.type} is not a proposal" if envelope is not None else "undecodable message"
        )
        message = DeadLettered(
            topic=delivery.topic,
            group=GROUP,
            broker_id=delivery.broker_id,
            envelope_id=envelope.id if envelope is not None else None,
            deliveries=delivery.deliveries,
            reason=reason,
            raw_sha256=hashlib.sha256(raw).hexdigest(),
            raw_preview=raw[:200].decode("utf-8", errors="replace"),
        )
        log.warning("governance.dead_letter", broker_id=delivery.broker_id, reason=reason)
        return DEAD_LETTERS, self._wrap(message, now, correlation_id=None, causation_id=None)
