"""Why did this happen? The causal chain of a decision, rebuilt from the ledger alone.

Backwards: causation ids (the envelope that caused this one) and evidence ids (the observations an agent
cited) lead to the observations and agent messages behind a proposal. Forwards: every entry whose subject is
the proposal id — verdicts (rule ids, policy version), human approvals and rejections, the resolution, the
authorization and the execution. Any entry of the chain can be the starting point.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field

from coalition.bus.messages import ApprovalGranted, ApprovalRejected
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.errors import EntryNotFound

DECISION_KINDS = frozenset({"proposal", "verdict", "approval", "rejection", "resolution", "authorization", "execution"})
# A verdict is a cause too: the denial an agent revised its proposal after.
CAUSE_KINDS = frozenset({"observation", "message", "proposal", "verdict", "execution", "run"})
MAX_CAUSES = 500  # a bound on the backwards walk, so a pathological ledger cannot make explain run away
HUMAN_KINDS = frozenset({"approval", "rejection"})
HUMAN_TYPES = frozenset({ApprovalGranted.TYPE, ApprovalRejected.TYPE})

DecisionCheck = Callable[[LedgerEntry], "str | None"]
"""Why a recorded human decision is not one its approver signed (None: it is); governance's
`decision_entry_problem` against the run's recorded approver keys, passed in by the CLI and the console."""


def claims_decision(entry: LedgerEntry) -> bool:
    """Whether the entry claims to be a human decision, by its kind or by its message type (what a fold reads)."""
    return entry.kind in HUMAN_KINDS or entry.message_type in HUMAN_TYPES


class ChainLink(BaseModel):
    """One ledger entry as an explanation shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    kind: str
    actor: str
    subject: str
    sim_time: datetime
    rationale: str
    outcome: str | None = None
    action: str | None = None
    gate: str | None = None
    rule_ids: list[str] = Field(default_factory=list)
    policy_version: str | None = None
    approver: str | None = None
    evidence: list[str] = Field(default_factory=list)
    message_id: str | None = None
    causation_id: str | None = None
    superstep: int | None = None
    # for an entry that claims to be a human decision: whether its approver's signature proves it (None: not one)
    verified: bool | None = None
    problem: str | None = None  # why it does not verify
    scripted: bool = False  # a claimed decision of a scenario's scripted board (its declared test identity signed it)

    @classmethod
    def of(cls, entry: LedgerEntry, decision_problem: DecisionCheck | None = None) -> ChainLink:
        """The entry as a link; with `decision_problem`, a claimed human decision is marked verified or not (why)."""
        action = entry.payload.get("action")
        problem = decision_problem(entry) if decision_problem is not None and claims_decision(entry) else None
        verified = (problem is None) if decision_problem is not None and claims_decision(entry) else None
        return cls(
            seq=entry.seq,
            kind=entry.kind,
            actor=entry.actor,
            subject=entry.subject,
            sim_time=entry.sim_time,
            rationale=entry.rationale,
            outcome=entry.outcome,
            action=action if isinstance(action, str) else None,
            gate=entry.gate,
            rule_ids=list(entry.rule_ids),
            policy_version=entry.policy_version,
            approver=entry.approver,
            evidence=list(entry.evidence),
            message_id=entry.message_id,
            causation_id=entry.causation_id,
            superstep=entry.superstep,
            verified=verified,
            problem=problem,
            scripted=verified is not None and entry.payload.get("scripted") is True,
        )


class Decision(BaseModel):
    """One proposal and everything the ledger holds about it, in the order it happened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    proposal_id: str
    proposal: ChainLink | None
    causes: list[ChainLink] = Field(default_factory=list)  # observations / agent messages behind the proposal
    verdicts: list[ChainLink] = Field(default_factory=list)
    human: list[ChainLink] = Field(default_factory=list)  # approvals and rejections their approvers signed
    # entries that claim to be approvals or rejections but do not verify (each with why): no human decided by them
    unverified: list[ChainLink] = Field(default_factory=list)
    revised_by: list[ChainLink] = Field(default_factory=list)  # later proposals that supersede this one
    resolutions: list[ChainLink] = Field(default_factory=list)
    authorizations: list[ChainLink] = Field(default_factory=list)
    executions: list[ChainLink] = Field(default_factory=list)


