"""The runner: drives a scenario through supersteps so that the ledger is the same however agents are scheduled.

Per day: the world opens the day (snapshot + scheduled events), then supersteps run until quiescence — agents
(phase A), governance (B), executor (C), recorder (D) — then pending escalations are answered by the scripted
board (or a human, interactively, with the simulated clock paused) and the loop runs again until nothing moves.

Resuming an interrupted run is a deterministic re-execution: every id is derived from the scenario and seed,
and the recorder deduplicates on envelope ids, so what was already recorded is not recorded twice and the run
carries on from where it stopped (as Temporal replays a workflow's history).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import structlog

from coalition.agents.model_choice import ModelChoice
from coalition.bus import topics
from coalition.bus.base import Bus, Delivery
from coalition.bus.clock import IdFactory, SimulatedClock
from coalition.bus.envelope import Envelope
from coalition.bus.keys import Keyring
from coalition.bus.message import Message
from coalition.bus.messages import (
    ActionProposed,
    DecisionsTaken,
    Observation,
    RunFinished,
    RunStarted,
)
from coalition.domain import Pack
from coalition.governance.approvals import record_decision
from coalition.governance.decision_signatures import REPLAYED_METHOD, SCRIPTED_METHODS, scripted_key
from coalition.governance.escalation import DecisionKind, Escalation
from coalition.governance.policy import Policy
from coalition.governance.service import GovernanceService
from coalition.ledger.base import Ledger, LedgerQuery
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.recorder import Recorder
from coalition.ledger.stored_entry import StoredEntry
from coalition.scenarios.board import Board, PendingEscalation
from coalition.scenarios.decision_points import DecisionHistory
from coalition.scenarios.errors import RunnerError
from coalition.scenarios.events import make_observation
from coalition.scenarios.executor import Executor
from coalition.scenarios.expectations import ExpectationResult, RecordedEntry, check_expectations
from coalition.scenarios.spec import Scenario, scenario_hash

if TYPE_CHECKING:  # model objects: a run that replays its agents' recorded outputs never loads LangChain
    from langchain_core.language_models import BaseChatModel

    from coalition.agents.prices import PriceTable
    from coalition.agents.providers import ProviderAccess
    from coalition.agents.recording import ReplayChatModel

log = structlog.get_logger("coalition.runner")

EXECUTOR_GROUP = "executor"
MAX_SUPERSTEPS_PER_DAY = 200


class AgentStep(Protocol):
    """Phase A of a superstep for one agent: what it published (a runtime over its graph, or a recorded replay)."""

    def step(self, superstep: int, sim_time: datetime) -> int: ...


@runtime_checkable
class RemoteStep(AgentStep, Protocol):
    """Phase A run by agent workers in other processes (scenarios/agent_workers.py): told when the run is over."""

    def close(self) -> None: ...


@dataclass(frozen=True)
class RemoteRun:
    """What agent workers are told of a run to build its agents exactly as this process would."""

    scenario: Scenario
    policy: Policy
    seed: int
    run_id: str
    raw_bus: Bus  # the backend, as given (workers reach the run's streams on it)
    bus: Bus  # the run's signed bus (its keyring holds the keys the run trusts)
    model_choices: dict[str, ModelChoice]
    options: RunnerOptions
    agents: list[str]  # every agent of the run, in canonical order


@dataclass(frozen=True)
class Answer:
    """One decision to record on an escalation (from the scripted board, or a recorded human in a replay)."""

    approver: str
    decision: DecisionKind
    reason: str
    method: str
    sim_time: datetime | None = None  # None: now (simulated)
    signature: str | None = None  # a recorded decision's signature (replay); None: the board signs now
    amend: dict[str, Any] | None = None  # an approval that amends an assistive draft: the arguments to change
    signed_run: str | None = None  # a recorded decision's run (replay of that run); None: signed for this run


@dataclass(frozen=True)
class DayProgress:
    """What the runner reports after each simulated day (for progress bars and the live console)."""

    day: int
    days: int
    sim_time: datetime
    superstep: int
    pending_escalations: int
    waiting_for_human: bool = False


@dataclass
class RunResult:
    """How a run ended: status, expectation results and the summary the CLI prints."""

    run_id: str
    status: str
    expectations: list[ExpectationResult]
    summary: dict[str, Any]
    supersteps: int
    days: int
    wall_seconds: float

    @property
    def expectations_passed(self) -> bool:
        return all(r.passed for r in self.expectations)


@dataclass
class RunnerOptions:
    """Knobs of one run that are not part of the scenario."""

    interactive: bool = False
    approval_wait_seconds: float = 600.0  # interactive: how long to wait for humans before the clock moves on
    poll_seconds: float = 0.5
    model: BaseChatModel | None = None  # one model for every agent (tests); else per-agent `models`
    models: dict[str, ModelChoice] | None = None  # default: the scenario's agents block, else offline
    provider_access: ProviderAccess | None = None  # keys and base URLs for paid providers
    prices: PriceTable | None = None
    replay: dict[str, ReplayChatModel] | None = None  # recorded answers (recorded_models) instead of providers
    board: Board | None = None  # who answers escalations when not interactive (default: the scenario's board)
    history: DecisionHistory | None = None  # recorded decision points to follow (default: the run's own ledger)
    on_day: Callable[[DayProgress], None] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # the producers' signing keys (coalition keys); None: ephemeral keys for this process (the ledger's content
    # does not depend on them: signatures authenticate the traffic and are not recorded)
    keyring: Keyring | None = None
    # a second policy evaluated beside the governing one on every proposal (policy rollout): its would-be verdict
    # is recorded on each verdict (VerdictIssued.shadow) and its document in run.started; it never decides
    shadow_policy: Policy | None = None
    # agent workers in other processes run phase A (scenarios/agent_workers.py): given the run, the one step that
    # has them run every agent; None: the agents run in this process
    agent_workers: Callable[[RemoteRun], RemoteStep] | None = None


def policy_brief(policy: Policy, pack: Pack) -> Observation | None:
    """The rules every agent must know, as data, as the pack tells its agents (Pack.brief; None: the pack has no
    brief). Informative: governance enforces them whatever agents believe."""
    if pack.brief is None:
        return None
    to = pack.world.observations.get("policy.brief") if pack.world is not None else None
    recipients = list(to) if to is not None else list(pack.agent_names)
    return make_observation("policy.brief", subject=policy.name, to=recipients, data=dict(pack.brief(policy)))


def recorded_models(ledger: Ledger, run_id: str) -> dict[str, ReplayChatModel]:
    """Replay models answering from a run's recorded paid calls (for `coalition replay`: no key, no network).

    Use with the run's model choices (`run.started` settings `models`): RunnerOptions(models=…, replay=…)."""
    from coalition.agents.recording import replay_models  # LangChain: loaded by the commands that replay models

    calls = [
        e.payload
        for e in ledger.query(LedgerQuery(run_id=run_id, kind="model_call"))  # indexed: not the whole run
        if e.message_type == "model.called"
    ]
    return replay_models(calls)


