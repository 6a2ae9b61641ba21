"""The typed messages of the enterprise loop. Each docstring says who emits it and who consumes it.

Events are facts that already happened (many consumers); commands ask for something (one handler).
Human acts (approve, reject) are commands; agent outputs are events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from coalition.bus.canonical import content_hash
from coalition.bus.message import Message, is_none, register

Outcome = Literal["allow", "deny", "escalate"]


class ModelTrace(Message):
    """What a language model contributed to a message: which model, and hashes of what it saw and said."""

    TYPE = "model.trace"
    model_id: str
    prompt_hash: str
    response_hash: str
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: str = "0"
    calls: list[str] = Field(default_factory=list)  # call_ids of the model.called entries it rests on
    fallback: bool = False  # the words came from the deterministic engine, not the chosen model


@register
class RunStarted(Message):
    """Emitted by the runner when a run begins; consumed by the recorder (ledger) and the console."""

    TYPE = "run.started"
    scenario: str
    scenario_hash: str
    seed: int
    policy_version: str
    start: datetime
    days: int
    settings: dict[str, Any] = Field(default_factory=dict)


@register
class RunFinished(Message):
    """Emitted by the runner when a run ends; consumed by the recorder and the console."""

    TYPE = "run.finished"
    status: Literal["completed", "failed", "interrupted"]
    summary: dict[str, Any] = Field(default_factory=dict)
    expectations: list[dict[str, Any]] = Field(default_factory=list)


@register
class Observation(Message):
    """Emitted by the world (scenario events, state snapshots); consumed by the agents listed in `to`.

    `text` is untrusted free text from outside (news, customer messages): it travels as data and is never
    concatenated into instructions. `evidence_id` is the content hash agents cite.
    """

    TYPE = "observation"
    kind: str = Field(min_length=1)
    subject: str = ""
    to: list[str] = Field(default_factory=list)
    data: dict[str, Any] = Field(default_factory=dict)
    text: str | None = None
    evidence_id: str = ""
    # a prose document (`text`) whose ground-truth structured reading is `data`: {kind, title, sender}. In the
    # model lanes the agent's model reads the prose instead (agents/documents.py); elsewhere `data` is used
    document: dict[str, str] | None = Field(default=None, exclude_if=is_none)


@register
class AgentMessage(Message):
    """Emitted by an agent for other agents (shortlist, price guardrails, claims review…); consumed by `to`."""

    TYPE = "agent.message"
    sender: str
    to: list[str] = Field(min_length=1)
    kind: str = Field(min_length=1)
    summary: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    evidence: list[str] = Field(default_factory=list)


class LaneChoice(Message):
    """Who chose a proposal in a model lane (governance/lanes.py): the model, or the engine when the model could
    not (a stop, refused calls, no call); the engine's own decision too when the model chose otherwise. In the
    assistive lane the model's proposal is a draft; the final proposal a person adopted (or amended) is chosen by
    `human` and names its `draft`."""

    TYPE = "lane.choice"
    lane: str
    chosen_by: Literal["model", "engine", "human"]
    engine_action: str
    engine_args: dict[str, Any] | None = None  # only when the model chose otherwise (action or arguments)
    rounds: int = Field(default=0, ge=0)  # model calls the choice took
    calls: list[str] = Field(default_factory=list)  # call ids of the recorded (paid) calls among them
    refused: list[str] = Field(default_factory=list)  # one line per tool call refused before the choice
    fallback: str = ""  # why the engine's decision stands (empty when the model chose)
    # governance's previews of the model's calls ("<action>: would be denied: …"), one line each
    previews: list[str] | None = Field(default=None, exclude_if=is_none)
    draft: str | None = Field(default=None, exclude_if=is_none)  # assistive final: the draft's proposal id
    amended: bool | None = Field(default=None, exclude_if=is_none)  # assistive final: the person changed the args

    @property
    def disagreed(self) -> bool:
        return self.engine_args is not None


@register
class ActionProposed(Message):
    """Emitted by an agent that wants something done; consumed by governance (and the recorder).

    The proposal hash binds verdicts, approvals and authorizations to this exact content.
    """

    TYPE = "action.proposed"
    proposal_id: str
    agent: str
    action: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    rationale: str = Field(min_length=1)
    evidence: list[str] = Field(default_factory=list)
    model: ModelTrace | None = None
    supersedes: str | None = None
    choice: LaneChoice | None = None  # set in the autonomous lane only (absent, not null, elsewhere)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """Without `choice` when there is none: a transactional proposal's ledger payload is what it was before
        lanes existed (the wire may carry `"choice": null`; only this dump is ledger content)."""
        dumped = super().model_dump(**kwargs)
        if dumped.get("choice", 0) is None:
            del dumped["choice"]
        return dumped

    @property
    def proposal_hash(self) -> str:
        return proposal_hash(self)


def proposal_hash(p: ActionProposed) -> str:
    """Hash of what is being asked (agent, action, args, rationale, evidence): any edit changes it."""
    return content_hash(
        {
            "proposal_id": p.proposal_id,
            "agent": p.agent,
            "action": p.action,
            "args": p.args,
            "rationale": p.rationale,
            "evidence": p.evidence,
            "supersedes": p.supersedes,
        }
    )


class ShadowVerdict(Message):
    """What a second policy (`coalition run --shadow-policy`) would have decided on the same proposal in the same
    state: recorded beside the real verdict, never acted on."""

    outcome: Outcome
    reasons: list[str] = Field(min_length=1)
    rule_ids: list[str] = Field(default_factory=list)
    gate: str | None = None
    policy_version: str


@register
class VerdictIssued(Message):
    """Emitted by governance for each proposal; consumed by the proposing agent, the approvals inbox, the recorder.
    `shadow` (only under a shadow policy; absent from the payload otherwise) is the shadow policy's verdict."""

    TYPE = "verdict.issued"
    proposal_id: str
    proposal_hash: str
    agent: str
    action: str
    outcome: Outcome
    reasons: list[str] = Field(min_length=1)
    rule_ids: list[str] = Field(default_factory=list)
    gate: str | None = None
    approver_roles: list[str] = Field(default_factory=list)
    approvals_required: int = 0
    expires_at: datetime | None = None
    policy_version: str
    shadow: ShadowVerdict | None = Field(default=None, exclude_if=is_none)


