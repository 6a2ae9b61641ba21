"""The review queue of the `sampled` approval tier: what governance allowed and drew for review, and the reviewers'
marks on it (right, or wrong with why).

A sampled proposal has a `review` entry (governance wrote it when it allowed the proposal, governance/tiers.py).
A reviewer — a name in the run's policy approver directory, never an agent — marks it once, `right` or `wrong`
with a reason, signing (run id, proposal id, proposal hash, reviewer, mark, reason, simulated time) with their
approver key as a decision is signed (governance/decision_signatures.py). The mark is a `review_mark` entry: a
judgement on the run, outside its history (ledger/history.py), so a resume or replay of a reviewed run stays identical.

Whose key checks a mark: the key the run's ledger binds to the reviewer's name — its recorded approver directory
(an interactive run's `run.started`), else the `review_key` entry recorded with the reviewer's first mark in the
run. A run that recorded no directory naming the reviewer (any non-interactive run) has its first mark bind the
reviewer's key of the marking installation (`coalition users add`, passed as `trusted`), so the marks verify from
the ledger alone, on any machine, as decisions do; a name once bound stays bound. Where `trusted` holds a key for
the reviewer, the binding must agree with it (whoever can append to the ledger could bind a name to their own key).
Only a mark from before keys were recorded falls back to `trusted`; with no key for it either, it "cannot be
checked here" (said, not a bad signature). A mark no key verifies is not a review: the queue does not count it,
`coalition ledger verify` reports it.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.bus.canonical import canonical_json, content_hash
from coalition.bus.errors import KeyStoreError
from coalition.bus.keys import parse_public, public_text, verify_signature
from coalition.bus.messages import ReviewerKeyRecorded, ReviewMarked
from coalition.governance.decision_signatures import DecisionProblem, recorded_identities, sign
from coalition.governance.escalation import is_proposer
from coalition.governance.policy import Policy
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import EntryDraft, LedgerEntry

DOMAIN = b"coalition review mark v2\n"  # v2: the run id is signed too
REVIEWS_CONSUMER = "reviews"
Mark = Literal["right", "wrong"]
ReviewRefusal = Literal[
    "missing_reviewer",
    "missing_reason",
    "not_a_reviewer",
    "self_review",
    "unknown_proposal",
    "not_sampled",
    "already_reviewed",
    "unsigned",
    "bad_signature",
]


def review_statement(
    *, run_id: str, proposal_id: str, proposal_hash: str, reviewer: str, mark: str, reason: str, marked_at: datetime
) -> bytes:
    """The exact bytes a reviewer signs. The run is named: runs of one scenario and seed share proposal ids and
    hashes, so a mark on one run must not verify when copied into another."""
    return DOMAIN + canonical_json(
        {
            "run_id": run_id,
            "proposal_id": proposal_id,
            "proposal_hash": proposal_hash,
            "reviewer": reviewer,
            "mark": mark,
            "reason": reason,
            "marked_at": marked_at,
        }
    )


@dataclass(frozen=True, slots=True)
class ReviewMark:
    """A reviewer's signed mark on a sampled proposal."""

    reviewer: str
    mark: Mark
    reason: str
    seq: int
    method: str

    def as_json(self) -> dict[str, Any]:
        return {"reviewer": self.reviewer, "mark": self.mark, "reason": self.reason, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class SampledItem:
    """One sampled proposal: what was asked, what governance said, why it was drawn, and its mark (if any)."""

    run_id: str
    proposal_id: str
    proposal_hash: str
    agent: str
    action: str
    args: dict[str, Any]
    rationale: str
    verdict: str
    verdict_reasons: str
    rule_ids: list[str]
    rate: str
    draw: str
    sampled_seq: int
    mark: ReviewMark | None = None

    @property
    def reviewed(self) -> bool:
        return self.mark is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "proposal_id": self.proposal_id,
            "proposal_hash": self.proposal_hash,
            "agent": self.agent,
            "action": self.action,
            "args": self.args,
            "rationale": self.rationale,
            "verdict": self.verdict,
            "verdict_reasons": self.verdict_reasons,
            "rule_ids": self.rule_ids,
            "rate": self.rate,
            "draw": self.draw,
            "sampled_seq": self.sampled_seq,
            "mark": None
            if self.mark is None
            else {
                "reviewer": self.mark.reviewer,
                "mark": self.mark.mark,
                "reason": self.mark.reason,
                "seq": self.mark.seq,
            },
        }


