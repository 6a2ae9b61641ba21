"""Replay: re-execute a recorded run from its ledger alone (recorded scenario, policy, seed and human decisions)
into a scratch ledger, and compare the two entry by entry on the fields a replay must reproduce."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from coalition.agents.model_choice import ModelChoice, choose_models
from coalition.bus.memory import MemoryBus
from coalition.bus.message import parse_payload
from coalition.bus.messages import RunStarted
from coalition.domain.catalog import catalog
from coalition.domain.errors import PackError
from coalition.governance.approvals import record_decision, run_started, run_started_of_bodies
from coalition.governance.errors import PolicyError
from coalition.governance.escalation import Escalation
from coalition.governance.policy import Policy, parse_policy
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.digest import digest_of, history_fields
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.history import HUMAN_DECISIONS
from coalition.ledger.sqlite import SqliteLedger, entry_of_fields
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.board import Board
from coalition.scenarios.consistency import decision_args
from coalition.scenarios.decision_points import DecisionHistory
from coalition.scenarios.errors import ScenarioError, ScenariosError
from coalition.scenarios.runner import (
    Answer,
    RunnerOptions,
    RunResult,
    recorded_choices,
    recorded_models,
    scripted_answers,
)
from coalition.scenarios.spec import Scenario, scenario_hash

if TYPE_CHECKING:  # model objects: replay --verify takes the agents' words as recorded and never loads LangChain
    from coalition.agents.providers import ProviderAccess
    from coalition.agents.recording import ReplayChatModel

log = structlog.get_logger(__name__)


class ReplayError(ScenariosError):
    """A run cannot be replayed from this ledger (missing run, missing documents, altered documents)."""


@dataclass(frozen=True, slots=True)
class RecordedDecision:
    """One human decision as the ledger holds it, with the proposal it was about."""

    proposal_id: str
    approver: str
    decision: str  # "approve" | "reject"
    reason: str
    method: str
    sim_time: datetime
    agent: str = ""
    signature: str | None = None  # the approver's signature, replayed as it was (decision_signatures)
    action: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    message_id: str = ""
    amend: dict[str, Any] | None = None  # the arguments an approval adopted instead (an amended assistive draft)
    signed_run: str | None = None  # the run the approver signed the decision for (None: not bound to a run)


@dataclass(frozen=True)
class RecordedRun:
    """Everything a re-execution needs, read back from the ledger."""

    run_id: str
    started: RunStarted
    scenario: Scenario
    policy: Policy
    decisions: list[RecordedDecision]
    shadow_policy: Policy | None = None

    @property
    def seed(self) -> int:
        return self.started.seed


def recorded_run(ledger: Ledger, run_id: str, *, bodies: Sequence[dict[str, Any]] | None = None) -> RecordedRun:
    """Read a run's inputs back from its ledger; ReplayError names what is missing or altered. `bodies`: the run's
    stored entry bodies, when the caller has read them already (replay --verify): its run.started and human decisions
    are taken from them rather than read from the ledger again."""
    # one that no longer validates: MalformedEntry, one line as any reader's
    started = run_started(ledger, run_id) if bodies is None else run_started_of_bodies(bodies, run_id)
    if started is None:
        raise ReplayError(f"no run {run_id!r} in the ledger")
    scenario_doc = started.settings.get("scenario_document")
    policy_doc = started.settings.get("policy_document")
    if not isinstance(scenario_doc, dict) or not isinstance(policy_doc, dict):
        raise ReplayError(f"run {run_id!r} did not record its scenario and policy documents; it cannot be replayed")
    pack = scenario_doc.get("pack")
    if isinstance(pack, str):  # a pack not installed here: say so, rather than how its documents fail to validate
        try:
            catalog().pack(pack)
        except PackError as exc:
            raise ReplayError(f"run {run_id!r} needs {exc}") from None
    try:
        scenario = Scenario.model_validate(scenario_doc)
        policy = parse_policy(policy_doc, source=f"run {run_id}")
    except (ValueError, PolicyError, ScenarioError) as exc:
        raise ReplayError(f"run {run_id!r}: recorded documents do not validate: {str(exc).splitlines()[0]}") from None
    if scenario_hash(scenario) != started.scenario_hash:
        raise ReplayError(f"run {run_id!r}: the recorded scenario does not match its hash (altered ledger?)")
    if policy.version != started.policy_version:
        raise ReplayError(f"run {run_id!r}: the recorded policy does not match its version (altered ledger?)")
    shadow = None
    shadow_doc = started.settings.get("shadow_policy_document")
    if shadow_doc is not None:
        try:
            shadow = parse_policy(shadow_doc, source=f"run {run_id} shadow policy")
        except PolicyError as exc:
            raise ReplayError(f"run {run_id!r}: the recorded shadow policy does not validate: {exc}") from None
    decisions = recorded_decisions(ledger, run_id) if bodies is None else decisions_of_bodies(bodies)
    return RecordedRun(run_id, started, scenario, policy, decisions, shadow)


def recorded_decisions(ledger: Ledger, run_id: str) -> list[RecordedDecision]:
    """The run's approvals and rejections in ledger order, each with its proposal's agent, action and args."""
    decided = [*ledger.query(LedgerQuery(run_id=run_id, kind="approval"))]
    decided += ledger.query(LedgerQuery(run_id=run_id, kind="rejection"))
    proposals: dict[str, dict[str, Any]] = {}
    for subject in dict.fromkeys(entry.subject for entry in decided):
        # the last proposal recorded under each decided subject, one indexed read each: not an entry model built for
        # every proposal of the run (most are never escalated, let alone decided)
        last = ledger.query(LedgerQuery(run_id=run_id, kind="proposal", subject=subject, newest_first=True, limit=1))
        if last:
            proposals[subject] = last[0].payload
    return [
        _recorded_decision(entry, proposals.get(entry.subject, {})) for entry in sorted(decided, key=lambda e: e.seq)
    ]


def decisions_of_bodies(bodies: Sequence[dict[str, Any]]) -> list[RecordedDecision]:
    """`recorded_decisions` from a run's stored entry bodies (all of them, read already): each decision read as the
    entry a query builds (one that does not validate is a MalformedEntry, as there), in sequence order, with the
    last proposal recorded under its subject."""
    proposals: dict[str, dict[str, Any]] = {}
    decided: list[LedgerEntry] = []
    for body in bodies:  # proposals keep their sequence order in a history: the last one read is the last recorded
        kind = body.get("kind")
        if kind == "proposal" and isinstance(payload := body.get("payload"), dict):
            proposals[str(body.get("subject", ""))] = payload
        elif kind in HUMAN_DECISIONS:
            decided.append(entry_of_fields(body, ""))  # the hash is its row's, never read for a decision
    return [
        _recorded_decision(entry, proposals.get(entry.subject, {})) for entry in sorted(decided, key=lambda e: e.seq)
    ]


def _recorded_decision(entry: LedgerEntry, proposal: dict[str, Any]) -> RecordedDecision:
    """One recorded approval or rejection, with the payload of the proposal it decided ({}: none recorded)."""
    return RecordedDecision(
        proposal_id=entry.subject,
        approver=str(entry.payload.get("approver") or entry.approver or ""),
        decision="approve" if entry.kind == "approval" else "reject",
        reason=str(entry.payload.get("reason") or entry.rationale),
        method=str(entry.payload.get("method") or "cli"),
        sim_time=entry.sim_time,
        signature=entry.payload.get("signature") if isinstance(entry.payload.get("signature"), str) else None,
        agent=str(proposal.get("agent", "")),
        action=str(proposal.get("action", "")),
        args=dict(proposal.get("args", {})),
        message_id=entry.message_id or "",
        amend=dict(amended) if isinstance(amended := entry.payload.get("args"), dict) else None,
        signed_run=bound if isinstance(bound := entry.payload.get("signed_run"), str) else None,
    )


class RecordedBoard:
    """Answers escalations with the recorded human decisions: by proposal id, else (what-if) by agent + action +
    args (free text aside) of a not yet used decision, else (what-if, optional) the scenario's scripted board."""

    def __init__(self, decisions: list[RecordedDecision], *, by_content: bool, fallback: Board | None) -> None:
        self._by_id: dict[str, list[RecordedDecision]] = {}
        for d in decisions:
            self._by_id.setdefault(d.proposal_id, []).append(d)
        self._by_content = by_content
        self._fallback = fallback
        self._used: set[str] = set()
        self._mapped: dict[str, str] = {}  # new proposal id -> recorded proposal id
        self.answered_by: dict[str, str] = {}  # proposal id -> "recorded" | "recorded-by-content" | "scenario-board"

    def for_proposal(self, proposal_id: str, agent: str, action: str, args: dict[str, Any]) -> list[RecordedDecision]:
        if proposal_id in self._by_id and (proposal_id not in self._used or proposal_id in self._mapped):
            self._used.add(proposal_id)
            self._mapped[proposal_id] = proposal_id
            self.answered_by[proposal_id] = "recorded"
            return self._by_id[proposal_id]
        if proposal_id in self._mapped:
            return self._by_id[self._mapped[proposal_id]]
        if not self._by_content:
            return []
        wanted = (agent, action, decision_args(args))
        for recorded_id, decisions in self._by_id.items():
            first = decisions[0]
            if recorded_id in self._used or (first.agent, first.action, decision_args(first.args)) != wanted:
                continue
            self._used.add(recorded_id)
            self._mapped[proposal_id] = recorded_id
            self.answered_by[proposal_id] = "recorded-by-content"
            return decisions
        return []

    def by_message_id(self) -> dict[str, RecordedDecision]:
        return {d.message_id: d for decisions in self._by_id.values() for d in decisions if d.message_id}

    @property
    def fallback(self) -> Board | None:
        return self._fallback


