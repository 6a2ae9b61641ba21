"""The approvals service: how a human decision (CLI, web console, a scenario's scripted board) gets recorded.

It folds the escalation of one proposal from the ledger, checks the decision against the state machine
(`coalition.governance.escalation`) and, if accepted, appends one `approval` / `rejection` entry. The
governance service reads those entries back and resolves the escalation. A refusal is a returned value.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from coalition.bus.canonical import content_hash
from coalition.bus.keys import public_text
from coalition.bus.message import parse_payload
from coalition.bus.messages import ApprovalGranted, ApprovalRejected, RunStarted
from coalition.domain import ArgumentProblem, catalog
from coalition.governance.decision_signatures import (
    SCRIPTED_METHODS,
    RunIdentities,
    decision_entry_problem,
    is_decision,
    recorded_identities,
    scripted_public,
    sign,
    signature_problem,
    statement,
)
from coalition.governance.errors import PolicyError
from coalition.governance.escalation import Decision, DecisionKind, Escalation, RefusalCode, check_decision
from coalition.governance.policy import Policy, default_policy, load_policy, parse_policy
from coalition.governance.run_entries import run_entries
from coalition.governance.state import GovernanceState, fold_ledger
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import EntryDraft, LedgerEntry
from coalition.ledger.errors import MalformedEntry

APPROVALS_CONSUMER = "approvals"


@dataclass(frozen=True, slots=True)
class DecisionResult:
    """What happened to one decision: recorded (with the ledger entry) or refused (with the reason and its code)."""

    accepted: bool
    reason: str
    proposal_id: str
    decision: DecisionKind
    approver: str
    role: str | None = None
    status: Literal["pending", "approved", "rejected", "expired", "unknown"] = "unknown"
    approvals: int = 0
    approvals_required: int = 0
    entry: LedgerEntry | None = None
    code: RefusalCode | None = None  # why it was refused, for machines (None when accepted)


def amendment_problem(action: str, args: Mapping[str, Any]) -> str | None:
    """Why amended arguments do not fit the action's schema (None: they do)."""
    declared = catalog().actions.get(action)
    if declared is None:
        return f"unknown action {action!r}"
    try:
        declared.parse(dict(args))
    except ArgumentProblem as problem:
        return str(problem)
    return None


def run_started(ledger: Ledger, run_id: str) -> RunStarted | None:
    """The run.started message of a run, if the ledger has it; one recorded that no longer validates (an altered or
    drifted ledger) is a MalformedEntry naming the run, the entry and the first problem, for every reader alike."""
    return _started_among(ledger.query(LedgerQuery(run_id=run_id, kind="run", limit=5)))


def run_started_of_bodies(bodies: Iterable[Mapping[str, Any]], run_id: str) -> RunStarted | None:
    """`run_started` from the run's stored entry bodies (all of them, in sequence or history order: `run` entries keep
    their order in both), read already: not a second read of the ledger."""
    runs = (body for body in bodies if body.get("kind") == "run")
    for body in islice(runs, 5):
        if body.get("message_type") == RunStarted.TYPE:
            return _started_message(body.get("seq"), run_id, body.get("payload"))
    return None


def _started_among(entries: Sequence[LedgerEntry]) -> RunStarted | None:
    """The run.started message among a run's first `run` entries (what run_started reads)."""
    for entry in entries[:5]:
        if entry.message_type == RunStarted.TYPE:
            return _started_message(entry.seq, entry.run_id, entry.payload)
    return None


def _started_message(seq: object, run_id: str, payload: object) -> RunStarted:
    """A recorded run.started payload as its message; one that does not validate is a MalformedEntry at `seq`."""
    try:
        message = parse_payload(RunStarted.TYPE, payload)
    except ValidationError as exc:  # a field it never had, or one of another type: not what the run recorded
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "payload"
        raise MalformedEntry(
            seq, f"run {run_id!r}: its recorded run.started does not validate: {where}: {problem['msg']}"
        ) from None
    assert isinstance(message, RunStarted)
    return message


def run_finished_seq(ledger: Ledger, run_id: str) -> int | None:
    """The sequence of the run's run.finished entry, if it has ended."""
    return _finished_among(ledger.query(LedgerQuery(run_id=run_id, kind="run")))


