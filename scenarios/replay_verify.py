"""`replay --verify`: re-derive a recorded run's verdicts, authorizations and effects without re-running its agents.

Governance, the executor, the world, the approvals service and the recorder run again over an in-memory ledger
(coalition.ledger.memory: chained as a SQLite ledger is, without SQL); each agent is replaced by what the
ledger says it published (its proposals, messages and model calls, at the superstep it published them), and the
recorded human decisions are taken where the run took them.

The derivation's traffic is not signed: every producer on its bus is this process's own code deriving its
envelopes, except the recorded agent outputs, and those are checked by the rules a run's consumers apply to a
producer (a known identity, allowed to publish that message in that agent's name; bus/signing.py). One they
would refuse is a divergence at its entry. Signatures authenticate a live run's traffic and are not recorded,
so signing and verifying here again would only check this process against itself. Every entry the run
recorded is then compared with the re-derived one: a verdict, authorization, escalation outcome, decision point or
execution that does not follow from the recorded proposals, model answers and human decisions is the first
divergence. What the agents said is taken as recorded, so this checks governance and effects, not the agents'
determinism (the full replay re-executes the agents too).
"""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from pydantic import ValidationError

from coalition.bus import topics
from coalition.bus.base import Bus
from coalition.bus.canonical import canonical_json
from coalition.bus.envelope import Envelope
from coalition.bus.errors import MessageRejected
from coalition.bus.keys import producer_identities
from coalition.bus.memory import MemoryBus
from coalition.bus.message import parse_payload
from coalition.bus.messages import ActionProposed, AgentMessage
from coalition.bus.signing import producer_problem
from coalition.domain import catalog
from coalition.governance.decision_signatures import signatures_checked_once
from coalition.governance.run_entries import run_entries_read_once
from coalition.ledger.base import Ledger
from coalition.ledger.digest import content_fields, history_bodies
from coalition.ledger.entry import POSITION_FIELDS
from coalition.ledger.history import HUMAN_DECISIONS
from coalition.ledger.memory import MemoryLedger
from coalition.scenarios.assembly import AgentSteps, assemble_run
from coalition.scenarios.decision_points import DecisionHistory
from coalition.scenarios.replay import RecordedAnswers, RecordedBoard, recorded_run
from coalition.scenarios.runner import AgentStep, RunnerOptions

# The topic each kind of agent output travels on (agent/workflow.py); the rest an agent publishes are records
# (model calls, screenings), on the control topic.
AGENT_TOPICS = {ActionProposed.TYPE: topics.PROPOSALS, AgentMessage.TYPE: topics.AGENT_MESSAGES}


class RecordedAgent:
    """One agent as the ledger recorded it: at each superstep it publishes exactly what it published then."""

    def __init__(self, bus: Bus, outputs: dict[int, list[tuple[str, Envelope]]]) -> None:
        self._bus = bus
        self._outputs = outputs

    def step(self, superstep: int, sim_time: datetime) -> int:
        batch = self._outputs.pop(superstep, [])
        if batch:
            self._bus.publish_many(batch)
        return sum(1 for topic, _ in batch if topic != topics.CONTROL)  # records are not output (agents/runtime.py)


@dataclass
class AgentOutputs:
    """What the agents published, rebuilt from their entries: per agent (envelope source), per superstep, the
    envelopes in ledger order (its stream order); and the outputs the run's consumers would refuse, by seq."""

    by_agent: dict[str, dict[int, list[tuple[str, Envelope]]]]
    refused: dict[int, str]


def refusal(envelope: Envelope, producers: frozenset[str]) -> str | None:
    """Why a run's consumers would refuse this envelope from its producer (bus/signing.py's Verifier, its
    signature aside): an identity with no key, or a message it may not publish; None: they accept it."""
    if envelope.source not in producers:
        return f"{envelope.source!r} is no producer of this run (no trusted key)"
    return producer_problem(envelope)