class Explanation(BaseModel):
    """The answer to "why?" for one ledger entry: its own causes and the decisions it belongs to or led to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seq: int
    run_id: str
    focus: ChainLink
    causes: list[ChainLink] = Field(default_factory=list)  # when the focus is not itself part of a decision
    decisions: list[Decision] = Field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(mode="json"), option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z)


class _RunIndex:
    """Cached look-ups within one run: entries by message id, observations by the evidence id they carry."""

    def __init__(self, ledger: Ledger, run_id: str, decision_problem: DecisionCheck | None = None) -> None:
        self._ledger = ledger
        self._run_id = run_id
        self._check = decision_problem
        self._by_message: dict[str, LedgerEntry | None] = {}
        self._by_evidence: dict[str, LedgerEntry] | None = None
        self._causes: dict[int, list[LedgerEntry]] = {}
        self._revisions: dict[str, list[LedgerEntry]] | None = None

    def revisions_of(self, proposal_id: str) -> list[LedgerEntry]:
        """Proposals of the run whose payload says they supersede `proposal_id` (an agent's revision)."""
        if self._revisions is None:
            index: dict[str, list[LedgerEntry]] = {}
            for entry in self._ledger.query(LedgerQuery(run_id=self._run_id, kind="proposal")):
                superseded = entry.payload.get("supersedes")
                if isinstance(superseded, str) and superseded:
                    index.setdefault(superseded, []).append(entry)
            self._revisions = index
        return self._revisions.get(proposal_id, [])

    def by_message_id(self, message_id: str) -> LedgerEntry | None:
        if message_id not in self._by_message:
            found = self._ledger.query(LedgerQuery(run_id=self._run_id, message_id=message_id, limit=1))
            self._by_message[message_id] = found[0] if found else None
        return self._by_message[message_id]

    def by_evidence_id(self, evidence_id: str) -> LedgerEntry | None:
        if self._by_evidence is None:
            index: dict[str, LedgerEntry] = {}
            for entry in self._ledger.query(LedgerQuery(run_id=self._run_id, kind="observation")):
                cited = entry.payload.get("evidence_id")
                for key in [cited, *entry.evidence] if isinstance(cited, str) and cited else entry.evidence:
                    index.setdefault(key, entry)
            self._by_evidence = index
        return self._by_evidence.get(evidence_id) or self.by_message_id(evidence_id)

    def parents(self, entry: LedgerEntry) -> list[LedgerEntry]:
        found: list[LedgerEntry] = []
        if entry.causation_id:
            parent = self.by_message_id(entry.causation_id)
            if parent is not None:
                found.append(parent)
        if entry.kind != "observation":  # an observation's evidence is itself, not a cause
            for evidence_id in entry.evidence:
                cited = self.by_evidence_id(evidence_id)
                if cited is not None:
                    found.append(cited)
        return [p for p in found if p.seq != entry.seq]

    def causes(self, entry: LedgerEntry) -> list[LedgerEntry]:
        """Every entry reachable backwards through causation and evidence links, in seq order."""
        if entry.seq in self._causes:
            return self._causes[entry.seq]
        seen: dict[int, LedgerEntry] = {}
        frontier = [entry]
        while frontier and len(seen) < MAX_CAUSES:
            current = frontier.pop()
            for parent in self.parents(current):
                if parent.seq not in seen and parent.seq != entry.seq:
                    seen[parent.seq] = parent
                    frontier.append(parent)
        result = [seen[s] for s in sorted(seen)]
        self._causes[entry.seq] = result
        return result

    def decision(self, proposal_id: str) -> Decision:
        entries = self._ledger.query(LedgerQuery(run_id=self._run_id, subject=proposal_id))
        buckets: dict[str, list[ChainLink]] = {kind: [] for kind in DECISION_KINDS}
        human: list[ChainLink] = []
        unverified: list[ChainLink] = []
        proposal: LedgerEntry | None = None
        for entry in entries:
            if claims_decision(entry):  # whatever its kind: a decision its approver signed, or none at all
                link = self.link(entry)
                (unverified if link.verified is False else human).append(link)
                continue
            if entry.kind not in DECISION_KINDS:
                continue
            if entry.kind == "proposal" and proposal is None:
                proposal = entry
            buckets[entry.kind].append(self.link(entry))
        causes = [c for c in self.causes(proposal) if c.kind in CAUSE_KINDS] if proposal is not None else []
        return Decision(
            proposal_id=proposal_id,
            proposal=self.link(proposal) if proposal is not None else None,
            causes=[self.link(c) for c in causes],
            verdicts=buckets["verdict"],
            human=human,
            unverified=unverified,
            revised_by=[self.link(r) for r in self.revisions_of(proposal_id)],
            resolutions=buckets["resolution"],
            authorizations=buckets["authorization"],
            executions=buckets["execution"],
        )

    def link(self, entry: LedgerEntry) -> ChainLink:
        return ChainLink.of(entry, self._check)

    def proposals_caused_by(self, focus: LedgerEntry) -> list[str]:
        """Proposal ids of the run whose causes include the focus entry (in proposal order)."""
        found: list[str] = []
        for proposal in self._ledger.query(LedgerQuery(run_id=self._run_id, kind="proposal", after_seq=focus.seq)):
            if any(cause.seq == focus.seq for cause in self.causes(proposal)) and proposal.subject not in found:
                found.append(proposal.subject)
        return found


def explain(ledger: Ledger, seq: int, *, decision_problem: DecisionCheck | None) -> Explanation:
    """The causal chain of the decision(s) entry `seq` belongs to or led to; EntryNotFound if there is none.

    `decision_problem` is required, by name: the check that a claimed human decision is its approver's signed one.
    None (nothing to check against) lists every claimed decision as unverified ("not checked"), never as human."""
    focus = ledger.get(seq)
    if focus is None:
        raise EntryNotFound(seq)
    index = _RunIndex(ledger, focus.run_id, decision_problem or _not_checked)
    causes: list[LedgerEntry] = []
    if focus.kind in DECISION_KINDS and focus.subject:
        proposal_ids = [focus.subject]
    else:
        causes = index.causes(focus)
        proposal_ids = index.proposals_caused_by(focus)
    return Explanation(
        seq=seq,
        run_id=focus.run_id,
        focus=index.link(focus),
        causes=[index.link(c) for c in causes],
        decisions=[index.decision(pid) for pid in proposal_ids],
    )


def _not_checked(entry: LedgerEntry) -> str:
    return "its signature was not checked"


def summary_line(link: ChainLink) -> str:
    """A one-line description of a chain link, for trees and tables (a claimed human decision that does not
    verify says so first, and why last)."""
    parts: list[Any] = [f"#{link.seq}", "UNVERIFIED" if link.verified is False else None, link.kind]
    if link.action:
        parts.append(link.action)
    if link.outcome:
        parts.append(f"→ {link.outcome}")
    if link.gate:
        parts.append(f"[gate {link.gate}]")
    parts.append(f"by {link.actor}")
    if link.verified is not None and link.approver:  # a claimed decision names whose it claims to be
        parts.append(f"(approver {link.approver})")
    if link.verified is True:
        parts.append("(scripted board, signature verified)" if link.scripted else "(signature verified)")
    elif link.verified is False:
        parts.append(f"— NOT a verified human decision: {link.problem}")
    return " ".join(str(p) for p in parts if p is not None)


def cited_entry(ledger: Ledger, run_id: str, evidence_id: str) -> LedgerEntry | None:
    """The entry an evidence id names within a run (the observation carrying it, or the message with that id)."""
    return _RunIndex(ledger, run_id).by_evidence_id(evidence_id)