def _finished_among(entries: Sequence[LedgerEntry]) -> int | None:
    for entry in entries:
        if entry.message_type == "run.finished":
            return entry.seq
    return None


def policy_for_run(ledger: Ledger, run_id: str) -> Policy:
    """The policy a run was governed by: the policy document recorded in its run.started (whatever file it came
    from, a --policy override included); runs recorded without one fall back to the file at
    settings["policy_path"], else the default pack's shipped policy.

    The result must have the run's recorded policy_version: decisions are checked against the policy the run
    was governed by, never against a file that changed since.
    """
    started = run_started(ledger, run_id)
    settings = started.settings if started is not None else {}
    document = settings.get("policy_document")
    path = settings.get("policy_path")
    if isinstance(document, dict):
        where = f"run {run_id} (recorded policy)"
        policy = parse_policy(document, source=where)
    else:
        where = str(path) if path else "the default pack's policy"
        policy = load_policy(Path(str(path))) if path else default_policy()
    recorded = started.policy_version if started is not None else None
    if recorded and recorded not in (policy.version, policy.short_version):
        raise PolicyError(
            where,
            "(version)",
            f"policy version {policy.short_version} is not the run's {recorded[:16]} (altered ledger or file?)",
        )
    return policy


def latest_sim_time(ledger: Ledger, run_id: str) -> datetime | None:
    """The simulated time of the run's newest entry: 'now' for a human deciding while the run waits."""
    newest = ledger.query(LedgerQuery(run_id=run_id, newest_first=True, limit=1))
    return newest[0].sim_time if newest else None


def signed_decisions_only(
    ledger: Ledger, run_id: str, entries: Iterable[LedgerEntry], *, accept_runs: Iterable[str] = ()
) -> Iterator[LedgerEntry]:
    """The entries without the decisions their approver did not sign for this run (appended past the approvals
    service, or copied from another run; `accept_runs`: a re-execution takes the original run's decisions).

    Governance takes no such decision (GovernanceService), so neither may the inbox, the CLI, the console or the
    checks before a new decision: they would count as decided what governance still waits for."""
    identities: RunIdentities | None = None
    for entry in entries:
        if is_decision(entry):  # by kind or by message type: a fold reads the type
            identities = identities or recorded_identities(ledger, run_id, accept_runs=accept_runs)
            if decision_entry_problem(entry, identities) is not None:
                continue
        yield entry


def escalation_state(
    ledger: Ledger, *, run_id: str, proposal_id: str, policy: Policy, accept_runs: Iterable[str] = ()
) -> GovernanceState:
    """The governance state of one proposal's story (proposal, verdict, signed decisions, resolution)."""
    entries = ledger.query(LedgerQuery(run_id=run_id, subject=proposal_id))
    return fold_ledger(signed_decisions_only(ledger, run_id, entries, accept_runs=accept_runs), policy=policy)


def load_escalation(
    ledger: Ledger, *, run_id: str, proposal_id: str, policy: Policy, accept_runs: Iterable[str] = ()
) -> Escalation | None:
    state = escalation_state(ledger, run_id=run_id, proposal_id=proposal_id, policy=policy, accept_runs=accept_runs)
    return state.escalations.get(proposal_id)


def load_escalations(ledger: Ledger, *, run_id: str, policy: Policy) -> list[Escalation]:
    """Every escalation of a run (open and decided), in the order they were opened."""
    entries = signed_decisions_only(ledger, run_id, ledger.iter_entries(run_id=run_id))
    return list(fold_ledger(entries, policy=policy).escalations.values())