class RecordedAnswers:
    """Escalations answered by recorded decisions, recorded exactly as they were (approver, reason, method,
    simulated time); escalations the recorded run never had (a what-if) by the board's fallback, if any."""

    def __init__(
        self, recorded: RecordedBoard, *, original_run: str, ledger: Ledger, run_id: str, policy: Policy
    ) -> None:
        self.recorded = recorded
        # the run re-executed here: the decisions its humans signed for it are taken here as they were signed
        # (assemble_run has the run's governance accept them)
        self.original_run = original_run
        self._ledger = ledger  # the re-execution's ledger
        self._run_id = run_id
        self._policy = policy  # the re-execution's governing policy

    def before_recorded_point(self, decisions: Sequence[str]) -> None:
        """The original run took these decisions here: record them into the replay's ledger exactly as they were
        (approver, reason, method, simulated time), in order, so that the next step takes them in."""
        by_id = self.recorded.by_message_id()
        for message_id in decisions:
            d = by_id.get(message_id)
            if d is None:
                continue  # not in the original ledger: the replay diverges, and the comparison will say where
            result = record_decision(
                self._ledger,
                run_id=self._run_id,
                proposal_id=d.proposal_id,
                approver=d.approver,
                decision="approve" if d.decision == "approve" else "reject",
                reason=d.reason,
                method=d.method,
                sim_time=d.sim_time,
                policy=self._policy,
                signature=d.signature,  # as the approver (or the scripted board) signed it
                amend=d.amend,
                signed_run=self._signed_run(d),
            )
            if not result.accepted:
                log.warning("replay.decision_refused", proposal_id=d.proposal_id, reason=result.reason)

    def _signed_run(self, decision: RecordedDecision) -> str | None:
        """The run a recorded decision is re-recorded as signed for: the original run's own decisions only (one
        signed for any other run was not taken there either, and is not taken here)."""
        bound = decision.signed_run
        return bound if bound is not None and bound == self.original_run else None

    def answers_for(self, escalation: Escalation, day: int) -> list[Answer]:
        """The recorded decisions on this proposal, exactly as they were; else (what-if) the fallback board."""
        proposal = escalation.proposal
        recorded = self.recorded.for_proposal(
            proposal.proposal_id, proposal.agent, proposal.action, dict(proposal.args)
        )
        if recorded:
            return [
                Answer(
                    d.approver,
                    "approve" if d.decision == "approve" else "reject",
                    d.reason,
                    d.method,
                    d.sim_time,
                    d.signature,
                    d.amend,
                    self._signed_run(d),
                )
                for d in recorded
            ]
        fallback = self.recorded.fallback
        answers = scripted_answers(fallback, escalation, day) if fallback is not None else []
        if answers:
            self.recorded.answered_by[escalation.proposal_id] = "scenario-board"
        return answers


