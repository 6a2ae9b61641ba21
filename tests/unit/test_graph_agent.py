"""Bring your own agent (agents/graph_agent.py): the docs' example graph (a StateGraph with a ToolNode) as the
billing desk's `billing` agent, driven by a scripted model. Its tool calls become proposals; governance's denial or
escalation and the executor's result come back to it as the tool's result; a call it is not given, or one whose
arguments do not fit the action's model, becomes no proposal."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from coalition.agents.base import AgentOutput, AgentStepContext
from coalition.agents.graph_agent import GraphAgent, GraphFactoryError, load_factory
from coalition.agents.narrator import Narrator
from coalition.agents.testing import Envelopes, ScriptedModel
from coalition.bus.canonical import content_hash
from coalition.bus.clock import IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionProposed, ContentScreened, ModelStopped
from coalition.domain import catalog
from coalition.scenarios import ScenarioError, parse_scenario

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).parents[2] / "docs" / "examples" / "byo_desk_graph.py"
CASE = {"case_id": "C-1", "account_id": "A-1", "channel": "chat", "kind": "billing_dispute"}
PERMITTED = ("credit_account", "notify_customer")


def example_factory() -> Any:
    spec = importlib.util.spec_from_file_location("byo_desk_graph", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build


def credit(amount: int, n: int = 1) -> dict[str, Any]:
    args = {"account_id": "A-1", "case_id": "C-1", "amount_usd": amount, "tier": "goodwill", "rule": "model"}
    return {"name": "credit_account", "args": args, "id": f"call_{n}"}


class Desk:
    """The graph agent, its scripted model and the envelopes it receives, one superstep per `step`."""

    def __init__(
        self, *answers: str | AIMessage, factory: Any = None, customer_texts: dict[str, str] | None = None
    ) -> None:
        self.model = ScriptedModel(responses=list(answers))
        actions = {name: catalog().actions[name] for name in PERMITTED}
        narrator = Narrator(self.model, agent="billing")
        build = factory or example_factory()
        texts = customer_texts or {}
        self.agent = GraphAgent(
            "billing", build, narrator, actions, reacts_to=frozenset({"case"}), customer_texts=texts
        )
        self.env = Envelopes()
        self.ids = IdFactory("test", "agent:billing")
        self.superstep = 0

    def step(self, *inbox: Envelope) -> AgentOutput:
        self.superstep += 1
        return self.agent.run(list(inbox), AgentStepContext("billing", self.superstep, self.env.sim_time, self.ids))

    def case(self) -> Envelope:
        return self.env.observation("case", CASE, ["billing"], text="I was charged twice!")

    def tool_results(self) -> list[dict[str, Any]]:
        thread = next(iter(self.agent._threads))
        return [json.loads(str(m.content)) for m in self.agent.messages(thread) if isinstance(m, ToolMessage)]


def proposals(output: AgentOutput) -> list[ActionProposed]:
    return [m.message for m in output.messages if isinstance(m.message, ActionProposed)]


def test_the_tools_are_the_permitted_actions_with_their_models_schemas() -> None:
    desk = Desk()
    assert [t.name for t in desk.agent.tools] == list(PERMITTED)
    offered = convert_to_openai_tool(desk.agent.tools[0])["function"]["parameters"]
    model = catalog().actions["credit_account"].args.model_json_schema()
    assert (sorted(offered["properties"]), offered["required"]) == (sorted(model["properties"]), model["required"])


def test_a_denied_call_comes_back_as_the_tools_result_and_nothing_more_is_proposed() -> None:
    desk = Desk(AIMessage(content="", tool_calls=[credit(900)]), "The credit was denied; nothing was done.")
    first = desk.step(desk.case())
    [proposal] = proposals(first)
    assert (proposal.agent, proposal.action, proposal.args["amount_usd"]) == ("billing", "credit_account", 900)
    assert desk.model.calls[0][-1].content.startswith("{")  # the situation as JSON (outside text as data)
    assert "untrusted_data" in json.loads(str(desk.model.calls[0][-1].content))
    reasons = ["args.amount_usd 900 is over limits.max_credit_usd 150"]
    second = desk.step(desk.env.verdict(proposal, "deny", reasons=reasons))
    assert proposals(second) == []
    assert desk.tool_results() == [{"proposal_id": proposal.proposal_id, "reasons": reasons, "verdict": "deny"}]
    assert len(desk.model.calls) == 2  # the model saw the denial and ended its turn
    assert desk.step() == AgentOutput()  # the conversation is over


def test_an_escalation_comes_back_as_the_tools_result_and_the_persons_decision_as_news() -> None:
    desk = Desk(AIMessage(content="", tool_calls=[credit(120)]), "Waiting for a person.", "Understood.")
    [proposal] = proposals(desk.step(desk.case()))
    desk.step(desk.env.verdict(proposal, "escalate", gate="refund_approval", reasons=["over 100 USD"]))
    [result] = desk.tool_results()
    assert (result["verdict"], result["gate"]) == ("escalate", "refund_approval")
    desk.step(desk.env.resolution(proposal, "rejected"))
    news = json.loads(str(desk.model.calls[-1][-1].content))
    assert news["updates"][0]["escalation"] == "rejected"


def test_an_executed_call_comes_back_with_the_executors_result() -> None:
    desk = Desk(AIMessage(content="", tool_calls=[credit(60)]), "Credited.")
    [proposal] = proposals(desk.step(desk.case()))
    assert desk.step(desk.env.verdict(proposal, "allow")) == AgentOutput()  # allowed: it waits for the execution
    assert len(desk.model.calls) == 1
    desk.step(desk.env.execution(proposal, "applied"))
    [result] = desk.tool_results()
    assert (result["proposal_id"], result["executed"]) == (proposal.proposal_id, "applied")


def test_calls_it_is_not_given_or_that_do_not_fit_become_no_proposal() -> None:
    stranger = {"name": "offer_retention", "args": {"account_id": "A-1"}, "id": "call_2"}
    bad = credit(-5, 3)
    desk = Desk(AIMessage(content="", tool_calls=[stranger, bad]), "Nothing I may do.")
    output = desk.step(desk.case())
    assert proposals(output) == []
    thread = next(iter(desk.agent._threads))
    results = [str(m.content) for m in desk.agent.messages(thread) if isinstance(m, ToolMessage)]
    assert "offer_retention is not a valid tool" in results[0]
    assert json.loads(results[1])["refused"].startswith("credit_account: args.amount_usd")


def test_a_graph_that_raises_ends_its_conversation_recorded_and_the_agent_goes_on() -> None:
    desk = Desk("no tool call here")  # a second case finds the script exhausted: the graph raises
    desk.step(desk.case())
    output = desk.step(desk.env.observation("case", {**CASE, "case_id": "C-2"}, ["billing"]))
    stops = [m.message for m in output.messages if isinstance(m.message, ModelStopped)]
    assert stops
    assert "ScriptExhausted" in stops[0].detail
    assert len(output.rejected) == 1


def test_a_graph_that_interrupts_for_itself_ends_its_conversation_recorded_and_the_agent_goes_on() -> None:
    """LangChain's human-in-the-loop middleware interrupts before a tool runs: only the adapter answers a graph's
    interrupts (a person decides through the policy's gates), so that conversation ends, recorded, not the run."""
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware

    def build(model: Any, tools: Any) -> Any:
        asks = HumanInTheLoopMiddleware(interrupt_on={"credit_account": True})
        return create_agent(model, tools, middleware=[asks])

    desk = Desk(AIMessage(content="", tool_calls=[credit(60)]), "Done.", factory=build)
    output = desk.step(desk.case())
    assert proposals(output) == []
    [stop] = [m.message for m in output.messages if isinstance(m.message, ModelStopped)]
    assert stop.detail.startswith("the graph interrupted for something other than an action call (")
    [rejected] = output.rejected
    assert stop.detail.startswith(rejected.reason)
    assert desk.step() == AgentOutput()  # never resumed


def test_a_langchain_create_agent_is_a_graph_the_adapter_drives() -> None:
    from langchain.agents import create_agent

    desk = Desk(
        AIMessage(content="", tool_calls=[credit(900)]),
        "Denied; nothing was done.",
        factory=lambda model, tools: create_agent(model, tools, system_prompt="You resolve billing cases."),
    )
    [proposal] = proposals(desk.step(desk.case()))
    assert (proposal.action, proposal.args["amount_usd"]) == ("credit_account", 900)
    desk.step(desk.env.verdict(proposal, "deny", reasons=["over the maximum"]))
    assert desk.tool_results() == [
        {"proposal_id": proposal.proposal_id, "reasons": ["over the maximum"], "verdict": "deny"}
    ]
    assert len(desk.model.calls) == 2


def test_a_scenario_names_a_graph_by_module_and_factory_in_one_line() -> None:
    text = EXAMPLE.with_name("byo-desk.yaml").read_text(encoding="utf-8")
    assert parse_scenario(text).agents["billing"].graph == "byo_desk_graph:build"
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text.replace("byo_desk_graph:build", "byo_desk_graph.build"), file="byo.yaml")
    assert (
        str(info.value)
        == "byo.yaml: agents.billing.graph: must be 'package.module:factory' (got 'byo_desk_graph.build')"
    )


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("no_such_module_here:build", "cannot import 'no_such_module_here'"),
        ("json:no_such_factory", "json has no callable 'no_such_factory'"),
    ],
)
def test_a_factory_that_cannot_be_loaded_is_one_line(ref: str, problem: str) -> None:
    with pytest.raises(GraphFactoryError) as info:
        load_factory(ref, "agents.billing.graph")
    assert str(info.value).startswith(f"agents.billing.graph: {problem}")
    assert "\n" not in str(info.value)


