"""The graph of the agent-workers benchmark (benchmarks/bench_workers.py): one model call per conversation, no tool
called, so each agent spends its step waiting for its model and proposes nothing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import SystemMessage
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, MessagesState, StateGraph


def build(model: BaseChatModel, tools: Sequence[BaseTool]) -> Any:
    def think(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke([SystemMessage(content="Note what you read."), *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("think", think)
    graph.add_edge(START, "think")
    graph.add_edge("think", END)
    return graph.compile()