@dataclass(frozen=True)
class Divergence:
    """The first entry where the replay differs: its position in the run and both versions."""

    index: int  # 0-based position within the run
    fields: list[str]
    original: dict[str, Any] | None
    replayed: dict[str, Any] | None


@dataclass(frozen=True)
class ReplayResult:
    """Identical (same deterministic fields, entry by entry) or the first divergence."""

    run_id: str
    replay_run_id: str
    identical: bool
    entries: int
    replayed_entries: int
    digest: str
    replay_digest: str
    divergence: Divergence | None
    original_seconds: float | None
    replay_seconds: float
    result: RunResult

    def to_json(self) -> dict[str, Any]:
        div = self.divergence
        return {
            "run_id": self.run_id,
            "identical": self.identical,
            "entries": self.entries,
            "replayed_entries": self.replayed_entries,
            "digest": self.digest,
            "replay_digest": self.replay_digest,
            "replay_seconds": round(self.replay_seconds, 3),
            "divergence": None
            if div is None
            else {"index": div.index, "fields": div.fields, "original": div.original, "replayed": div.replayed},
        }


def first_divergence(original: Iterator[LedgerEntry], replayed: Iterator[LedgerEntry]) -> Divergence | None:
    """Compare two runs entry by entry on LedgerEntry.deterministic_fields(); None when they are the same."""
    return first_field_divergence(
        [e.deterministic_fields() for e in original], [e.deterministic_fields() for e in replayed]
    )