def bound_keys(ledger: Ledger, run_id: str) -> dict[str, str]:
    """The reviewers' keys the run's ledger binds (name → public key): its approver directory, then each
    `review_key` entry in ledger order; the first binding of a name holds."""
    bound = dict(recorded_identities(ledger, run_id).approver_keys)
    for entry in ledger.query(LedgerQuery(run_id=run_id, kind="review_key")):
        name, key = entry.payload.get("reviewer"), entry.payload.get("key")
        if isinstance(name, str) and isinstance(key, str):
            bound.setdefault(name, key)
    return bound


@dataclass(frozen=True, slots=True)
class MarkCheck:
    """Why a mark is not its reviewer's (None: it is), and whether it could be checked at all: `unchecked` when
    neither the ledger nor `trusted` holds a key for the reviewer (a mark from before keys were recorded)."""

    problem: str | None
    unchecked: bool = False


def check_mark(entry: LedgerEntry, bound: Mapping[str, str], trusted: Mapping[str, str]) -> MarkCheck:
    """Check a `review_mark` entry against its reviewer's key: the run's binding, else `trusted`."""
    payload = entry.payload
    reviewer = str(payload.get("reviewer", ""))
    installed = trusted.get(reviewer)
    expected = bound.get(reviewer) or installed
    if installed is not None and expected != installed:  # a binding anyone who appends to the ledger could write
        return MarkCheck(
            f"run {entry.run_id} binds key {str(expected)[:20]}… to reviewer {reviewer!r}, but the key installed "
            f"here for {reviewer} is {installed[:20]}…"
        )
    if expected is None:
        return MarkCheck(
            f"no key for reviewer {reviewer!r} is recorded in run {entry.run_id} or installed here "
            "(a mark from before marks recorded their reviewer's key)",
            unchecked=True,
        )
    signer = payload.get("signer_key")
    if signer != expected:
        return MarkCheck(f"the review mark was signed by key {str(signer)[:20]}…, not {reviewer}'s")
    data = review_statement(
        run_id=entry.run_id,
        proposal_id=str(payload.get("proposal_id", "")),
        proposal_hash=str(payload.get("proposal_hash", "")),
        reviewer=reviewer,
        mark=str(payload.get("mark", "")),
        reason=str(payload.get("reason", "")),
        marked_at=entry.sim_time,
    )
    try:
        raw = base64.b64decode(str(payload.get("signature", "")), validate=True)
        key = parse_public(expected)
    except (KeyStoreError, ValueError, binascii.Error):
        return MarkCheck(f"the review mark of {reviewer} carries a malformed signature or key")
    if not verify_signature(key, raw, data):
        return MarkCheck(f"the signature is not {reviewer}'s over this proposal hash, mark, reason and time")
    return MarkCheck(None)


def review_queue(ledger: Ledger, run_id: str, *, trusted: Mapping[str, str] | None = None) -> list[SampledItem]:
    """The run's sampled proposals in the order they were drawn, each with its first mark that verifies."""
    samples = ledger.query(LedgerQuery(run_id=run_id, kind="review"))
    if not samples:
        return []
    marks = _marks(ledger, run_id, trusted or {})
    items: list[SampledItem] = []
    for sample in samples:
        pid = sample.subject
        proposal = _first(ledger, run_id, pid, "proposal")
        verdict = _last(ledger, run_id, pid, "verdict")  # the allow (after a hold, the verdict that released it)
        p = proposal.payload if proposal is not None else {}
        items.append(
            SampledItem(
                run_id=run_id,
                proposal_id=pid,
                proposal_hash=str(sample.payload.get("proposal_hash", "")),
                agent=str(sample.payload.get("agent", "")),
                action=str(sample.payload.get("action", "")),
                args=dict(p.get("args") or {}),
                rationale=str(p.get("rationale", "")),
                verdict=str(verdict.outcome) if verdict is not None else "?",
                verdict_reasons=verdict.rationale if verdict is not None else "",
                rule_ids=list(verdict.rule_ids) if verdict is not None else [],
                rate=str(sample.payload.get("rate", "")),
                draw=str(sample.payload.get("draw", "")),
                sampled_seq=sample.seq,
                mark=marks.get(pid),
            )
        )
    return items


