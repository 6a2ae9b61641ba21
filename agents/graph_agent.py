"""Bring your own agent: a LangGraph graph (or a LangChain tool-calling agent, which is one) built by its user
becomes a Coalition agent.

The user writes a factory `(model, tools) -> compiled graph` whose state has `messages` (a hand-built StateGraph
with a ToolNode, `create_agent`, …). The adapter calls it once with

- `model`: the agent's chat model as every agent has it — each call goes through the agent's Narrator, so it is
  inside the agent's model limits and, for a paid model, recorded (a replay answers from the ledger, no key);
- `tools`: one tool per action the policy permits the agent (the schema is the action's argument model, the one
  governance and the executor use).

An input the agent reacts to starts a conversation (one graph thread, its first message the situation as JSON,
outside text screened as data). A call of an action tool is checked like the autonomous lane checks one (the
action's model, the content screen; agents/lanes.py) — a refusal is the tool's result at once — and otherwise
becomes a proposal: the graph waits (a LangGraph interrupt) and governance decides as always. A denial, an
escalation or the execution then comes back as the tool's result; the later fate of an escalated proposal (a
person's decision, its execution) comes back as a new message. The graph never sees the bus, the world or the
ledger: tools and a model are all it is given.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.errors import GraphRecursionError
from langgraph.types import Command, interrupt
from pydantic import ConfigDict, Field

from coalition.agents.base import AgentOutput, AgentStepContext, Outgoing, Rejected
from coalition.agents.chat import ToolBindingChatModel, message_text
from coalition.agents.errors import AgentError, ReplayMiss
from coalition.agents.facts import Facts
from coalition.agents.lanes import text_problem
from coalition.agents.narrator import Narrator
from coalition.agents.recording import prompt_hash
from coalition.agents.words import IDENTIFIER, NUMBER
from coalition.agents.workflow import evidence_of, situation_of
from coalition.bus import topics
from coalition.bus.canonical import canonical_json, content_hash
from coalition.bus.envelope import Envelope
from coalition.bus.messages import (
    ActionExecuted,
    ActionProposed,
    AgentMessage,
    EscalationResolved,
    ModelTrace,
    Observation,
    VerdictIssued,
)
from coalition.domain import Action, ArgumentProblem

# (the agent's chat model, its action tools) -> a compiled LangGraph graph whose state has `messages`
GraphFactory = Callable[[BaseChatModel, list[BaseTool]], Any]
MAX_GRAPH_STEPS = 25  # LangGraph's recursion limit for one invocation: a graph that loops longer is stopped
STOPPED_TEXT = "(the model call was stopped; see the run's model stops)"


class GraphFactoryError(AgentError):
    """A graph factory reference that cannot be used: one line naming it and why."""


def load_factory(ref: str, where: str) -> GraphFactory:
    """The factory a `"package.module:attribute"` reference names, imported now; GraphFactoryError otherwise."""
    module_name, _, attribute = ref.partition(":")
    if not module_name or not attribute:
        raise GraphFactoryError(f"{where}: {ref!r} is not a 'module:attribute' reference")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GraphFactoryError(f"{where}: cannot import {module_name!r} ({exc})") from None
    found = getattr(module, attribute, None)
    if not callable(found):
        raise GraphFactoryError(f"{where}: {module_name} has no callable {attribute!r}")
    factory: GraphFactory = found
    return factory


def _is_call(value: Any) -> bool:
    """An interrupt raised by an ActionTool (the call waiting on governance), not by the user's graph."""
    return isinstance(value, Mapping) and {"tool_call_id", "action", "args"} <= value.keys()


def _json(value: Any) -> str:
    return canonical_json(value).decode()