def record_decision(
    ledger: Ledger,
    *,
    run_id: str,
    proposal_id: str,
    approver: str,
    decision: DecisionKind,
    reason: str,
    proposal_hash: str | None = None,
    method: str = "cli",
    sim_time: datetime | None = None,
    policy: Policy | None = None,
    key: Ed25519PrivateKey | None = None,
    signature: str | None = None,
    amend: Mapping[str, Any] | None = None,
    signed_run: str | None = None,
) -> DecisionResult:
    """Validate one human decision and append it to the ledger; a refusal comes back with its reason.

    `proposal_hash` binds the decision to the exact proposal (None = the escalated proposal as it is now);
    `sim_time` defaults to the run's latest simulated time; `policy` to the run's (see policy_for_run).
    The decision must be signed (coalition.governance.decision_signatures): by `key` (the approver's, unlocked
    by their password; a scripted board's test identity), or already, by `signature` (a recorded decision
    replayed as it was). A signature that does not verify for `approver` in this run is refused.
    `amend` (an approval of an assistive draft only): the arguments to change; the adopted arguments are the
    draft's with these over them, and must fit the action's schema. They are signed with the decision.
    A human decision is signed for `run_id`; `signed_run` is for re-executions only (replay, verify, what-if): a
    recorded decision re-recorded as it was signed, for the run it re-executes (decision_signatures).
    """
    approver = approver.strip()
    policy = policy or policy_for_run(ledger, run_id)
    amend = amend or None  # nothing to change is a plain approval

    def refused(why: str, code: RefusalCode, escalation: Escalation | None = None) -> DecisionResult:
        return DecisionResult(
            False,
            why,
            proposal_id,
            decision,
            approver,
            status=escalation.status if escalation is not None else "unknown",
            approvals=len(escalation.approvals) if escalation is not None else 0,
            approvals_required=escalation.approvals_required if escalation is not None else 0,
            code=code,
        )

    if not approver:
        return refused("a decision needs the approver's name", "missing_approver")
    if not reason.strip():
        return refused("a decision needs a reason", "missing_reason")

    class _Refusal(Exception):
        def __init__(self, result: DecisionResult) -> None:
            self.result = result

    checked: list[tuple[Escalation, str, str, datetime, dict[str, Any] | None]] = []
    accepted = () if signed_run is None else (signed_run,)

    def prepare() -> tuple[str, list[EntryDraft]]:
        """Runs inside the ledger's write transaction: the escalation is folded and checked as it is at the moment
        of the append, so of two racing decisions the second sees the first (and is told what it decided)."""
        escalation = load_escalation(
            ledger, run_id=run_id, proposal_id=proposal_id, policy=policy, accept_runs=accepted
        )
        if escalation is None:
            raise _Refusal(refused(f"no escalation for proposal {proposal_id} in run {run_id}", "unknown_escalation"))
        # the run's `run` entries, read once for both questions asked of them (each holds the run's documents)
        runs = run_entries(ledger, run_id)
        finished = _finished_among(runs)
        if finished is not None:  # nothing takes a decision in after the end: it would be recorded, never applied
            why = f"run {run_id} has finished (ledger entry {finished}); its escalations take no more decisions"
            raise _Refusal(refused(why, "run_finished", escalation))
        now = sim_time or latest_sim_time(ledger, run_id)
        directory = {name: tuple(roles) for name, roles in policy.approvers.items()}
        adopted = None if amend is None else {**escalation.proposal.args, **amend}
        if adopted is not None:
            problem = amendment_problem(escalation.proposal.action, adopted)
            if problem is not None:
                raise _Refusal(refused(f"cannot amend: {problem}", "bad_amendment", escalation))
        check = check_decision(
            escalation,
            approver=approver,
            decision=decision,
            proposal_hash=proposal_hash,
            now=now,
            directory=directory,
            amend=adopted,
        )
        if not check.accepted:
            assert check.code is not None, "check_decision names a code on every refusal"
            raise _Refusal(refused(check.reason, check.code, escalation))
        when = now or escalation.opened_at
        if when is None:
            raise _Refusal(refused("the run has no simulated time yet", "no_sim_time", escalation))
        role = check.role or ""
        bound_hash = proposal_hash or escalation.proposal_hash
        signed = _signed(
            _started_among(runs),
            run_id,
            proposal_id=proposal_id,
            approver=approver,
            decision=decision,
            reason=reason,
            method=method,
            bound_hash=bound_hash,
            when=when,
            key=key,
            signature=signature,
            args=adopted,
            signed_run=signed_run,
        )
        if isinstance(signed, tuple):
            raise _Refusal(refused(signed[1], signed[0], escalation))
        checked.append((escalation, role, bound_hash, when, adopted))
        return _decision_draft(
            signed=signed,
            run_id=run_id,
            escalation=escalation,
            approver=approver,
            role=role,
            decision=decision,
            reason=reason,
            method=method,
            bound_hash=bound_hash,
            when=when,
            policy=policy,
            args=adopted,
        )

    try:
        entries = ledger.append_checked(APPROVALS_CONSUMER, prepare)
    except _Refusal as refusal:
        return refusal.result
    escalation, role, bound_hash, when, adopted = checked[-1]
    if entries is None:
        return refused(f"{approver} already decided this escalation", "same_approver", escalation)
    after = escalation.with_decision(Decision(approver, role, decision, reason, bound_hash, method, when, adopted))
    verb = "rejected" if decision == "reject" else "amended" if amend is not None else "approved"
    return DecisionResult(
        True,
        f"recorded: {approver} ({role}) {verb}",
        proposal_id,
        decision,
        approver,
        role=role,
        status=after.status,
        approvals=len(after.approvals),
        approvals_required=after.approvals_required,
        entry=entries[0],
    )