def _marks(
    ledger: Ledger, run_id: str, trusted: Mapping[str, str], subject: str | None = None
) -> dict[str, ReviewMark]:
    """The first mark that verifies of each sampled proposal of the run (of one proposal, given `subject`)."""
    bound = bound_keys(ledger, run_id)
    marks: dict[str, ReviewMark] = {}
    for entry in ledger.query(LedgerQuery(run_id=run_id, kind="review_mark", subject=subject)):
        if entry.subject in marks or check_mark(entry, bound, trusted).problem is not None:
            continue
        p = entry.payload
        marks[entry.subject] = ReviewMark(
            str(p.get("reviewer")),
            "wrong" if p.get("mark") == "wrong" else "right",
            str(p.get("reason", "")),
            entry.seq,
            str(p.get("method", "")),
        )
    return marks


def _first(ledger: Ledger, run_id: str, subject: str, kind: str) -> LedgerEntry | None:
    found = ledger.query(LedgerQuery(run_id=run_id, subject=subject, kind=kind, limit=1))
    return found[0] if found else None


def _last(ledger: Ledger, run_id: str, subject: str, kind: str) -> LedgerEntry | None:
    found = ledger.query(LedgerQuery(run_id=run_id, subject=subject, kind=kind, newest_first=True, limit=1))
    return found[0] if found else None


@dataclass(frozen=True, slots=True)
class ReviewResult:
    """A mark recorded (with its ledger entry) or refused (with why, and a code for machines)."""

    accepted: bool
    reason: str
    proposal_id: str
    mark: Mark
    reviewer: str
    entry: LedgerEntry | None = None
    code: ReviewRefusal | None = None