@register
class ProposalHeld(Message):
    """Emitted by governance for a proposal that depends on an open escalation (a shared dependency key, policy
    `holds`): no verdict yet; the escalation's approval releases it to evaluation, its rejection or expiry
    cancels it with a deny verdict. Consumed by the recorder."""

    TYPE = "proposal.held"
    proposal_id: str
    proposal_hash: str
    agent: str
    action: str
    held_by: str  # the escalated proposal it waits for
    gate: str | None = None
    dependency: str  # "<key>=<value>", e.g. "incident_id=inc-7"
    reason: str = Field(min_length=1)
    policy_version: str


class HumanDecision(Message):
    """What every human decision on an escalation carries: which exact proposal, who, in which role, and why."""

    proposal_id: str
    proposal_hash: str
    approver: str = Field(min_length=1)
    role: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    method: str = "cli"
    # the approver's Ed25519 signature over (proposal id and hash, approver, decision, reason, decision time) and
    # the public key it verifies with (coalition.governance.decision_signatures); scripted = a scenario's board
    # signed it with a declared test identity, not a human
    signature: str | None = None
    signer_key: str | None = None
    scripted: bool = False
    # an approval that amends an assistive draft (gate draft_review): the arguments the person adopted instead
    # (the whole argument set, within the action's schema; signed with the decision)
    args: dict[str, Any] | None = Field(default=None, exclude_if=is_none)
    # the run the approver decided in, signed with the decision: it counts in that run only (a scripted board's
    # decision, and one recorded before decisions were bound to their run, carry none)
    signed_run: str | None = Field(default=None, exclude_if=is_none)


@register
class ApprovalGranted(HumanDecision):
    """Command from a human approver (CLI, console, or the scenario's scripted board); handled by governance."""

    TYPE = "approval.granted"


@register
class ApprovalRejected(HumanDecision):
    """Command from a human approver rejecting an escalation; handled by governance."""

    TYPE = "approval.rejected"


@register
class ReviewSampled(Message):
    """Emitted by governance when a proposal it allowed is drawn for after-the-fact review (approval tier
    `sampled`, governance/tiers.py): the action still executes; consumed by the recorder (the review queue reads
    it from the ledger). `draw` < `rate` is why: the draw is fixed by the run's seed and the proposal id."""

    TYPE = "review.sampled"
    proposal_id: str
    proposal_hash: str
    agent: str
    action: str
    rate: str
    draw: str
    policy_version: str


@register
class ReviewMarked(Message):
    """A reviewer's mark on a sampled proposal: governance allowed it rightly or wrongly (with why). Appended to the
    ledger by the review service (governance/reviews.py), signed by the reviewer like a decision; nothing in the
    run reads it: it is a judgement on the run, not part of its history."""

    TYPE = "review.marked"
    proposal_id: str
    proposal_hash: str
    reviewer: str = Field(min_length=1)
    mark: Literal["right", "wrong"]
    reason: str = Field(min_length=1)
    method: str = "cli"
    signature: str
    signer_key: str