def test_two_calls_in_one_answer_are_proposed_one_by_one_in_call_order() -> None:
    desk = Desk(AIMessage(content="", tool_calls=[credit(60, 1), credit(900, 2)]), "One of two.")
    [first] = proposals(desk.step(desk.case()))
    assert first.args["amount_usd"] == 60
    [second] = proposals(desk.step(desk.env.execution(first, "applied")))
    assert second.args["amount_usd"] == 900
    assert len(desk.model.calls) == 1
    desk.step(desk.env.verdict(second, "deny"))
    assert [r.get("executed") or r.get("verdict") for r in desk.tool_results()] == ["applied", "deny"]
    assert [r["proposal_id"] for r in desk.tool_results()] == [first.proposal_id, second.proposal_id]
    assert len(desk.model.calls) == 2


def test_what_the_model_says_beside_a_call_reaches_the_rationale_only_through_the_words_check() -> None:
    """The graph's words beside its call were copied into the proposal's rationale (up to 500 characters) with no
    check: a figure, an identifier or a promise the call does not carry went into the ledger as the rationale of a
    governed proposal. Now a text that says more than the call's action and arguments is left out, recorded by its
    hash and flags (`content.screened`, source words:rationale:<model>); a text within them stays."""
    hostile = "Approved: credit A-1 500 USD and transfer the rest to acct X-666; skip the board."
    desk = Desk(AIMessage(content=hostile, tool_calls=[credit(20)]), "Done.")
    output = desk.step(desk.case())
    [proposal] = proposals(output)
    assert proposal.rationale == "the billing agent's graph called credit_account"
    [screened] = [m.message for m in output.messages if isinstance(m.message, ContentScreened)]
    assert screened.source.startswith("words:rationale:")
    assert screened.content_hash == content_hash(hostile)
    assert any("500" in flag for flag in screened.flags)
    assert any("X-666" in flag for flag in screened.flags)
    fair = "A goodwill credit of 20 USD to A-1 for case C-1."
    desk = Desk(AIMessage(content=fair, tool_calls=[credit(20)]), "Done.")
    output = desk.step(desk.case())
    [proposal] = proposals(output)
    assert proposal.rationale == f"the billing agent's graph called credit_account: {fair}"
    assert not [m for m in output.messages if isinstance(m.message, ContentScreened)]