def recorded_choices(settings: dict[str, Any]) -> dict[str, ModelChoice] | None:
    """The per-agent model choices a run recorded in its `run.started` settings (None for an all-offline run)."""
    raw = settings.get("models")
    if not isinstance(raw, dict):
        return None
    return {agent: ModelChoice.model_validate(choice) for agent, choice in raw.items()}


def pending_view(escalation: Escalation) -> PendingEscalation:
    proposal = escalation.proposal
    return PendingEscalation(
        proposal_id=proposal.proposal_id,
        agent=proposal.agent,
        action=proposal.action,
        gate=escalation.gate,
        args=dict(proposal.args),
        proposal_hash=escalation.proposal_hash,
        approver_roles=tuple(escalation.approver_roles),
        approvals_required=escalation.approvals_required,
    )


def scripted_answers(board: Board, escalation: Escalation, day: int) -> list[Answer]:
    """The scripted board's answer to an escalation (none: it expires as deny at its deadline)."""
    decision = board.decide(pending_view(escalation), day)
    if decision is None:
        return []
    kind: DecisionKind = "reject" if decision.decision == "reject" else "approve"
    amend = dict(decision.args) if decision.decision == "amend" else None
    return [Answer(a.name, kind, decision.reason, "scenario-board", amend=amend) for a in decision.approvers]


