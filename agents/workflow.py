"""The step every function agent runs each superstep — observe → analyze → draft → propose — and its parts.

Each agent subclasses FunctionAgent with its own memory type and its `react` (which calls its engine);
the shared nodes keep memory of proposals and verdicts, word the decisions through the Narrator and
turn them into bus messages. The four nodes are a fixed line (agents/pipeline.py): they run straight through,
or as a LangGraph graph compiled once per process (every agent runs it, no checkpointer) with
COALITION_AGENT_GRAPH=langgraph.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, ClassVar, Generic, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError

from coalition.agents.base import AgentOutput, AgentStepContext, Outgoing, Rejected
from coalition.agents.errors import UnusableInput
from coalition.agents.facts import Facts
from coalition.agents.lanes import ASSISTIVE, ActionChooser, EngineDecision, LaneSettings, Preview, model_key
from coalition.agents.memory import AgentMemory, ProposalRecord
from coalition.agents.model_budget import REQUEST_ACTION, Shortfall, budget_request, request_key
from coalition.agents.narrator import NarratedText, Narrator
from coalition.agents.pipeline import Pipeline
from coalition.bus import topics
from coalition.bus.canonical import content_hash
from coalition.bus.envelope import Envelope
from coalition.bus.messages import (
    ActionExecuted,
    ActionProposed,
    AgentMessage,
    EscalationResolved,
    LaneChoice,
    ModelTrace,
    Observation,
    VerdictIssued,
)
from coalition.domain import Action

MemoryT = TypeVar("MemoryT", bound=AgentMemory)
DataT = TypeVar("DataT", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class CopyRequest:
    """Ask the narrator for customer-facing text and put it in one argument of the proposal."""

    arg: str
    audience: str
    facts: Facts
    untrusted: str | None = None
    # a notice's own rationale when what happened to the actions it describes changes it (a credit governance did
    # not let through is no reason given for a notice); None: the rationale the notice was planned with
    rationale: Facts | None = None


@dataclass(frozen=True, slots=True)
class ProposalDraft:
    """An action an engine decided to propose, before it is worded and given an id."""

    action: str
    args: dict[str, Any]
    facts: Facts
    evidence: tuple[str, ...]
    trigger: Envelope | None  # None only when no input led to it (a request for model budget after a suggestion)
    key: str
    supersedes: str | None = None
    copy: CopyRequest | None = None
    choice: LaneChoice | None = None  # who chose it, in the autonomous lane (agents/lanes.py)


@dataclass(frozen=True, slots=True)
class MessageDraft:
    """Information an engine decided to send to other agents, before it is worded."""

    to: tuple[str, ...]
    kind: str
    data: dict[str, Any]
    facts: Facts
    evidence: tuple[str, ...]
    trigger: Envelope


Draft = ProposalDraft | MessageDraft
# A proposal in one of these states has had all the effect it will have (none, for all but applied).
SETTLED: frozenset[str] = frozenset({"applied", "failed", "denied", "rejected", "expired"})


@dataclass(frozen=True, slots=True)
class Notice:
    """A customer notice that describes actions: proposed only once every proposal it waits for (by key) is
    settled, and worded from what actually happened to them — never before, never more."""

    draft: ProposalDraft  # its copy is made by `words` when it is released
    after: tuple[str, ...]  # keys of the proposals it describes
    words: Callable[[Mapping[str, ProposalRecord | None]], CopyRequest]

    def release(self, records: Mapping[str, ProposalRecord | None]) -> ProposalDraft:
        """The notice to propose, worded — text and rationale — from what happened to the actions it describes."""
        copy = self.words(records)
        facts = copy.rationale if copy.rationale is not None else self.draft.facts
        return replace(self.draft, facts=facts, copy=copy)


@dataclass(frozen=True, slots=True)
class Worded:
    draft: Draft
    rationale: NarratedText
    copy: NarratedText | None = None


class StepState(TypedDict):
    agent: FunctionAgent[Any]  # whose step it is: every agent runs the one pipeline of this process (STEP)
    inbox: list[Envelope]
    ctx: AgentStepContext
    drafts: list[Draft]
    worded: list[Worded]
    outgoing: list[Outgoing]
    rejected: list[Rejected]


@dataclass
class Plan:
    """What one step has decided so far; refuses a proposal whose key is already live (no repeats)."""

    memory: AgentMemory
    drafts: list[Draft] = field(default_factory=list)
    notices: list[Notice] = field(default_factory=list)
    waiting: frozenset[str] = frozenset()  # keys of notices parked in earlier steps
    _keys: set[str] = field(default_factory=set)

    def notify_after(self, notice: Notice) -> bool:
        """Park a notice until the proposals it describes are settled (not twice for the same key)."""
        key = notice.draft.key
        if not notice.after:  # it describes no action: nothing to wait for
            return self.propose(notice.release({}))
        if key in self._keys or key in self.waiting or self.memory.is_live(key):
            return False
        if not any(k in self._keys for k in notice.after):  # nothing it describes is proposed in this step
            records = {k: self.memory.latest(k) for k in notice.after}
            if all(r is None or r.status in SETTLED for r in records.values()):
                # already settled (an action applied days ago): said now, not parked until a step that may never
                # come (a case on the last day would go unanswered)
                return self.propose(notice.release(records))
        self._keys.add(key)
        self.notices.append(notice)
        return True

    def propose(self, draft: ProposalDraft) -> bool:
        if draft.key in self._keys or self.memory.is_live(draft.key):
            return False
        self._keys.add(draft.key)
        self.drafts.append(draft)
        return True

    def tell(self, draft: MessageDraft) -> None:
        self.drafts.append(draft)


def evidence_of(envelope: Envelope) -> str:
    """The evidence id an agent cites for an input: the observation's evidence_id, else a content hash."""
    payload = envelope.payload
    if isinstance(payload, Observation):
        return payload.evidence_id or content_hash(
            {"kind": payload.kind, "subject": payload.subject, "data": payload.data, "text": payload.text}
        )
    return content_hash(payload.model_dump(mode="json"))