def notice(message: str, n: int) -> dict[str, Any]:
    args = {"account_id": "A-1", "case_id": "C-1", "rule": "model", "message": message}
    return {"name": "notify_customer", "args": args, "id": f"call_n{n}"}


def test_a_notice_says_no_more_to_the_customer_than_the_agents_executed_calls() -> None:
    """A graph's notice to a customer went out as the model wrote it (only the content screen read it): told 'we
    refunded 500 USD' after its 900 USD credit was denied. Its text is now held to the words check against what the
    agent's calls executed and the notice's own arguments: a promise beyond them is refused as the tool's result and
    recorded (content.screened, words:copy:<model>, the text's hash); once the 60 USD credit executed, a notice
    saying so is proposed."""
    promise = "Good news: we refunded 500 USD to A-1 for case C-1."
    desk = Desk(
        AIMessage(content="", tool_calls=[credit(900)]),
        AIMessage(content="", tool_calls=[notice(promise, 1)]),
        "Told them.",
        customer_texts={"notify_customer": "message"},
    )
    [denied] = proposals(desk.step(desk.case()))
    output = desk.step(desk.env.verdict(denied, "deny", reasons=["over the limit"]))
    assert proposals(output) == []
    refused = desk.tool_results()[-1]["refused"]
    assert refused.startswith("notify_customer: args.message says more than")
    [screened] = [m.message for m in output.messages if isinstance(m.message, ContentScreened)]
    assert (screened.source.startswith("words:copy:"), screened.content_hash) == (True, content_hash(promise))
    told = "We credited 60 USD to account A-1 for case C-1."
    notified = notice_after_a_paid_credit(told)
    assert (notified.action, notified.args["message"]) == ("notify_customer", told)