def _first_problem(exc: ValueError | MessageRejected) -> str:
    """One line saying what is wrong with a recorded output: the first field pydantic refused, else the error."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(part) for part in first['loc']) or 'payload'}: {first['msg']}"
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def agent_outputs(bodies: list[dict[str, Any]], run_id: str) -> AgentOutputs:
    """The agents' recorded outputs (stored entry bodies, history order) as envelopes under `run_id`; one its
    consumers would refuse is not published."""
    producers = frozenset(producer_identities(catalog().agent_names))
    outputs: dict[str, dict[int, list[tuple[str, Envelope]]]] = defaultdict(lambda: defaultdict(list))
    refused: dict[int, str] = {}
    for body in bodies:
        message_type, message_id, superstep = body.get("message_type"), body.get("message_id"), body.get("superstep")
        if body.get("actor_kind") != "agent" or message_type is None or message_id is None or superstep is None:
            continue
        actor: Any = body.get("actor")  # whatever was recorded: the envelope says what is wrong with it
        sim_time: Any = body.get("sim_time")
        try:
            envelope = Envelope(
                id=message_id,
                type=message_type,
                source=actor,
                run_id=run_id,
                superstep=superstep,
                sim_time=sim_time,
                correlation_id=body.get("correlation_id") or message_id,
                causation_id=body.get("causation_id"),
                payload=parse_payload(message_type, body.get("payload") or {}),
            )
        except (ValueError, MessageRejected) as exc:  # pydantic's ValidationError included
            refused[body["seq"]] = f"it cannot be decoded ({_first_problem(exc)})"
            continue
        why = refusal(envelope, producers)
        if why is not None:
            refused[body["seq"]] = why
            continue
        topic = AGENT_TOPICS.get(message_type, topics.CONTROL)
        outputs[envelope.source][superstep].append((topic, envelope))
    return AgentOutputs(outputs, refused)


def repeated_decisions(bodies: list[dict[str, Any]]) -> dict[int, str]:
    """The human decisions recorded under a message id an earlier one of the run holds (an altered ledger: a run
    takes a decision in once), by seq, each with why it is not re-derived."""
    first_at: dict[str, int] = {}
    repeated: dict[int, str] = {}
    decisions = (b for b in bodies if b.get("kind") in HUMAN_DECISIONS and isinstance(b.get("seq"), int))
    for body in sorted(decisions, key=lambda b: b["seq"]):
        message_id = str(body.get("message_id"))
        if message_id in first_at:
            repeated[body["seq"]] = f"its message id {message_id!r} is recorded already (at seq {first_at[message_id]})"
        else:
            first_at[message_id] = body["seq"]
    return repeated


def applied_only(bodies: list[dict[str, Any]]) -> frozenset[str]:
    """The idempotency keys the run recorded as applied and never as failed: what replay --verify applies without a
    savepoint (a handler raising on one fails an execution recorded as applied: the first divergence already). A
    duplicate never reaches a handler; any other outcome keeps its savepoint."""
    applied: set[str] = set()
    guarded: set[str] = set()
    for body in bodies:
        key = (body.get("payload") or {}).get("idempotency_key") if body.get("kind") == "execution" else None
        if isinstance(key, str) and body.get("outcome") != "duplicate":
            (applied if body.get("outcome") == "applied" else guarded).add(key)
    return frozenset(applied - guarded)


def recorded_agents(outputs: dict[str, dict[int, list[tuple[str, Envelope]]]]) -> AgentSteps:
    """The run's agents as the ledger recorded them (agent_outputs), publishing on the run's bus in name order."""

    def steps(bus: Bus) -> list[AgentStep]:
        return [RecordedAgent(bus, outputs[source]) for source in sorted(outputs)]

    return steps


@dataclass(frozen=True)
class VerifyResult:
    """IDENTICAL, or the first recorded entry that the re-derivation does not reproduce."""

    run_id: str
    identical: bool
    entries: int
    seconds: float
    seq: int | None = None  # the first divergent entry's sequence in the ledger (None: the run is missing entries)
    kind: str | None = None
    subject: str | None = None
    differed: tuple[str, ...] = ()
    recorded: dict[str, Any] | None = None
    derived: dict[str, Any] | None = None
    refused: str | None = None  # why the run refuses this recorded agent output or repeated decision (not re-derived)

    def line(self) -> str:
        if self.identical:
            return f"IDENTICAL: {self.entries} entries re-derived from the recorded proposals and decisions"
        where = f"at seq {self.seq}" if self.seq is not None else f"after the last of the run's {self.entries} entries"
        what = f"{self.kind or 'entry'}" + (f" on {self.subject}" if self.subject else "")
        if self.recorded is None or self.derived is None:
            said = "recorded but not re-derived" if self.derived is None else "re-derived but not recorded"
            because = f": a consumer refuses it: {self.refused}" if self.refused else ""
            return f"DIVERGENT {where} ({what}): {said}{because}"
        first = self.differed[0]
        path, mine, theirs = _first_difference(first, self.recorded.get(first), self.derived.get(first))
        detail = f"{path} recorded {_short(mine)}, re-derived {_short(theirs)}"
        more = f" (also {', '.join(self.differed[1:])})" if len(self.differed) > 1 else ""
        return f"DIVERGENT {where} ({what}): {detail}{more}"

    def to_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "identical": self.identical,
            "entries": self.entries,
            "seconds": round(self.seconds, 3),
            "divergence": None
            if self.identical
            else {
                "seq": self.seq,
                "kind": self.kind,
                "subject": self.subject,
                "fields": list(self.differed),
                "recorded": self.recorded,
                "derived": self.derived,
                "refused": self.refused,
            },
        }


def _first_difference(path: str, mine: Any, theirs: Any) -> tuple[str, Any, Any]:
    """The innermost key (dotted path) where two JSON values differ, with both values there."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs), key=str):
            if mine.get(key) != theirs.get(key):
                return _first_difference(f"{path}.{key}", mine.get(key), theirs.get(key))
    return path, mine, theirs