@register
class ReviewerKeyRecorded(Message):
    """A reviewer's public approver key, bound to their name in a run that recorded no approver directory naming
    them: appended with their first review mark there (governance/reviews.py), it checks their marks wherever the
    ledger is read — no key store needed. A name once bound in a run stays bound; like the marks, it is outside the
    run's history."""

    TYPE = "review.key"
    reviewer: str = Field(min_length=1)
    key: str


@register
class EscalationResolved(Message):
    """Emitted by governance when an escalation ends (approved, rejected, expired); consumed by agent, recorder."""

    TYPE = "escalation.resolved"
    proposal_id: str
    proposal_hash: str
    outcome: Literal["approved", "rejected", "expired"]
    approvers: list[str] = Field(default_factory=list)
    reason: str = Field(min_length=1)
    budget_increase_usd: str | None = None  # approving a budget overrun raises the budget by this much
    # an adopted assistive draft (gate draft_review): the arguments the agent's final proposal must carry
    adopted_args: dict[str, Any] | None = Field(default=None, exclude_if=is_none)


@register
class ActionAuthorized(Message):
    """Emitted by governance only; consumed by the executor. Hash-bound to the proposal it authorizes."""

    TYPE = "action.authorized"
    authorization_id: str
    proposal_id: str
    proposal_hash: str
    agent: str
    action: str
    args: dict[str, Any] = Field(default_factory=dict)
    idempotency_key: str
    basis: Literal["policy", "approval"]
    rule_ids: list[str] = Field(default_factory=list)


@register
class ActionExecuted(Message):
    """Emitted by the executor after applying (or refusing) an authorization; consumed by agents and recorder."""

    TYPE = "action.executed"
    authorization_id: str
    proposal_id: str
    agent: str
    action: str
    idempotency_key: str
    status: Literal["applied", "duplicate", "failed"]
    changes: dict[str, Any] = Field(default_factory=dict)
    detail: str = Field(min_length=1)


@register
class DecisionsTaken(Message):
    """Emitted by the runner at each decision point while escalations wait (control topic; read by the recorder):
    which human decisions governance took in there, in order — none when the clock moved on without one. A
    resumed or replayed run takes each decision at the point recorded here, so ids, order and content repeat."""

    TYPE = "decisions.taken"
    day: int = Field(ge=0)
    decisions: list[str] = Field(default_factory=list)  # message ids of the approval / rejection entries
    proposals: list[str] = Field(default_factory=list)  # the escalation each decision was on (same order)
    pending: int = Field(ge=0)  # escalations still open after taking them


@register
class DeadLettered(Message):
    """Emitted by a consumer that gave up on a message (undecodable, or N failed deliveries); read by the recorder."""

    TYPE = "dead.lettered"
    topic: str
    group: str
    broker_id: str
    envelope_id: str | None = None
    deliveries: int = Field(ge=0)
    reason: str = Field(min_length=1)
    raw_sha256: str
    raw_preview: str = ""


ModelStopReason = Literal[
    "budget", "rate_limit", "circuit_open", "malformed", "provider_error", "timeout", "oversized", "bad_usage"
]


@register
class ModelCalled(Message):
    """Emitted by an agent for every call to a paid model (request hash → response); consumed by the recorder.

    A replay answers from these records by `request_hash`, so a run made with a paid model replays without a key.
    """

    TYPE = "model.called"
    call_id: str
    agent: str
    model_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    purpose: str = ""  # rationale, copy, suggest:<schema>
    request_hash: str
    prompt_hash: str
    response: dict[str, Any] = Field(default_factory=dict)  # content, tool_calls, invalid_tool_calls, usage
    response_hash: str
    status: Literal["ok", "error"] = "ok"
    error: str | None = None
    input_tokens: int = Field(default=0, ge=0)
    output_tokens: int = Field(default=0, ge=0)
    cost_usd: str = "0"


@register
class ModelStopped(Message):
    """Emitted by an agent when a model call was not made or not used (budget, rate limit, breaker, bad output).

    The agent then words its decision with its deterministic engine; consumed by the recorder.
    """

    TYPE = "model.stopped"
    agent: str
    model_id: str
    reason: ModelStopReason
    detail: str = Field(min_length=1)
    purpose: str = ""
    estimate_tokens: int = Field(default=0, ge=0)
    estimate_cost_usd: str = "0"
    period: str = ""


@register
class ContentScreened(Message):
    """Emitted by an agent when untrusted text bound for a model was flagged; consumed by the recorder.

    The text itself is withheld from the model; the hash identifies it in the observation that carried it.
    """

    TYPE = "content.screened"
    agent: str
    content_hash: str
    source: str
    verdict: Literal["clean", "flagged"]
    flags: list[str] = Field(default_factory=list)