def situation_of(trigger: Envelope | None) -> tuple[dict[str, Any], str | None]:
    """What the model in the autonomous lane is told happened (structured data), and the outside text (screened)."""
    if trigger is None:
        return {"input": "none"}, None
    payload = trigger.payload
    if isinstance(payload, Observation):
        return {"input": payload.kind, "subject": payload.subject, "data": payload.data}, payload.text
    if isinstance(payload, AgentMessage):
        return {"input": payload.kind, "from": payload.sender, "data": payload.data}, payload.summary
    if isinstance(payload, VerdictIssued):
        return {"input": "verdict", "outcome": payload.outcome, "reasons": list(payload.reasons)}, None
    return {"input": trigger.type}, None


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(root)"
    return f"data.{where}: {first['msg']}"


def _combined(first: NarratedText, second: NarratedText | None, choice: LaneChoice | None = None) -> ModelTrace:
    trace = _worded(first, second)
    if choice is not None and choice.calls:  # the recorded calls that chose the action come first
        return trace.model_copy(update={"calls": [*choice.calls, *trace.calls]})
    return trace


def _worded(first: NarratedText, second: NarratedText | None) -> ModelTrace:
    if second is None:
        return first.trace()
    return ModelTrace(
        model_id=first.model_id,
        prompt_hash=content_hash([first.prompt_hash, second.prompt_hash]),
        response_hash=content_hash([first.response_hash, second.response_hash]),
        input_tokens=first.input_tokens + second.input_tokens,
        output_tokens=first.output_tokens + second.output_tokens,
        cost_usd=str(Decimal(first.cost_usd) + Decimal(second.cost_usd)),
        calls=[*first.calls, *second.calls],
        fallback=first.fallback or second.fallback,
    )


