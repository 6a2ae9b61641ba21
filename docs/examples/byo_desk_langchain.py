"""A LangChain tool-calling agent of your own for the billing desk: `langchain.agents.create_agent`, with a tool of
your own beside the ones Coalition gives it.

`create_agent` is LangChain 1.x's tool-calling agent (it replaces `create_tool_calling_agent` + `AgentExecutor`):
a model that calls tools in a loop until it answers in words. Coalition calls `build(model, tools)` once per run:
`model` is your agent's chat model (limited, recorded and replayed by Coalition), `tools` are the actions the
policy permits your agent. A call of one of those becomes a governed proposal; what governance, a person or the
executor made of it comes back as the tool's result. A tool of your own (here `account_notes`) runs as you wrote
it: it proposes nothing and changes nothing in Coalition's world (see docs/byo-agent.md).
"""

from __future__ import annotations

from typing import Any

from langchain.agents import create_agent
from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool, tool

INSTRUCTIONS = (
    "You resolve a utility's billing cases. Read the situation in the user's JSON; you may read the account's notes; "
    "call the tool for the action the case needs, and read what the tool answers: a denial or an escalation is final "
    "for that call. When you are done, answer with one short sentence and no tool call."
)

NOTES = {"A-1": "prefers email", "A-2": "paperless since 2024", "A-3": "away in winter"}


@tool
def account_notes(account_id: str) -> str:
    """The desk's own notes on an account (read-only: your tool, not an action Coalition governs)."""
    return NOTES.get(account_id, "no notes")


def build(model: BaseChatModel, tools: list[BaseTool]) -> Any:
    return create_agent(model, [account_notes, *tools], system_prompt=INSTRUCTIONS)