class NarratedChatModel(ToolBindingChatModel):
    """The chat model a user's graph is given: every call is a turn of the agent's Narrator (its guard, its
    recording); a stopped call answers with a short text and no tool call, so the graph ends its turn."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    narrator: Narrator = Field(exclude=True)
    purpose: str
    traces: dict[str, ModelTrace] = Field(default_factory=dict, exclude=True)  # tool call id -> the call that made it

    @property
    def _llm_type(self) -> str:
        return "coalition-narrated"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = list(kwargs.get("tools") or [])
        turn = self.narrator.turn(self.purpose, list(messages), tools, tool_choice=kwargs.get("tool_choice"))
        answer = AIMessage(content=STOPPED_TEXT) if turn is None else turn[0]
        if turn is not None:
            calls = [turn[1]] if turn[1] else []
            for call in answer.tool_calls:
                self.traces[str(call.get("id"))] = ModelTrace(
                    model_id=self.narrator.model_id,
                    prompt_hash=prompt_hash(messages),
                    response_hash=content_hash({"name": call["name"], "args": call["args"]}),
                    calls=calls,
                )
        return ChatResult(generations=[ChatGeneration(message=answer)])


class ActionTool(BaseTool):
    """One permitted action as a tool of the user's graph. A call that does not fit the action's model or carries
    text the content screen flags is refused at once (the refusal is the tool's result); any other call waits for
    what governance and the executor make of it (a LangGraph interrupt the adapter resumes)."""

    action: Action = Field(exclude=True)
    agent: str
    url_allowlist: tuple[str, ...] = ()
    # the words check on the text a customer reads (the agent's, which knows what its calls executed): why the call
    # may not go (None: it may), given the tool call's id and arguments
    words: Callable[[str, Mapping[str, Any]], str | None] | None = Field(default=None, exclude=True)

    def _run(self, *args: Any, **kwargs: Any) -> str:
        raise AgentError(f"agent:{self.agent}: the {self.name} tool is called by a ToolNode with a tool call")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        if not (isinstance(input, Mapping) and input.get("type") == "tool_call"):
            raise AgentError(f"agent:{self.agent}: the {self.name} tool takes a tool call (use a ToolNode)")
        call_id, args = str(input.get("id")), input.get("args")
        problem = self._problem(args)
        if problem is None and self.words is not None and isinstance(args, Mapping):
            problem = self.words(call_id, args)
        if problem is not None or not isinstance(args, Mapping):
            content = _json({"refused": problem or "the arguments must be an object"})
        else:
            outcome = interrupt({"tool_call_id": call_id, "action": self.name, "args": dict(args)})
            content = _json(outcome)
        return ToolMessage(content=content, tool_call_id=call_id, name=self.name)

    def _problem(self, args: Any) -> str | None:
        if not isinstance(args, Mapping):
            return f"{self.name}: the arguments must be an object"
        try:
            self.action.parse(args)
        except ArgumentProblem as problem:
            return str(problem)
        text = text_problem(args, f"model:{self.agent}:{self.name}", self.url_allowlist)
        return f"{self.name}: {text}" if text is not None else None


def _call_facts(action: str, args: Mapping[str, Any]) -> Facts:
    """What a graph's words beside a call may name: the call's action and arguments (the figures, identifiers and
    commitment the governed call itself carries, all recorded with it) — nothing else."""
    return Facts(
        intent="propose",
        decision=action,
        reasons=[f"{name} {_plain_value(value)}" for name, value in args.items()],
    )


def _customer_facts(action: str, args: Mapping[str, Any], executed: Sequence[tuple[str, Mapping[str, Any]]]) -> Facts:
    """What a customer's text may name: the identifiers and figures of the call's other arguments (the account, the
    case, an offer's discount) and of the agent's calls that executed, with their single-word values (an
    executed credit's tier). Never an argument's prose: every argument is the model's own writing, so a promise put
    in a free-text one beside the notice (rule='we refunded 500 USD') would vouch for itself."""
    calls = [(action, args, False), *((name, given, True) for name, given in executed)]
    return Facts(
        intent="notify",
        decision=" ".join(name for name, _, _ in calls),
        reasons=[
            " ".join([name, *_vouched(value, words=executed_call)])
            for _, given, executed_call in calls
            for name, value in given.items()
        ],
    )


def _vouched(value: Any, *, words: bool) -> list[str]:
    """What an argument's value vouches for in a customer's text: a number given as one, the identifiers a text
    holds, and (`words`: an executed call's) a text of one word; nothing of a text's other words."""
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [canonical_json(value).decode()]
    if isinstance(value, str):
        plain = value.strip()
        if NUMBER.fullmatch(plain) or (words and plain and not any(c.isspace() for c in plain)):
            return [plain]
        return IDENTIFIER.findall(value)
    if isinstance(value, Mapping):
        return [found for item in value.values() for found in _vouched(item, words=words)]
    if isinstance(value, list | tuple):
        return [found for item in value for found in _vouched(item, words=words)]
    return []


def _plain_value(value: Any) -> str:
    """An argument's value as words read it: a string as it is, anything else as its JSON."""
    return value if isinstance(value, str) else canonical_json(value).decode()


def action_tools(
    agent: str,
    actions: Mapping[str, Action],
    url_allowlist: tuple[str, ...] = (),
    words: Callable[[str, str, Mapping[str, Any]], str | None] | None = None,
) -> list[BaseTool]:
    """The tools a user's graph is given: the agent's permitted actions, in name order (`words`: the check of a
    customer's text, given the action, the call's id and its arguments)."""
    return [
        ActionTool(
            name=name,
            description=action.doc or name,
            args_schema=action.args.model_json_schema(),
            action=action,
            agent=agent,
            url_allowlist=url_allowlist,
            words=None if words is None else partial(words, name),
        )
        for name, action in sorted(actions.items())
    ]


@dataclass(slots=True)
class _Call:
    """One tool call that became a proposal, until governance, a person and the executor are done with it."""

    thread: str
    tool_call_id: str
    action: str
    args: dict[str, Any]
    answered: dict[str, Any] | None = None  # the tool's result, once known (sent when the thread resumes)
    escalated: bool = False  # the tool already answered "escalated": what follows is a new message


@dataclass(slots=True)
class _Thread:
    """One conversation of the graph: the input that started it, and its calls still waiting."""

    trigger: Envelope
    waiting: dict[str, str] = field(default_factory=dict)  # interrupt id -> proposal id
    updates: list[dict[str, Any]] = field(default_factory=list)  # news of escalated proposals, sent when it is idle


class GraphAgent:
    """A user's LangGraph graph as a Coalition agent (the Agent port of agents/base.py)."""

    def __init__(
        self,
        name: str,
        factory: GraphFactory,
        narrator: Narrator,
        actions: Mapping[str, Action],
        *,
        reacts_to: frozenset[str],
        url_allowlist: tuple[str, ...] = (),
        customer_texts: Mapping[str, str] | None = None,
    ) -> None:
        self._name = name
        self._narrator = narrator
        self._reacts_to = reacts_to
        self._customer_texts = dict(customer_texts or {})  # action -> the argument customers read
        self._executed: list[tuple[str, dict[str, Any]]] = []  # the agent's calls that executed, in order
        self._screened: set[str] = set()  # tool call ids whose customer text was recorded as flagged
        self.model = NarratedChatModel(narrator=narrator, purpose=f"graph:{name}")
        self.tools = action_tools(name, actions, url_allowlist, self._customer_words)
        graph = factory(self.model, self.tools)
        if getattr(graph, "checkpointer", None) is None and hasattr(graph, "copy"):
            graph = graph.copy(update={"checkpointer": InMemorySaver()})  # the graph waits on governance
        self._graph = graph
        self._threads: dict[str, _Thread] = {}
        self._calls: dict[str, _Call] = {}  # proposal id -> its call
        self._order: list[str] = []  # thread ids, oldest first

    @property
    def name(self) -> str:
        return self._name

    @property
    def narrator(self) -> Narrator:
        return self._narrator

    def _customer_words(self, action: str, call_id: str, args: Mapping[str, Any]) -> str | None:
        """The words check on the text of a call customers read (the pack names which argument): no figure,
        identifier, link or promise beyond the call's other arguments and what the agent's calls executed (a
        denied credit is never announced). A graph has no engine wording to send instead: the call is refused, as
        the tool's result, and the flags are recorded once with the text's hash."""
        arg = self._customer_texts.get(action)
        text = args.get(arg) if arg is not None else None
        if not isinstance(text, str) or not text.strip():
            return None
        others = {name: value for name, value in args.items() if name != arg}
        facts = _customer_facts(action, others, self._executed)
        flags = self._narrator.words_flags(text, facts, purpose="copy", record=call_id not in self._screened)
        if not flags:
            return None
        self._screened.add(call_id)
        return f"{action}: args.{arg} says more than this call and the calls that executed ({'; '.join(flags)})"

    def owns(self, proposal_id: str) -> bool:
        return proposal_id in self._calls

    def messages(self, thread: str) -> list[BaseMessage]:
        """The conversation of one thread so far (for tests and the docs' example)."""
        values = self._graph.get_state(self._config(thread)).values
        return list(values.get("messages", []))

    def run(self, inbox: Sequence[Envelope], ctx: AgentStepContext) -> AgentOutput:
        self._narrator.at(ctx.sim_time)
        starts: list[Envelope] = []
        rejected: list[Rejected] = []
        for envelope in inbox:
            payload = envelope.payload
            if isinstance(payload, Observation | AgentMessage):
                if payload.kind in self._reacts_to and envelope.id not in self._threads:
                    starts.append(envelope)
            elif isinstance(payload, VerdictIssued | EscalationResolved | ActionExecuted):
                self._fold(payload)
        proposals: list[Outgoing] = []
        for thread in list(self._order):  # resumed in the order they started
            self._continue(thread, ctx, proposals, rejected)
        for envelope in starts:
            self._threads[envelope.id] = _Thread(envelope)
            self._order.append(envelope.id)
            situation, untrusted = situation_of(envelope)
            request: dict[str, Any] = {"agent": self._name, "situation": situation}
            self._narrator.untrusted_field(request, self._name, untrusted)
            start = {"messages": [HumanMessage(content=json.dumps(request, sort_keys=True, ensure_ascii=False))]}
            self._invoke(envelope.id, start, ctx, proposals, rejected)
        records = [Outgoing(topics.CONTROL, record, None) for record in self._narrator.drain()]
        return AgentOutput(messages=(*records, *proposals), rejected=tuple(rejected))

    # -- what governance, people and the executor did ---------------------------------------------------

    def _fold(self, payload: VerdictIssued | EscalationResolved | ActionExecuted) -> None:
        call = self._calls.get(payload.proposal_id)
        if call is None:
            return
        pid = payload.proposal_id
        if isinstance(payload, VerdictIssued):
            if payload.outcome == "deny":
                self._answer(call, {"proposal_id": pid, "verdict": "deny", "reasons": list(payload.reasons)})
            elif payload.outcome == "escalate":
                self._answer(
                    call,
                    {
                        "proposal_id": pid,
                        "verdict": "escalate",
                        "gate": payload.gate,
                        "reasons": list(payload.reasons),
                        "note": "a person decides; the outcome will be reported to you",
                    },
                )
                call.escalated = True
        elif isinstance(payload, EscalationResolved):
            if payload.outcome != "approved":
                news = {"proposal_id": pid, "action": call.action, "escalation": payload.outcome}
                self._threads[call.thread].updates.append({**news, "reason": payload.reason})
        else:
            if payload.status == "applied":
                self._executed.append((call.action, dict(call.args)))
            executed = {
                "proposal_id": pid,
                "executed": payload.status,
                "detail": payload.detail,
                "changes": dict(payload.changes),
            }
            if call.escalated:
                self._threads[call.thread].updates.append({"action": call.action, **executed})
            else:
                self._answer(call, executed)

    @staticmethod
    def _answer(call: _Call, result: dict[str, Any]) -> None:
        if call.answered is None and not call.escalated:
            call.answered = result

    # -- running the graph -------------------------------------------------------------------------------

    @staticmethod
    def _config(thread: str) -> RunnableConfig:
        # One task at a time: a ToolNode runs its calls in threads, and LangGraph matches resume values to a node's
        # interrupts by the order they were raised in, so calls of one answer are proposed one by one, in order.
        return {"configurable": {"thread_id": thread}, "recursion_limit": MAX_GRAPH_STEPS, "max_concurrency": 1}

    def _continue(self, thread_id: str, ctx: AgentStepContext, out: list[Outgoing], rejected: list[Rejected]) -> None:
        thread = self._threads[thread_id]
        if thread.waiting:
            answers = {iid: self._calls[pid].answered for iid, pid in thread.waiting.items()}
            if any(answer is None for answer in answers.values()):
                return  # the graph's tool step resumes once every one of its calls is answered
            thread.waiting = {}
            self._invoke(thread_id, Command(resume=answers), ctx, out, rejected)
        if not thread.waiting and thread.updates:
            updates, thread.updates = thread.updates, []
            news = HumanMessage(content=_json({"updates": updates}))
            self._invoke(thread_id, {"messages": [news]}, ctx, out, rejected)

    def _invoke(
        self, thread_id: str, given: Any, ctx: AgentStepContext, out: list[Outgoing], rejected: list[Rejected]
    ) -> None:
        thread = self._threads[thread_id]
        config = self._config(thread_id)
        try:
            self._graph.invoke(given, config)
        except ReplayMiss:
            raise
        except GraphRecursionError:
            self._narrator.stopped(
                f"graph:{self._name}",
                f"the graph took more than {MAX_GRAPH_STEPS} steps",
                then="its conversation ends there",
            )
            return
        except Exception as exc:  # the user's graph failed: that conversation ends, the run goes on (recorded)
            reason = f"the graph raised {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self._narrator.stopped(f"graph:{self._name}", reason, then="its conversation ends there")
            rejected.append(Rejected(thread.trigger, reason))
            return
        state = self._graph.get_state(config)
        foreign = [i.value for i in state.interrupts if not _is_call(i.value)]
        if foreign:  # the graph waits for something of its own (e.g. LangChain's human-in-the-loop middleware)
            reason = f"the graph interrupted for something other than an action call ({str(foreign[0])[:200]})"
            self._narrator.stopped(f"graph:{self._name}", reason, then="its conversation ends there")
            rejected.append(Rejected(thread.trigger, reason))
            self._order.remove(thread_id)  # never resumed: only the adapter answers its interrupts
            return
        # every interrupt now is a new call: a thread is resumed only once all its calls are answered
        pending = {i.value["tool_call_id"]: i for i in state.interrupts}
        messages = state.values.get("messages", [])
        asked = next((m for m in reversed(messages) if isinstance(m, AIMessage) and m.tool_calls), None)
        order = [str(c.get("id")) for c in asked.tool_calls] if asked is not None else []
        for call_id in sorted(pending, key=lambda c: order.index(c) if c in order else len(order)):
            value = pending[call_id].value
            pid = ctx.proposal_id(len(out) + 1)
            call = _Call(thread_id, call_id, str(value["action"]), dict(value["args"]))
            self._calls[pid] = call
            out.append(Outgoing(topics.PROPOSALS, self._proposal(pid, call, asked), thread.trigger))
            thread.waiting[pending[call_id].id] = pid

    def _proposal(self, pid: str, call: _Call, asked: AIMessage | None) -> ActionProposed:
        said = message_text(asked).strip()[:500] if asked is not None else ""
        called = f"the {self._name} agent's graph called {call.action}"
        if said and self._narrator.words_flags(said, _call_facts(call.action, call.args)):
            said = ""  # it says more than the call carries: recorded by its hash and flags, left out of the record
        rationale = called + (f": {said}" if said else "")
        return ActionProposed(
            proposal_id=pid,
            agent=self._name,
            action=call.action,
            args=call.args,
            rationale=rationale,
            evidence=[evidence_of(self._threads[call.thread].trigger)],
            model=self.model.traces.get(call.tool_call_id),
        )