def _signed(
    started: RunStarted | None,
    run_id: str,
    *,
    proposal_id: str,
    approver: str,
    decision: DecisionKind,
    reason: str,
    method: str,
    bound_hash: str,
    when: datetime,
    key: Ed25519PrivateKey | None,
    signature: str | None,
    args: Mapping[str, Any] | None = None,
    signed_run: str | None = None,
) -> dict[str, object] | tuple[RefusalCode, str]:
    """The decision's signature fields, or (code, why) when it is not signed by `approver` as this run expects
    (its approver directory, as `started`, its run.started, recorded it; a scripted board's test identity in a run
    without a human). A human's decision is bound to the run (`signed_run`, default this run); a scripted board's
    is not."""
    scripted = method in SCRIPTED_METHODS
    bound = signed_run if signed_run is not None else None if scripted else run_id
    identities = RunIdentities.from_settings(
        started.settings if started is not None else {},
        run_id=run_id,
        accept_runs=() if signed_run is None else (signed_run,),
    )
    data = statement(
        proposal_id=proposal_id,
        proposal_hash=bound_hash,
        approver=approver,
        decision=decision,
        reason=reason,
        decided_at=when,
        args=args,
        run_id=bound,
    )
    if signature is None and key is not None:
        signature = sign(key, data)
    problem = signature_problem(
        identities=identities, approver=approver, method=method, signature=signature, signer_key=None, data=data
    )
    if problem is not None:
        return ("unsigned" if signature is None else "bad_signature"), problem
    signer_key = (
        public_text(key.public_key())
        if key is not None
        else scripted_public(approver)
        if scripted
        else identities.approver_keys.get(approver)
    )
    return {
        "signature": signature,
        "signer_key": signer_key,
        "scripted": scripted,
        **({"signed_run": bound} if bound is not None else {}),
    }


def _decision_draft(
    *,
    signed: dict[str, object],
    run_id: str,
    escalation: Escalation,
    approver: str,
    role: str,
    decision: DecisionKind,
    reason: str,
    method: str,
    bound_hash: str,
    when: datetime,
    policy: Policy,
    args: Mapping[str, Any] | None = None,
) -> tuple[str, list[EntryDraft]]:
    """The dedupe key and the ledger entry of one accepted decision."""
    proposal_id = escalation.proposal_id
    kind = ApprovalGranted if decision == "approve" else ApprovalRejected
    message: ApprovalGranted | ApprovalRejected = kind.model_validate(
        {
            "proposal_id": proposal_id,
            "proposal_hash": bound_hash,
            "approver": approver,
            "role": role,
            "reason": reason,
            "method": method,
            **signed,
            **({"args": dict(args)} if args is not None else {}),
        }
    )
    # The entry's id depends on what is decided, not on the run's name (replays give the same ledger content);
    # the dedupe key adds the run, so one approver decides a proposal once per run.
    message_id = "decision-" + content_hash([proposal_id, bound_hash, approver])[:32]
    draft = EntryDraft(
        run_id=run_id,
        sim_time=when,
        actor=f"human:{approver}",
        actor_kind="human",
        kind="approval" if decision == "approve" else "rejection",
        subject=proposal_id,
        payload=message.model_dump(mode="json"),
        rationale=reason,
        evidence=[bound_hash],
        policy_version=escalation.policy_version or policy.version,
        rule_ids=list(escalation.rule_ids),
        gate=escalation.gate,
        outcome="approved" if decision == "approve" else "rejected",
        approver=approver,
        message_id=message_id,
        message_type=message.TYPE,
        correlation_id=escalation.correlation_id,
        causation_id=escalation.verdict_message_id,
    )
    return f"{run_id}:{message_id}", [draft]
