"""How a bus message becomes a ledger entry (docs/design.md, "Messages → ledger entries"): one place, one table."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from coalition.bus import messages as m
from coalition.bus.envelope import Envelope
from coalition.bus.message import Message
from coalition.ledger.entry import EntryDraft, EnvelopeDraft, ModelRef


def _short(value: str, width: int = 12) -> str:
    return value if len(value) <= width else value[:width] + "…"


def _run_started(p: m.RunStarted) -> dict[str, Any]:
    return {
        "kind": "run",
        "actor": "runner",
        "actor_kind": "runner",
        "subject": p.scenario,
        "outcome": "started",
        "policy_version": p.policy_version,
        "rationale": (
            f"run started: scenario {p.scenario} with seed {p.seed} over {p.days} days under policy "
            f"{_short(p.policy_version)}"
        ),
    }


def _run_finished(p: m.RunFinished) -> dict[str, Any]:
    scenario = p.summary.get("scenario")
    failed = sum(1 for e in p.expectations if e.get("passed") is False or e.get("ok") is False)
    checked = f", {len(p.expectations)} expectations checked, {failed} failed" if p.expectations else ""
    return {
        "kind": "run",
        "actor": "runner",
        "actor_kind": "runner",
        "subject": scenario if isinstance(scenario, str) else "",
        "outcome": p.status,
        "rationale": f"run finished: {p.status}{checked}",
    }


def _observation(p: m.Observation) -> dict[str, Any]:
    about = f" about {p.subject}" if p.subject else ""
    to = f" for {', '.join(p.to)}" if p.to else ""
    return {
        "kind": "observation",
        "actor": "world",
        "actor_kind": "world",
        "subject": p.subject or p.kind,
        "evidence": [p.evidence_id] if p.evidence_id else [],
        "rationale": f"observed {p.kind}{about}{to}",
    }


def _agent_message(p: m.AgentMessage) -> dict[str, Any]:
    return {
        "kind": "message",
        "actor": f"agent:{p.sender}",
        "actor_kind": "agent",
        "subject": p.kind,
        "evidence": list(p.evidence),
        "rationale": p.summary.strip() or f"{p.sender} sent {p.kind} to {', '.join(p.to)}",
    }


def _proposal(p: m.ActionProposed) -> dict[str, Any]:
    model = (
        ModelRef(model_id=p.model.model_id, prompt_hash=p.model.prompt_hash, response_hash=p.model.response_hash)
        if p.model is not None
        else None
    )
    return {
        "kind": "proposal",
        "actor": f"agent:{p.agent}",
        "actor_kind": "agent",
        "subject": p.proposal_id,
        "evidence": list(p.evidence),
        "model": model,
        "rationale": p.rationale,
    }


def _verdict(p: m.VerdictIssued) -> dict[str, Any]:
    return {
        "kind": "verdict",
        "actor": "governance",
        "actor_kind": "governance",
        "subject": p.proposal_id,
        "outcome": p.outcome,
        "gate": p.gate,
        "rule_ids": list(p.rule_ids),
        "policy_version": p.policy_version,
        "rationale": "; ".join(p.reasons),
    }


def _held(p: m.ProposalHeld) -> dict[str, Any]:
    return {
        "kind": "verdict",
        "actor": "governance",
        "actor_kind": "governance",
        "subject": p.proposal_id,
        "outcome": "held",
        "gate": p.gate,
        "rule_ids": ["gate.holds_dependents"],
        "policy_version": p.policy_version,
        "rationale": p.reason,
    }


def _resolution(p: m.EscalationResolved) -> dict[str, Any]:
    return {
        "kind": "resolution",
        "actor": "governance",
        "actor_kind": "governance",
        "subject": p.proposal_id,
        "outcome": p.outcome,
        "approver": ", ".join(p.approvers) or None,
        "rationale": p.reason,
    }


def _authorization(p: m.ActionAuthorized) -> dict[str, Any]:
    rules = f" (rules: {', '.join(p.rule_ids)})" if p.rule_ids else ""
    return {
        "kind": "authorization",
        "actor": "governance",
        "actor_kind": "governance",
        "subject": p.proposal_id,
        "outcome": p.basis,
        "rule_ids": list(p.rule_ids),
        "rationale": f"authorized {p.action} for {p.agent} by {p.basis}{rules}",
    }


def _execution(p: m.ActionExecuted) -> dict[str, Any]:
    return {
        "kind": "execution",
        "actor": "executor",
        "actor_kind": "executor",
        "subject": p.proposal_id,
        "outcome": p.status,
        "rationale": p.detail,
    }


def _dead_letter(p: m.DeadLettered) -> dict[str, Any]:
    return {
        "kind": "dead_letter",
        "actor": "system",
        "actor_kind": "system",
        "subject": p.broker_id,
        "rationale": f"dead-lettered from {p.topic} (group {p.group}) after {p.deliveries} deliveries: {p.reason}",
    }


def _model_called(p: m.ModelCalled) -> dict[str, Any]:
    usage = f"{p.input_tokens}+{p.output_tokens} tokens, {p.cost_usd} USD"
    what = f"answered ({usage})" if p.status == "ok" else f"failed: {p.error}"
    return {
        "kind": "model_call",
        "actor": f"agent:{p.agent}",
        "actor_kind": "agent",
        "subject": p.call_id,
        "outcome": p.status,
        "model": ModelRef(model_id=p.model_id, prompt_hash=p.prompt_hash, response_hash=p.response_hash),
        "rationale": f"{p.agent} asked {p.model_id} for {p.purpose or 'text'}; {what}",
    }


def _model_stopped(p: m.ModelStopped) -> dict[str, Any]:
    return {
        "kind": "budget" if p.reason in ("budget", "rate_limit") else "model_call",
        "actor": f"agent:{p.agent}",
        "actor_kind": "agent",
        "subject": p.model_id,
        "outcome": f"stopped:{p.reason}",
        "rationale": f"{p.agent} did not use {p.model_id} for {p.purpose or 'text'}: {p.detail}",
    }


def _content_screened(p: m.ContentScreened) -> dict[str, Any]:
    return {
        "kind": "system",
        "actor": f"agent:{p.agent}",
        "actor_kind": "agent",
        "subject": p.content_hash,
        "outcome": p.verdict,
        "evidence": [p.content_hash],
        "rationale": (
            f"untrusted text {_short(p.content_hash)} screened {p.verdict} "
            f"({', '.join(p.flags) or 'no flags'}); withheld from the model"
        ),
    }


def _decisions_taken(p: m.DecisionsTaken) -> dict[str, Any]:
    if p.decisions:
        took = f"took {len(p.decisions)} human decision(s) on {', '.join(_short(x) for x in p.proposals)}"
    else:
        took = "no human decision to take"
    return {
        "kind": "decision_point",
        "actor": "runner",
        "actor_kind": "runner",
        "subject": f"day-{p.day}",
        "outcome": "taken" if p.decisions else "moved_on",
        "rationale": f"decision point on day {p.day}: {took}; {p.pending} escalation(s) still open",
    }


def _review_sampled(p: m.ReviewSampled) -> dict[str, Any]:
    return {
        "kind": "review",
        "actor": "governance",
        "actor_kind": "governance",
        "subject": p.proposal_id,
        "outcome": "sampled",
        "rule_ids": ["tier.sampled"],
        "policy_version": p.policy_version,
        "rationale": (
            f"sampled for review: {p.agent}'s {p.action} was allowed and executes; drawn for after-the-fact review "
            f"(draw {p.draw} < rate {p.rate}, fixed by the run's seed and the proposal id)"
        ),
    }


def _review_marked(p: m.ReviewMarked) -> dict[str, Any]:
    return {
        "kind": "review_mark",
        "actor": f"human:{p.reviewer}",
        "actor_kind": "human",
        "subject": p.proposal_id,
        "outcome": p.mark,
        "approver": p.reviewer,
        "rationale": p.reason,
    }


def _review_key(p: m.ReviewerKeyRecorded) -> dict[str, Any]:
    return {
        "kind": "review_key",
        "actor": f"human:{p.reviewer}",
        "actor_kind": "human",
        "subject": p.reviewer,
        "outcome": "bound",
        "approver": p.reviewer,
        "rationale": f"{p.reviewer}'s approver key, recorded with their first review mark in this run",
    }


def _human(kind: str, outcome: str) -> Callable[[Any], dict[str, Any]]:
    def fields(p: m.ApprovalGranted | m.ApprovalRejected) -> dict[str, Any]:
        return {
            "kind": kind,
            "actor": f"human:{p.approver}",
            "actor_kind": "human",
            "subject": p.proposal_id,
            "outcome": outcome,
            "approver": p.approver,
            "rationale": p.reason,
        }

    return fields


_FIELDS: dict[str, Callable[[Any], dict[str, Any]]] = {
    m.RunStarted.TYPE: _run_started,
    m.RunFinished.TYPE: _run_finished,
    m.Observation.TYPE: _observation,
    m.AgentMessage.TYPE: _agent_message,
    m.ActionProposed.TYPE: _proposal,
    m.VerdictIssued.TYPE: _verdict,
    m.EscalationResolved.TYPE: _resolution,
    m.ProposalHeld.TYPE: _held,
    m.ActionAuthorized.TYPE: _authorization,
    m.ActionExecuted.TYPE: _execution,
    m.DeadLettered.TYPE: _dead_letter,
    m.ModelCalled.TYPE: _model_called,
    m.ModelStopped.TYPE: _model_stopped,
    m.ContentScreened.TYPE: _content_screened,
    m.DecisionsTaken.TYPE: _decisions_taken,
    m.ReviewSampled.TYPE: _review_sampled,
    m.ReviewMarked.TYPE: _review_marked,
    m.ReviewerKeyRecorded.TYPE: _review_key,
    m.ApprovalGranted.TYPE: _human("approval", "approved"),
    m.ApprovalRejected.TYPE: _human("rejection", "rejected"),
}


def _other(message: Message) -> dict[str, Any]:
    """A registered type the table does not know yet: still recorded, as a system entry, never dropped."""
    return {
        "kind": "system",
        "actor": "system",
        "actor_kind": "system",
        "subject": message.TYPE,
        "rationale": f"recorded {message.TYPE} message (no specific ledger mapping)",
    }


def draft_from_envelope(env: Envelope) -> EntryDraft:
    """The ledger entry recording one envelope (every message on the bus is recorded)."""
    describe: Callable[[Any], dict[str, Any]] = _FIELDS.get(env.type, _other)
    fields = describe(env.payload)
    return EnvelopeDraft(
        run_id=env.run_id,
        sim_time=env.sim_time,
        payload=env.payload.model_dump(mode="json"),  # JSON values only: sealed as they are (EnvelopeDraft)
        message_id=env.id,
        message_type=env.type,
        correlation_id=env.correlation_id,
        causation_id=env.causation_id,
        superstep=env.superstep,
        **fields,
    )