def first_field_divergence(original: Sequence[dict[str, Any]], replayed: Sequence[dict[str, Any]]) -> Divergence | None:
    """The first position where two runs' deterministic fields (history order) differ; None when they are the same."""
    for index in range(max(len(original), len(replayed))):
        fa = original[index] if index < len(original) else None
        fb = replayed[index] if index < len(replayed) else None
        if fa != fb:
            keys = sorted(set(fa or {}) | set(fb or {}))
            fields = [k for k in keys if (fa or {}).get(k) != (fb or {}).get(k)] if fa and fb else ["(missing)"]
            return Divergence(index, fields, fa, fb)
    return None


def _wall_seconds(ledger: Ledger, run_id: str) -> float | None:
    runs = ledger.query(LedgerQuery(run_id=run_id, kind="run"))
    if len(runs) < 2:
        return None
    return (runs[-1].wall_time - runs[0].wall_time).total_seconds()


def replay(ledger: Ledger, run_id: str, *, scratch: SqliteLedger | None = None) -> ReplayResult:
    """Re-execute `run_id` from its ledger into a scratch ledger (in memory unless given) and compare."""
    recorded = recorded_run(ledger, run_id)
    replay_id = f"replay-of-{run_id}"
    board = RecordedBoard(recorded.decisions, by_content=False, fallback=None)
    started = parse_payload(RunStarted.TYPE, recorded.started.model_dump(mode="json"))
    assert isinstance(started, RunStarted)
    with ExitStack() as stack:
        target = scratch if scratch is not None else stack.enter_context(SqliteLedger.scratch())
        bus = stack.enter_context(closing(MemoryBus.for_run(replay_id)))
        began = time.perf_counter()
        runner = assemble_run(
            recorded.scenario,
            bus=bus,
            ledger=target,
            run_id=replay_id,
            seed=recorded.seed,
            policy=recorded.policy,
            # paid models answer from the recorded calls: no key, no network, the same words; a run that
            # recorded no model choices was narrated offline throughout
            options=RunnerOptions(
                models=recorded_choices(started.settings) or choose_models(),
                replay=recorded_models(ledger, run_id),
                history=DecisionHistory.read(ledger, run_id),  # each decision taken where the run took it
                shadow_policy=recorded.shadow_policy,
            ),
            answers=RecordedAnswers(
                board, original_run=run_id, ledger=target, run_id=replay_id, policy=recorded.policy
            ),
            started=started,
            # every producer on this bus is this process's own code re-executing the run (agents included): signing
            # and verifying each envelope again would only check the process against itself, and signatures are not
            # recorded (as for replay --verify; the recorded human decisions are still checked by their signatures)
            sign_traffic=False,
        )
        result = runner.run()
        seconds = time.perf_counter() - began
        # each run read once: its fields are compared and digested (the comparison is most of what a replay adds)
        original, replayed = history_fields(ledger, run_id), history_fields(target, replay_id)
        divergence = first_field_divergence(original, replayed)
        return ReplayResult(
            run_id=run_id,
            replay_run_id=replay_id,
            identical=divergence is None,
            entries=len(original),
            replayed_entries=len(replayed),
            digest=digest_of(original),
            replay_digest=digest_of(replayed),
            divergence=divergence,
            original_seconds=_wall_seconds(ledger, run_id),
            replay_seconds=seconds,
            result=result,
        )


def resume_models(
    ledger: Ledger, run_id: str, choices: Mapping[str, ModelChoice], access: ProviderAccess, *, seed: int
) -> dict[str, ReplayChatModel]:
    """For resuming `run_id`: each paid agent answers from the run's recorded calls, and asks its provider only
    what was not recorded — nothing already paid for is paid again, the budget guards count what was spent, and
    the replayed part has the recorded words. A missing key is a ModelConfigError before any request."""
    return answered_first(recorded_models(ledger, run_id), choices, access, seed=seed)


def answered_first(
    recorded: Mapping[str, ReplayChatModel], choices: Mapping[str, ModelChoice], access: ProviderAccess, *, seed: int
) -> dict[str, ReplayChatModel]:
    """Each paid agent answers from `recorded` (by request hash) and asks its provider only what is not there."""
    from coalition.agents.providers import make_model, model_parameters
    from coalition.agents.recording import ReplayChatModel

    models: dict[str, ReplayChatModel] = {}
    for agent, choice in sorted(choices.items()):
        if choice.provider == "offline":
            continue
        answers = recorded[agent].answers if agent in recorded else {}
        models[agent] = ReplayChatModel(
            agent=agent,
            model_id=choice.spec,
            params=model_parameters(choice.provider),
            answers=answers,
            live=make_model(choice, access, seed=seed),
        )
    return models