def _short(value: Any, width: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _same(mine: Any, theirs: Any) -> bool:
    """Equal as JSON values: Python's == holds False == 0 and 1 == 1.0, so a recorded `false` edited into `0` would
    compare equal; their JSON does not (both sides are parsed stored bodies, JSON values only)."""
    return mine == theirs and orjson.dumps(mine, option=orjson.OPT_SORT_KEYS) == orjson.dumps(
        theirs, option=orjson.OPT_SORT_KEYS
    )


def _same_content(mine: dict[str, Any], theirs: dict[str, Any], sealed: bytes, *, presorted: bool = False) -> bool:
    """Whether a recorded body and a re-derived one (`theirs`, sealed as `sealed`: its canonical bytes) agree on every
    field but their position (the common case, checked without building each side's content fields): then their
    content fields agree too (content_fields leaves out more, never less). False: the caller compares their content
    fields, and says where they differ.

    The recorded body takes the re-derived one's position fields (a shallow copy: a position field is never one of
    the content's) and is encoded as the ledger encoded the re-derived one (canonical JSON): the same bytes are the
    same values of the same types, and the re-derived side is not encoded a second time.

    `presorted`: the recorded bodies were parsed from canonical bytes (a backend handing out its stored bodies), so
    their keys come sorted at every level and the position fields keep their places: encoded in the order they come,
    they are canonical JSON without sorting every object again. Bytes equal to the sealed ones are equal JSON however
    they were made; a body that does not come sorted after all (one an editor reordered) is encoded canonically."""
    aligned = dict(mine)
    for key in POSITION_FIELDS:
        if key in theirs:
            aligned[key] = theirs[key]
        else:
            aligned.pop(key, None)
    if presorted:
        try:
            if orjson.dumps(aligned) == sealed:
                return True
        except TypeError:  # a value JSON does not hold as it is (a key that is no string): canonical_json judges it
            pass
    return canonical_json(aligned) == sealed


def _keys_sorted(body: dict[str, Any]) -> bool:
    """Whether a body's keys come in canonical (sorted) order: a backend's stored bodies parsed from their bytes do,
    an entry model's dump does not."""
    keys = list(body)
    return keys == sorted(keys)


def verify_run(ledger: Ledger, run_id: str) -> VerifyResult:
    """Re-derive `run_id` from its recorded agent outputs and human decisions into an in-memory ledger; compare."""
    began = time.perf_counter()
    original = history_bodies(ledger, run_id)  # stored bodies: no entry model per row
    recorded = recorded_run(ledger, run_id, bodies=original)  # its run.started and decisions: not read again
    replay_id = f"verify-of-{run_id}"
    # recorded verbatim: the recorded run.started as read (a frozen message), not dumped and validated a second time
    started = recorded.started
    outputs = agent_outputs(original, replay_id)
    repeated = repeated_decisions(original)
    target = MemoryLedger()  # read again after the derivation: its sealed bytes are what is compared
    with ExitStack() as stack:
        bus = stack.enter_context(closing(MemoryBus.for_run(replay_id)))
        stack.enter_context(signatures_checked_once())  # re-recording a decision and taking it in check one signature
        stack.enter_context(run_entries_read_once())  # each decision re-recorded reads its run's run.started
        board = RecordedBoard(recorded.decisions, by_content=False, fallback=None)
        assemble_run(
            recorded.scenario,
            bus=bus,
            ledger=target,
            run_id=replay_id,
            seed=recorded.seed,
            policy=recorded.policy,
            options=RunnerOptions(history=DecisionHistory.of_bodies(original), shadow_policy=recorded.shadow_policy),
            answers=RecordedAnswers(
                board, original_run=run_id, ledger=target, run_id=replay_id, policy=recorded.policy
            ),
            started=started,
            agent_steps=recorded_agents(outputs.by_agent),
            sign_traffic=False,  # see the module docstring
            unguarded_keys=applied_only(original),
        ).run()
        derived_bodies = history_bodies(target, replay_id)
    problems = {**repeated, **outputs.refused}  # by seq: what the run's consumers refuse is not re-derived
    presorted = bool(original) and _keys_sorted(original[0])
    for index, body in enumerate(original):
        seq = body.get("seq")
        why = problems.get(seq) if problems and isinstance(seq, int) else None
        if why is not None:
            return VerifyResult(
                run_id, False, len(original), time.perf_counter() - began, seq, body.get("kind"),
                body.get("subject") or None, ("(refused)",), content_fields(body), None, why,
            )  # fmt: skip
        derived = derived_bodies[index] if index < len(derived_bodies) else None
        sealed = target.sealed(derived["seq"]) if derived is not None else b""
        if derived is not None and _same_content(body, derived, sealed, presorted=presorted):
            continue
        kind, subject = body.get("kind"), body.get("subject") or None
        mine = content_fields(body)
        theirs = content_fields(orjson.loads(sealed)) if derived is not None else None  # as a ledger reads it back
        if theirs is None or not _same(mine, theirs):
            other = theirs or {}
            differed = tuple(
                k
                for k in sorted(set(mine) | set(other))
                if k not in mine or k not in other or not _same(mine[k], other[k])
            )
            return VerifyResult(
                run_id, False, len(original), time.perf_counter() - began, seq, kind, subject, differed, mine, theirs,
            )  # fmt: skip
    if len(derived_bodies) > len(original):
        extra = content_fields(orjson.loads(target.sealed(derived_bodies[len(original)]["seq"])))
        return VerifyResult(
            run_id, False, len(original), time.perf_counter() - began, None, extra.get("kind"),
            extra.get("subject") or None, ("(missing)",), None, extra,
        )  # fmt: skip
    return VerifyResult(run_id, True, len(original), time.perf_counter() - began)