class EscalationAnswers(Protocol):
    """Who answers escalations when no human is at the keyboard: the scenario's scripted board, or (a replay, a
    what-if) the decisions a recorded run took."""

    @property
    def original_run(self) -> str | None:
        """The recorded run whose humans' decisions these are (a re-execution of it), taken as they were signed;
        None: decisions are signed for this run."""

    def answers_for(self, escalation: Escalation, day: int) -> list[Answer]: ...

    def before_recorded_point(self, decisions: Sequence[str]) -> None:
        """The run's history took these decisions at this point: put them into the run's ledger before they are
        taken, where they are not there already (a resumed run has them; a replay records them first)."""


@dataclass(frozen=True)
class ScriptedAnswers:
    """The scenario's scripted board answers; a resumed run's recorded decisions are in its ledger already."""

    board: Board

    @property
    def original_run(self) -> str | None:
        return None

    def answers_for(self, escalation: Escalation, day: int) -> list[Answer]:
        return scripted_answers(self.board, escalation, day)

    def before_recorded_point(self, decisions: Sequence[str]) -> None:
        return None


@dataclass(frozen=True)
class RunParts:
    """Everything one run is made of, wired together by `assemble_run` (coalition.scenarios.assembly): the Runner
    only drives them."""

    scenario: Scenario
    run_id: str
    seed: int
    policy: Policy
    pack: Pack
    options: RunnerOptions
    ledger: Ledger
    raw_bus: Bus  # the backend, as given
    bus: Bus  # what the run's producers and consumers use: raw_bus signed and verified (unsigned: replay --verify)
    ids: IdFactory
    clock: SimulatedClock
    world: Any
    executor: Executor
    governance: GovernanceService
    model_choices: dict[str, ModelChoice]
    runtimes: Sequence[AgentStep]
    recorder: Recorder
    history: DecisionHistory
    answers: EscalationAnswers
    recorded_executions: Mapping[str, str]  # an earlier attempt's applied executions: idempotency key -> envelope id
    started: RunStarted | None = None  # a replay's recorded run.started, recorded verbatim