class _Refusal(Exception):
    def __init__(self, code: ReviewRefusal, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def record_review(
    ledger: Ledger,
    *,
    run_id: str,
    proposal_id: str,
    reviewer: str,
    mark: Mark,
    reason: str,
    policy: Policy,
    key: Ed25519PrivateKey | None,
    trusted: Mapping[str, str],
    method: str = "cli",
) -> ReviewResult:
    """Check one mark and append it (signed with `key`, the reviewer's approver key) to the ledger.

    Refused: no reviewer; `wrong` without a reason; a reviewer outside the policy's approver directory or an agent;
    a proposal the run does not have, or did not sample; a proposal already marked; no key, or a key that is not
    the reviewer's (the key the run binds to the name, else `trusted`: this installation's approver keys). The
    reviewer's first mark in a run that binds no key to their name records the key (a `review_key` entry) with it."""
    reviewer = reviewer.strip()
    reason = reason.strip()

    def refused(code: ReviewRefusal, why: str) -> ReviewResult:
        return ReviewResult(False, why, proposal_id, mark, reviewer, code=code)

    if not reviewer:
        return refused("missing_reviewer", "a review mark needs the reviewer's name")
    if mark == "wrong" and not reason:
        return refused("missing_reason", "a 'wrong' mark needs a reason (what governance should have done)")
    reason = reason or "right: governance's verdict was correct"
    if reviewer.casefold().startswith("agent:") or any(is_proposer(reviewer, a) for a in policy.permissions):
        return refused("self_review", f"{reviewer} is an agent; agents do not review governance's verdicts")
    if reviewer not in policy.approvers:
        return refused("not_a_reviewer", f"{reviewer} is not in the policy's approver directory")
    if key is None:
        return refused("unsigned", f"a review mark as {reviewer} is signed with {reviewer}'s approver key (none given)")
    used = public_text(key.public_key())

    def prepare() -> tuple[str, list[EntryDraft]]:
        bound = bound_keys(ledger, run_id).get(reviewer)  # read in the write transaction: one binding per name
        expected = bound or trusted.get(reviewer)
        if expected is None or used != expected:
            whose = f"the key run {run_id} recorded for {reviewer}" if bound else f"{reviewer}'s approver key"
            raise _Refusal("bad_signature", f"the key used is not {whose}; nothing recorded")
        samples = ledger.query(LedgerQuery(run_id=run_id, subject=proposal_id, kind="review", limit=1))
        if not samples:
            if _first(ledger, run_id, proposal_id, "proposal") is None:
                raise _Refusal("unknown_proposal", f"no proposal {proposal_id} in run {run_id}")
            raise _Refusal(
                "not_sampled", f"proposal {proposal_id} was not sampled for review (only sampled ones are reviewed)"
            )
        sample = samples[0]
        m = _marks(ledger, run_id, trusted, subject=proposal_id).get(proposal_id)
        if m is not None:  # this proposal's marks only: the whole queue is thousands at a sampled rate of 1
            raise _Refusal(
                "already_reviewed",
                f"proposal {proposal_id} is already marked {m.mark} by {m.reviewer} (ledger #{m.seq}); "
                "a mark cannot be changed",
            )
        newest = ledger.query(LedgerQuery(run_id=run_id, newest_first=True, limit=1))
        when = newest[0].sim_time if newest else sample.sim_time
        p_hash = str(sample.payload.get("proposal_hash", ""))
        data = review_statement(
            run_id=run_id,
            proposal_id=proposal_id,
            proposal_hash=p_hash,
            reviewer=reviewer,
            mark=mark,
            reason=reason,
            marked_at=when,
        )
        message = ReviewMarked(
            proposal_id=proposal_id,
            proposal_hash=p_hash,
            reviewer=reviewer,
            mark=mark,
            reason=reason,
            method=method,
            signature=sign(key, data),
            signer_key=expected,
        )
        message_id = "review-" + content_hash([proposal_id, p_hash, reviewer])[:32]
        draft = EntryDraft(
            run_id=run_id,
            sim_time=when,
            actor=f"human:{reviewer}",
            actor_kind="human",
            kind="review_mark",
            subject=proposal_id,
            payload=message.model_dump(mode="json"),
            rationale=reason,
            evidence=[p_hash],
            policy_version=policy.version,
            outcome=mark,
            approver=reviewer,
            message_id=message_id,
            message_type=ReviewMarked.TYPE,
            correlation_id=sample.correlation_id,
            causation_id=sample.message_id,
        )
        # One mark per proposal per run, whoever makes it: the dedupe key names the proposal, not the reviewer.
        if bound is not None:
            return f"{run_id}:review:{proposal_id}", [draft]
        binding = EntryDraft(
            run_id=run_id,
            sim_time=when,
            actor=f"human:{reviewer}",
            actor_kind="human",
            kind="review_key",
            subject=reviewer,
            payload=ReviewerKeyRecorded(reviewer=reviewer, key=expected).model_dump(mode="json"),
            rationale=(
                f"{reviewer}'s approver key, recorded with their first review mark in this run (its approver "
                "directory does not name them): it checks their marks wherever the ledger is read"
            ),
            policy_version=policy.version,
            outcome="bound",
            approver=reviewer,
            message_id="review-key-" + content_hash([run_id, reviewer, expected])[:32],
            message_type=ReviewerKeyRecorded.TYPE,
            correlation_id=sample.correlation_id,
            causation_id=sample.message_id,
        )
        return f"{run_id}:review:{proposal_id}", [binding, draft]

    try:
        entries = ledger.append_checked(REVIEWS_CONSUMER, prepare)
    except _Refusal as refusal:
        return refused(refusal.code, refusal.reason)
    if not entries:
        return refused("already_reviewed", f"proposal {proposal_id} is already marked; a mark cannot be changed")
    mark_entry = entries[-1]  # after the reviewer's key, when this mark records it
    return ReviewResult(True, f"recorded: {reviewer} marked it {mark}", proposal_id, mark, reviewer, entry=mark_entry)


@dataclass(frozen=True, slots=True)
class ReviewsChecked:
    """What `verify_reviews` found: marks checked, marks that are not their reviewer's (bad), marks no key here
    can check (neither the ledger nor this installation holds their reviewer's key)."""

    checked: int
    problems: list[DecisionProblem]
    unchecked: list[DecisionProblem]


def verify_reviews(ledger: Ledger, *, trusted: Mapping[str, str], run_id: str | None = None) -> ReviewsChecked:
    """Check every review mark (of one run, or of all) against the key its run binds to its reviewer (else
    `trusted`, for marks from before keys were recorded)."""
    bound: dict[str, dict[str, str]] = {}
    problems: list[DecisionProblem] = []
    unchecked: list[DecisionProblem] = []
    entries = ledger.query(LedgerQuery(run_id=run_id, kind="review_mark"))
    for entry in entries:
        if entry.run_id not in bound:
            bound[entry.run_id] = bound_keys(ledger, entry.run_id)
        found = check_mark(entry, bound[entry.run_id], trusted)
        if found.problem is not None:
            problem = DecisionProblem(entry.seq, entry.run_id, str(entry.payload.get("reviewer", "")), found.problem)
            (unchecked if found.unchecked else problems).append(problem)
    return ReviewsChecked(len(entries) - len(unchecked), problems, unchecked)