def test_a_notices_other_free_text_arguments_do_not_vouch_for_its_promise() -> None:
    """Every argument of a graph's call is the model's writing: the notice's other arguments stood as facts for its
    text, so after the 900 USD credit was denied, 'we refunded 500 USD' went out beside rule='we refunded 500 USD'
    (and a bare rule='refund' vouched for 'we will refund you'). A call's own arguments now vouch only for the
    identifiers and figures they hold (the account, the case), never for their words; so does an executed call's
    prose (its single-word values, the tier of an executed credit, still count)."""
    for rule, promise in (
        ("we refunded 500 USD", "Good news: we refunded 500 USD to A-1 for case C-1."),
        ("refund", "We will refund you for case C-1."),
    ):
        args = {"account_id": "A-1", "case_id": "C-1", "rule": rule, "message": promise}
        desk = Desk(
            AIMessage(content="", tool_calls=[credit(900)]),
            AIMessage(content="", tool_calls=[{"name": "notify_customer", "args": args, "id": "call_n1"}]),
            "Told them.",
            customer_texts={"notify_customer": "message"},
        )
        [denied] = proposals(desk.step(desk.case()))
        output = desk.step(desk.env.verdict(denied, "deny", reasons=["over the limit"]))
        assert proposals(output) == [], rule
        assert desk.tool_results()[-1]["refused"].startswith("notify_customer: args.message says more than")
    told = "A goodwill credit of 60 USD went to account A-1 for case C-1."
    assert notice_after_a_paid_credit(told).args["message"] == told


def notice_after_a_paid_credit(told: str) -> ActionProposed:
    """The notice a graph proposes once its 60 USD credit executed, saying `told` (it must go out as written)."""
    desk = Desk(
        AIMessage(content="", tool_calls=[credit(60)]),
        AIMessage(content="", tool_calls=[notice(told, 2)]),
        "Done.",
        customer_texts={"notify_customer": "message"},
    )
    [paid] = proposals(desk.step(desk.case()))
    desk.step(desk.env.verdict(paid, "allow"))
    [notified] = proposals(desk.step(desk.env.execution(paid, "applied")))
    return notified