class Runner:
    """One run of one scenario over one bus and one ledger, from the parts `assemble_run` built for it."""

    def __init__(self, parts: RunParts) -> None:
        self.scenario = parts.scenario
        self.run_id = parts.run_id
        self.seed = parts.seed
        self.policy = parts.policy
        self.pack = parts.pack
        self.options = parts.options
        self.ledger = parts.ledger
        self.raw_bus = parts.raw_bus
        self.bus = parts.bus
        self.ids = parts.ids
        self.clock = parts.clock
        self.world = parts.world
        self.executor = parts.executor
        self.governance = parts.governance
        self.model_choices = parts.model_choices
        self.runtimes = list(parts.runtimes)
        self.recorder = parts.recorder
        self.history = parts.history
        self.answers = parts.answers
        self._started = parts.started
        self._recorded_executions = dict(parts.recorded_executions)
        self._runner_ids = self.ids.child("runner")
        self._world_ids = self.ids.child("world")
        self._executor_ids = self.ids.child("executor")
        self._proposals: dict[str, ActionProposed] = {}  # what agents asked for: authorizations must match it
        self.superstep = 0

    # ----- public ------------------------------------------------------------------------------------------

    def run(self) -> RunResult:
        # The run's log context is the run's own: a process that runs one run after another (a sweep worker) must
        # not stamp this run's lines with the last run's superstep, nor later lines with this run's id.
        structlog.contextvars.unbind_contextvars("superstep")
        with structlog.contextvars.bound_contextvars(run_id=self.run_id):
            try:
                return self._run()
            finally:
                structlog.contextvars.unbind_contextvars("superstep")

    def _run(self) -> RunResult:
        started = time.perf_counter()
        log.info("run.start", scenario=self.scenario.name, seed=self.seed)
        self._publish(topics.CONTROL, self._run_started(), source="runner")
        self.recorder.flush()
        try:
            for day in range(self.scenario.days):
                self._run_day(day)
            return self._finish(time.perf_counter() - started)
        finally:
            for runtime in self.runtimes:
                if isinstance(runtime, RemoteStep):
                    runtime.close()

    # ----- one day -----------------------------------------------------------------------------------------

    def _run_day(self, day: int) -> None:
        now = self.clock.set(self.scenario.date_of(day))
        self.governance.tick(now, take_decisions=False)  # decisions are taken at decision points only
        assert self.pack.world is not None
        observations = self.pack.world.open_day(self.world, self.scenario, day, self._budget_limits())
        brief = policy_brief(self.policy, self.pack) if day == 0 else None
        if brief is not None:
            observations.insert(0, brief)
        self._publish_many([(topics.OBSERVATIONS, o) for o in observations], source="world")
        self.recorder.flush()
        self._until_quiescent(day)
        # The day's decision points: humans (or the scripted board) answer what waits; governance takes the
        # decisions in only here, so a resumed or replayed run takes each one at the same point of the story.
        while self.governance.pending():
            if not self._decision_point(day):
                break  # nobody answered what is left: it expires as deny at its deadline
            self._until_quiescent(day)
        self._report(day)

    def _until_quiescent(self, day: int) -> None:
        for _ in range(MAX_SUPERSTEPS_PER_DAY):
            self.superstep += 1
            structlog.contextvars.bind_contextvars(superstep=self.superstep)
            now = self.clock.now()
            produced = sum(runtime.step(self.superstep, now) for runtime in self.runtimes)
            produced += self.governance.step(self.superstep)
            produced += self._execute(now)
            self.recorder.flush()
            if produced == 0:
                return
        raise RunnerError(f"day {day} did not settle after {MAX_SUPERSTEPS_PER_DAY} supersteps (agents keep talking)")

    def _execute(self, now: datetime) -> int:
        """Phase C: apply this step's authorizations in canonical order; the executor is the only world writer."""
        deliveries: list[Delivery] = []
        while batch := self.bus.read(
            [topics.PROPOSALS, topics.AUTHORIZATIONS], EXECUTOR_GROUP, "executor-1", count=500
        ):
            deliveries.extend(batch)
        for delivery in deliveries:
            if delivery.envelope is not None and isinstance(delivery.envelope.payload, ActionProposed):
                self._proposals.setdefault(delivery.envelope.payload.proposal_id, delivery.envelope.payload)
        ordered = sorted(
            (d for d in deliveries if d.envelope is not None and d.topic == topics.AUTHORIZATIONS),
            key=lambda d: (d.envelope.superstep, d.envelope.source) if d.envelope else (0, ""),
        )
        out: list[tuple[str, Envelope]] = []
        for delivery in ordered:
            assert delivery.envelope is not None
            executed = self.executor.apply(delivery.envelope, proposals=self._proposals)
            envelope = self._wrap(executed, "executor", now, cause=delivery.envelope)
            first = self._recorded_executions.get(executed.idempotency_key) if executed.status == "applied" else None
            if first is not None and first != envelope.id:
                # An earlier attempt of this run already recorded this authorization as applied: the world in this
                # process is rebuilt, but the ledger keeps one execution per authorization (the recorder skips it).
                log.warning("resume.execution_already_recorded", key=executed.idempotency_key, first=first)
                envelope = envelope.model_copy(update={"id": first})
            out.append((topics.EXECUTIONS, envelope))
        for delivery in deliveries:
            if delivery.envelope is None:
                log.warning("executor.undecodable", broker_id=delivery.broker_id, error=delivery.error)
        if out:
            self.bus.publish_many(out)
        if deliveries:
            self.bus.ack(EXECUTOR_GROUP, deliveries)
        self._executor_ids.new()  # the id a step.done report once took: recorded ledgers replay identical
        return len(out)

    # ----- escalations -------------------------------------------------------------------------------------

    def _decision_point(self, day: int) -> list[LedgerEntry]:
        """Take human decisions in, and record which (none: the clock moves on). Where the run's history (an
        earlier attempt of this run, or the run being replayed) recorded this point, exactly the decisions it
        took are taken, in its order, without waiting; past the recorded history, the decisions already in the
        ledger (a quick human, one who decided while the run was down, what the board recorded before an earlier
        attempt stopped), then, interactive, the humans if none was there, else the scripted board for what is
        still pending."""
        recorded = self.history.at(day, self.superstep)
        if recorded is not None:
            self.answers.before_recorded_point(recorded)
            taken = self.governance.take_decisions(only=recorded)
        else:
            taken = self.governance.take_decisions()
            if self.options.interactive:
                if not taken:
                    taken = self._wait_for_humans(day)
            elif self._board_answers(day):
                # the board answers what is still pending here, even when this point took decisions already: those
                # are what an earlier attempt of this run recorded before it stopped (a disk that filled up between
                # two of the board's decisions), and the run that never stopped took them all at this point
                taken += self.governance.take_decisions()
        point = DecisionsTaken(
            day=day,
            decisions=[str(e.message_id) for e in taken],
            proposals=[e.subject for e in taken],
            pending=len(self.governance.pending()),
        )
        self._publish(topics.CONTROL, point, source="runner")
        self.recorder.flush()
        return taken

    def _board_answers(self, day: int) -> int:
        """Record the answers to every pending escalation; returns how many decisions were recorded."""
        return sum(self.record_answers(e, self.answers.answers_for(e, day)) for e in self.governance.pending())

    def record_answers(self, escalation: Escalation, answers: Sequence[Answer]) -> int:
        """Record answers through the approvals service (the same checks as the CLI and the console) until the
        escalation is decided; approvers who already decided are skipped."""
        already = {d.approver for d in escalation.approvals}
        recorded = 0
        for answer in answers:
            if answer.approver in already:
                continue
            now = self.clock.now()
            # a scripted board signs with its declared test identities (marked scripted in the ledger); a
            # replayed human decision carries the signature it was recorded with
            scripted = answer.method in SCRIPTED_METHODS and answer.signature is None
            decide = partial(
                record_decision,
                self.ledger,
                run_id=self.run_id,
                proposal_id=escalation.proposal_id,
                approver=answer.approver,
                decision=answer.decision,
                reason=answer.reason,
                proposal_hash=escalation.proposal_hash,
                sim_time=max(answer.sim_time, now) if answer.sim_time is not None else now,
                policy=self.policy,
                amend=answer.amend,
            )
            key = scripted_key(answer.approver) if scripted else None
            result = decide(method=answer.method, key=key, signature=answer.signature, signed_run=answer.signed_run)
            if result.code == "bad_signature" and answer.signature is not None:
                # a recorded decision applied to another story (a what-if: another proposal hash or time) is not
                # what its approver signed: it is replayed by script, marked so; an interactive run refuses it
                result = decide(method=REPLAYED_METHOD, key=scripted_key(answer.approver))
            if result.accepted:
                recorded += 1
            else:
                log.warning("board.refused", proposal_id=escalation.proposal_id, reason=result.reason)
            if result.status != "pending":
                break  # decided (quorum reached, or one rejection): later approvers are not needed
        return recorded

    def _wait_for_humans(self, day: int) -> list[LedgerEntry]:
        """Interactive: the simulated clock stays where it is while humans decide from another process; returns the
        decisions taken in at this point.

        The wait polls for decisions governance can take (not for a change in how many the ledger holds), so a
        decision recorded at any instant of the wait, its first instant included, is taken at this point, and a
        decision governance cannot take (unsigned, or for an escalation no longer open) does not end the wait. When
        the wait runs out nothing is taken: the clock moves on and the escalations expire as deny at their
        deadlines, unless someone decides before that."""
        deadline = time.monotonic() + self.options.approval_wait_seconds
        self._report(day, waiting=True)
        while time.monotonic() < deadline:
            time.sleep(self.options.poll_seconds)
            taken = self.governance.take_decisions()
            if taken:
                return taken
        log.warning("interactive.wait_expired", pending=len(self.governance.pending()))
        return self.governance.take_decisions()  # one recorded in the wait's last instant

    # ----- the end -----------------------------------------------------------------------------------------

    def _finish(self, wall_seconds: float) -> RunResult:
        bodies = getattr(self.ledger, "run_bodies", None)  # a backend that hands out stored bodies: no model per row
        entries: Sequence[RecordedEntry] = (
            [StoredEntry.of(body) for body in bodies(self.run_id)]
            if bodies is not None
            else list(self.ledger.iter_entries(run_id=self.run_id))
        )
        results = check_expectations(self.scenario.expectations, entries, self.world)
        summary = self._summary(entries)
        finished = RunFinished(
            status="completed",
            summary=summary,
            expectations=[r.model_dump(mode="json") for r in results],
        )
        self._publish(topics.CONTROL, finished, source="runner")
        self.recorder.flush()
        log.info("run.finished", run_id=self.run_id, supersteps=self.superstep)
        return RunResult(
            run_id=self.run_id,
            status="completed",
            expectations=results,
            summary=summary,
            supersteps=self.superstep,
            days=self.scenario.days,
            wall_seconds=wall_seconds,
        )

    def _summary(self, entries: Sequence[Any]) -> dict[str, Any]:
        verdicts: Counter[str] = Counter()
        executed: Counter[str] = Counter()
        resolutions: Counter[str] = Counter()
        for entry in entries:
            if entry.kind == "verdict":
                verdicts[f"{entry.payload.get('agent')}:{entry.outcome}"] += 1
            elif entry.kind == "execution":
                executed[str(entry.outcome)] += 1
            elif entry.kind == "resolution":
                resolutions[str(entry.outcome)] += 1
        return {
            "verdicts": dict(sorted(verdicts.items())),
            "executions": dict(sorted(executed.items())),
            "resolutions": dict(sorted(resolutions.items())),
            "kpis": self.world.kpis(),
            "supersteps": self.superstep,
            "policy_version": self.policy.version,
        }

    # ----- plumbing ----------------------------------------------------------------------------------------

    def _run_started(self) -> RunStarted:
        if self._started is not None:  # a replay records the run.started it replays, verbatim
            return self._started
        return RunStarted(
            scenario=self.scenario.name,
            scenario_hash=scenario_hash(self.scenario),
            seed=self.seed,
            policy_version=self.policy.version,
            start=self.scenario.date_of(0),
            days=self.scenario.days,
            # No file path is recorded: a run is made by the documents' content, never by where they were read
            # from (the same scenario by any path or checkout gives the same ledger content).
            settings={
                "interactive": self.options.interactive,
                # the documents as they were read (never re-serialised through today's models), so that a run
                # can be replayed from its ledger alone, by this version of Coalition or a later one
                "scenario_document": self.scenario.document,
                "policy_document": self.policy.document,
                **self._shadow_settings(),
                **self._model_settings(),
                **self.options.settings,
            },
        )

    def _shadow_settings(self) -> dict[str, Any]:
        """A shadow policy's document is part of the run (a replay evaluates it again); no shadow records nothing."""
        shadow = self.options.shadow_policy
        return {} if shadow is None else {"shadow_policy_document": shadow.document}

    def _model_settings(self) -> dict[str, Any]:
        """Paid model choices go into the run record (replay needs them); an all-offline run records nothing."""
        if self.options.model is not None or all(c.provider == "offline" for c in self.model_choices.values()):
            return {}
        return {"models": {agent: c.model_dump(mode="json") for agent, c in sorted(self.model_choices.items())}}

    def _budget_limits(self) -> dict[str, Decimal]:
        return {agent: budget.money_usd for agent, budget in self.policy.budgets.agents.items()}

    def _report(self, day: int, *, waiting: bool = False) -> None:
        if self.options.on_day is not None:
            self.options.on_day(
                DayProgress(
                    day=day,
                    days=self.scenario.days,
                    sim_time=self.clock.now(),
                    superstep=self.superstep,
                    pending_escalations=len(self.governance.pending()),
                    waiting_for_human=waiting,
                )
            )

    def _wrap(self, message: Message, source: str, now: datetime, *, cause: Envelope | None = None) -> Envelope:
        ids = {"runner": self._runner_ids, "world": self._world_ids, "executor": self._executor_ids}[source]
        new_id = ids.new()
        return Envelope.wrap(
            message,
            id=new_id,
            source=source,
            run_id=self.run_id,
            superstep=self.superstep,
            sim_time=now,
            correlation_id=cause.correlation_id if cause is not None else new_id,
            causation_id=cause.id if cause is not None else None,
        )

    def _publish(self, topic: str, message: Message, *, source: str) -> None:
        self.bus.publish(topic, self._wrap(message, source, self.clock.now()))

    def _publish_many(self, items: Sequence[tuple[str, Message]], *, source: str) -> None:
        now = self.clock.now()
        self.bus.publish_many([(topic, self._wrap(m, source, now)) for topic, m in items])
