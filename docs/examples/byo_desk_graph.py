"""A graph of your own for the billing desk: a plain LangGraph StateGraph with a ToolNode, built by you.

Coalition calls `build(model, tools)` once per run: `model` is your agent's chat model (limited, recorded and
replayed by Coalition), `tools` are the actions the policy permits your agent. Nothing here knows Coalition: a
tool's result is whatever governance, a person or the executor made of your call (see docs/byo-agent.md).
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition

INSTRUCTIONS = (
    "You resolve a utility's billing cases. Read the situation in the user's JSON, call the tool for the action the "
    "case needs, and read what the tool answers: a denial or an escalation is final for that call. When you are "
    "done, answer with one short sentence and no tool call."
)


def build(model: BaseChatModel, tools: list[BaseTool]) -> Any:
    bound = model.bind_tools(tools)

    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke([SystemMessage(content=INSTRUCTIONS), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("think", think)
    graph.add_node("act", ToolNode(tools))
    graph.add_edge(START, "think")
    graph.add_conditional_edges("think", tools_condition, {"tools": "act", END: END})
    graph.add_edge("act", "think")
    return graph.compile()