class FunctionAgent(ABC, Generic[MemoryT]):
    """One of the five agents: its memory, its compiled graph, and the domain reaction it plugs in.

    The graph runs only in a step whose inbox holds something the agent reacts to (`REACTS_TO`: observation and
    agent-message kinds, and verdicts when `REACTS_TO_VERDICTS`). Any other step — the day's market snapshot, the
    fate of its proposals — is folded into memory by the graph's first node alone: the rest of the graph would
    find nothing to react to, so the outputs are the same and the ledger is unchanged."""

    NAME: ClassVar[str]
    REACTS_TO: ClassVar[frozenset[str]]
    REACTS_TO_VERDICTS: ClassVar[bool] = False
    # False runs the graph on every step, as before this rule: the equivalence tests compare the two
    SKIP_IDLE_STEPS: ClassVar[bool] = True

    def __init__(self, narrator: Narrator, memory: MemoryT) -> None:
        self._narrator = narrator
        self.memory: MemoryT = memory
        self._notices: list[Notice] = []  # parked until what they describe is settled
        self._chooser: ActionChooser | None = None  # the model lanes, when the policy puts the agent in one
        self._drafts: dict[str, ProposalDraft] = {}  # assistive drafts a person reviews, by proposal id
        self._finals: list[ProposalDraft] = []  # adopted drafts, proposed as final proposals in this step
        self._steps = STEP.runner()  # straight, or LangGraph's invoke (COALITION_AGENT_GRAPH)

    def use_lanes(
        self,
        settings: LaneSettings,
        actions: Mapping[str, Action],
        *,
        preview: Preview | None = None,
        customer_texts: Mapping[str, str] | None = None,
    ) -> None:
        """Put (some of) this agent's actions in a model lane: the model chooses (autonomous) or drafts (assistive)
        them by tool calling, each call shown to governance's `preview` first (when given); the model's text in
        `customer_texts` (action → argument customers read) passes the words check."""
        chooser = ActionChooser(
            self.NAME, self._narrator, settings, actions, preview=preview, customer_texts=customer_texts
        )
        self._chooser = chooser if any(chooser.governs(a) for a in settings.permitted) else None

    # -- the Agent protocol ------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self.NAME

    @property
    def narrator(self) -> Narrator:
        """The language step this agent words its decisions through (its model, limits and records)."""
        return self._narrator

    def run(self, inbox: Sequence[Envelope], ctx: AgentStepContext) -> AgentOutput:
        self._narrator.at(ctx.sim_time)
        if self._chooser is not None:  # a model lane: the model reads the prose documents it reacts to
            inbox = [self._read(envelope) for envelope in inbox]
        state: StepState = {
            "agent": self,
            "inbox": list(inbox),
            "ctx": ctx,
            "drafts": [],
            "worded": [],
            "outgoing": [],
            "rejected": [],
        }
        if self.SKIP_IDLE_STEPS and not any(self.reacts_to(envelope) for envelope in inbox):
            result: StepState = {**state, **self._observe(state)}  # type: ignore[typeddict-item]
            # a parked notice is due, or a person adopted a draft (its final proposal is made now)
            if self._finals or any(self._settled(notice) is not None for notice in self._notices):
                for node in (self._analyze, self._draft, self._propose):
                    result = {**result, **node(result)}  # type: ignore[typeddict-item]
        else:
            result = self._steps(state)
        # Model calls, stops and screening verdicts go to the recorder on the control topic (not counted as
        # the agent's output for quiescence; they accompany the proposals and messages they contributed to).
        records = [Outgoing(topics.CONTROL, record, None) for record in self._narrator.drain()]
        return AgentOutput(messages=(*records, *result["outgoing"]), rejected=tuple(result["rejected"]))

    def _read(self, envelope: Envelope) -> Envelope:
        """A prose document's observation with the model's reading as its data (the ground truth offline)."""
        payload = envelope.payload
        if not isinstance(payload, Observation) or payload.document is None or not payload.text:
            return envelope
        if payload.kind not in self.REACTS_TO:
            return envelope
        reading = self._narrator.read_document(self.NAME, payload.document, payload.text, payload.data)
        if reading == payload.data:
            return envelope
        return envelope.model_copy(update={"payload": payload.model_copy(update={"data": reading})})

    def owns(self, proposal_id: str) -> bool:
        return proposal_id in self.memory.proposals

    def reacts_to(self, envelope: Envelope) -> bool:
        """Whether `react` may do anything with this input (else observing it is all there is to do)."""
        payload = envelope.payload
        if isinstance(payload, Observation | AgentMessage):
            return payload.kind in self.REACTS_TO
        return isinstance(payload, VerdictIssued) and self.REACTS_TO_VERDICTS

    # -- what each agent provides ------------------------------------------------------------------------

    @abstractmethod
    def react(self, envelope: Envelope, plan: Plan) -> None:
        """Decide (through the engine) what this input calls for, adding drafts to the plan."""

    def prepare(self, inbox: Sequence[Envelope]) -> None:
        """Look at the whole inbox before reacting to each input (e.g. screen all news first); optional."""

    def executed(self, record: ProposalRecord) -> None:
        """One of this agent's proposals was executed (`record.status`: applied or failed); optional.

        Facts about the world an agent acts on belong here, not at proposal time: a proposal may be denied,
        rejected or fail. A redelivered execution calls this again with the same record."""

    # -- helpers for react -------------------------------------------------------------------------------

    def data(self, envelope: Envelope, model: type[DataT]) -> DataT:
        """The typed data of an observation or agent message; UnusableInput names the bad field."""
        payload = envelope.payload
        raw = payload.data if isinstance(payload, Observation | AgentMessage) else {}
        kind = payload.kind if isinstance(payload, Observation | AgentMessage) else envelope.type
        try:
            return model.model_validate(raw)
        except ValidationError as exc:
            raise UnusableInput(self.NAME, kind, envelope.id, _one_line(exc)) from None

    # -- the graph's nodes (step_graph) -------------------------------------------------------------------

    def _observe(self, state: StepState) -> dict[str, Any]:
        """Fold what every agent tracks into memory: its memory's FOLDS (the rules, a pack's snapshots), and the fate
        of its proposals."""
        rejected: list[Rejected] = []
        for envelope in state["inbox"]:
            payload = envelope.payload
            try:
                fold = self.memory.FOLDS.get(payload.kind) if isinstance(payload, Observation) else None
                if fold is not None:
                    setattr(self.memory, fold[0], self.data(envelope, fold[1]))
            except UnusableInput as exc:
                rejected.append(Rejected(envelope, str(exc)))
            if isinstance(payload, VerdictIssued):
                self.memory.on_verdict(payload.proposal_id, payload.outcome)
                if self._chooser is not None:
                    self._chooser.verdict(payload)
            elif isinstance(payload, EscalationResolved):
                self.memory.set_status(payload.proposal_id, payload.outcome)
                self._reviewed(payload)
            elif isinstance(payload, ActionExecuted):
                self._granted(payload)
                record = self.memory.set_status(
                    payload.proposal_id, "failed" if payload.status == "failed" else "applied"
                )
                if record is not None:
                    self.executed(record)
        return {"rejected": rejected} if rejected else {}

    def _reviewed(self, resolved: EscalationResolved) -> None:
        """A person adopted (possibly amended) or dropped one of this agent's assistive drafts: an adopted draft
        becomes the final proposal, with exactly the adopted arguments, superseding the draft (governance
        evaluates only that); a dropped or expired draft ends there."""
        draft = self._drafts.pop(resolved.proposal_id, None)
        if draft is None:
            return
        if self._chooser is not None:
            self._chooser.reviewed(resolved)
        if resolved.outcome != "approved" or resolved.adopted_args is None:
            return
        args = dict(resolved.adopted_args)
        amended = content_hash(args) != content_hash(draft.args)
        self.memory.set_status(resolved.proposal_id, "adopted")
        drafted = draft.choice
        choice = LaneChoice(
            lane=ASSISTIVE,
            chosen_by="human",
            engine_action=drafted.engine_action if drafted is not None else draft.action,
            draft=resolved.proposal_id,
            amended=amended,
        )
        facts = draft.facts
        if amended:
            figures = {
                k: str(v) for k, v in sorted(args.items()) if isinstance(v, str | int | float) and len(str(v)) < 80
            }
            facts = Facts(
                intent="propose",
                decision=f"{draft.action.replace('_', ' ')} ({content_hash(args)[:8]})",
                reasons=["a person amended the model's draft in the assistive lane"],
                figures=figures,
                rules=["governance checks it like every proposal"],
            )
        self._finals.append(
            replace(draft, args=args, facts=facts, supersedes=resolved.proposal_id, copy=None, choice=choice)
        )

    def _is_draft(self, draft: ProposalDraft) -> bool:
        """A proposal governance will escalate for a person's review: an action in the assistive lane (the final
        proposal of an adopted draft is not one)."""
        chooser = self._chooser
        chosen_by = draft.choice.chosen_by if draft.choice is not None else None
        return chooser is not None and chooser.settings.lane_of(draft.action) == ASSISTIVE and chosen_by != "human"

    def _granted(self, executed: ActionExecuted) -> None:
        """The first execution of this agent's own approved request for model budget raises its guard's limits."""
        record = self.memory.proposals.get(executed.proposal_id)
        if record is None or record.action != REQUEST_ACTION or executed.status != "applied":
            return
        if record.status == "applied":
            return  # already granted (a redelivered execution)
        tokens, cost = int(record.args["tokens"]), Decimal(str(record.args["cost_usd"]))
        self._narrator.guard.raise_limits(tokens=tokens, cost_usd=cost)

    def _settled(self, notice: Notice) -> dict[str, ProposalRecord | None] | None:
        """The latest proposal under each key the notice waits for, once every one is settled (None before).
        A key never proposed (e.g. a pause already in place) has nothing to wait for."""
        records = {key: self.memory.latest(key) for key in notice.after}
        if all(record is None or record.status in SETTLED for record in records.values()):
            return records
        return None

    def _release_notices(self, plan: Plan) -> None:
        for notice in list(self._notices):
            records = self._settled(notice)
            if records is None:
                continue
            self._notices.remove(notice)
            plan.propose(notice.release(records))

    def _analyze(self, state: StepState) -> dict[str, Any]:
        plan = Plan(self.memory, waiting=frozenset(n.draft.key for n in self._notices))
        self._release_notices(plan)  # notices parked in earlier steps whose actions are now settled
        rejected = list(state["rejected"])
        already = {r.envelope.id for r in rejected}
        self.prepare(state["inbox"])
        for envelope in state["inbox"]:
            if envelope.id in already:
                continue
            try:
                self.react(envelope, plan)
            except UnusableInput as exc:
                rejected.append(Rejected(envelope, str(exc)))
        self._notices.extend(plan.notices)
        finals, self._finals = self._finals, []
        drafts = [*finals, *plan.drafts]
        update: dict[str, Any] = {"drafts": drafts} if drafts else {}
        if len(rejected) > len(state["rejected"]):
            update["rejected"] = rejected
        return update

    def _draft(self, state: StepState) -> dict[str, Any]:
        worded: list[Worded] = []
        shortfalls = self._narrator.take_shortfalls()  # e.g. a suggestion asked for while analysing
        trigger: Envelope | None = state["drafts"][0].trigger if shortfalls and state["drafts"] else None
        banned = tuple(self.memory.brief.banned_claims) if self.memory.brief is not None else ()
        for draft in self._chosen(state["drafts"], banned):
            rationale = self._narrator.rationale(self.NAME, draft.facts, banned=banned)
            copy = None
            if isinstance(draft, ProposalDraft) and draft.copy is not None:
                request = draft.copy
                copy = self._narrator.copy(
                    self.NAME, request.facts, audience=request.audience, untrusted=request.untrusted, banned=banned
                )
            worded.append(Worded(draft, rationale, copy))
            refused = self._narrator.take_shortfalls()
            if refused and not shortfalls:
                trigger = draft.trigger
            shortfalls += refused
        ask = self._ask_for_budget(shortfalls, trigger)
        if ask is not None:
            worded.append(ask)
        return {"worded": worded} if worded else {}

    def _chosen(self, drafts: list[Draft], banned: Sequence[str]) -> list[Draft]:
        """In the autonomous lane the model chooses each proposal the engine drafted (agents/lanes.py)."""
        chooser = self._chooser
        if chooser is None:
            return drafts
        keys: set[str] = set()

        def live(action: str, args: Mapping[str, Any]) -> bool:
            key = model_key(action, args)
            return key in keys or self.memory.is_live(key)

        out: list[Draft] = []
        for draft in drafts:
            # A customer notice (its copy worded from what actually happened) stays the engine's to draft.
            if (
                not isinstance(draft, ProposalDraft)
                or draft.copy is not None
                or draft.choice is not None  # the final proposal of an adopted draft: the person chose it
                or not chooser.governs(draft.action)
            ):
                out.append(draft)
                continue
            situation, untrusted = situation_of(draft.trigger)
            engine = EngineDecision(draft.action, draft.args, draft.facts)
            chosen = chooser.choose(engine, situation=situation, untrusted=untrusted, live=live, banned=banned)
            if chosen.choice.engine_args is None:  # the engine's decision (adopted by the model, or its fallback)
                out.append(replace(draft, choice=chosen.choice))
                continue
            key = model_key(chosen.action, chosen.args)
            keys.add(key)
            copy = draft.copy if chosen.action == draft.action else None
            out.append(
                replace(
                    draft,
                    action=chosen.action,
                    args=chosen.args,
                    facts=chosen.facts,
                    key=key,
                    copy=copy,
                    choice=chosen.choice,
                )
            )
        return out

    def _ask_for_budget(self, shortfalls: list[Shortfall], trigger: Envelope | None) -> Worded | None:
        """Calls refused for budget: ask governance for more, once per period (not again while a request is
        pending, nor after it was rejected or expired). The engine's own words: the budget is spent."""
        request = budget_request(self.NAME, shortfalls)
        if request is None or self.memory.ever_proposed(request_key(request.period)):
            return None
        facts = request.facts()
        draft = ProposalDraft(
            action=REQUEST_ACTION,
            args=request.args(),
            facts=facts,
            evidence=(evidence_of(trigger),) if trigger is not None else (),
            trigger=trigger,
            key=request_key(request.period),
        )
        return Worded(draft, self._narrator.engine_rationale(self.NAME, facts))

    def _propose(self, state: StepState) -> dict[str, Any]:
        ctx = state["ctx"]
        outgoing: list[Outgoing] = []
        for n, item in enumerate(state["worded"], start=1):
            draft = item.draft
            evidence = sorted(set(draft.evidence))
            if isinstance(draft, MessageDraft):
                message = AgentMessage(
                    sender=self.NAME,
                    to=list(draft.to),
                    kind=draft.kind,
                    summary=item.rationale.text,
                    data=draft.data,
                    evidence=evidence,
                )
                outgoing.append(Outgoing(topics.AGENT_MESSAGES, message, draft.trigger))
                continue
            args = dict(draft.args)
            if draft.copy is not None and item.copy is not None:
                args[draft.copy.arg] = item.copy.text
            proposal_id = ctx.proposal_id(n)
            proposal = ActionProposed(
                proposal_id=proposal_id,
                agent=self.NAME,
                action=draft.action,
                args=args,
                rationale=item.rationale.text,
                evidence=evidence,
                model=_combined(item.rationale, item.copy, draft.choice),
                supersedes=draft.supersedes,
                choice=draft.choice,
            )
            if draft.choice is not None and self._chooser is not None:
                self._chooser.proposed(proposal_id, draft.action, args, draft.choice)
            if self._is_draft(draft):
                self._drafts[proposal_id] = replace(draft, args=args, copy=None)
            self.memory.remember(
                ProposalRecord(
                    proposal_id=proposal_id,
                    action=draft.action,
                    args=args,
                    key=draft.key,
                    revision_of=draft.supersedes,
                )
            )
            if draft.supersedes is not None and draft.supersedes in self.memory.proposals:
                self.memory.mark_revised(draft.supersedes)
            outgoing.append(Outgoing(topics.PROPOSALS, proposal, draft.trigger))
        return {"outgoing": outgoing} if outgoing else {}


def _observe(state: StepState) -> dict[str, Any]:
    return state["agent"]._observe(state)


def _analyze(state: StepState) -> dict[str, Any]:
    return state["agent"]._analyze(state)


def _draft(state: StepState) -> dict[str, Any]:
    return state["agent"]._draft(state)


def _propose(state: StepState) -> dict[str, Any]:
    return state["agent"]._propose(state)


# observe → analyze → draft → propose, run by every function agent: each node calls that method of the agent the
# state names, so the pipeline holds no agent and nothing of any run; its LangGraph graph is compiled once per
# process, when asked for (compiling it once per agent of every run was a fifth of a sweep job's CPU).
STEP: Pipeline[StepState] = Pipeline(
    StepState, (("observe", _observe), ("analyze", _analyze), ("draft", _draft), ("propose", _propose))
)


def step_graph() -> Any:
    """The step as a compiled LangGraph graph (what COALITION_AGENT_GRAPH=langgraph runs)."""
    return STEP.graph
