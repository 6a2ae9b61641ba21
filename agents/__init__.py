"""coalition.agents: the five function agents (LangGraph graphs over deterministic engines), the language
step that words their decisions, and the runtime that connects them to the bus."""

from coalition.agents.base import Agent, AgentOutput, AgentStepContext, Outgoing, Rejected
from coalition.agents.errors import AgentError, ScriptExhausted, UnknownAgent, UnusableInput
from coalition.agents.facts import Facts
from coalition.agents.narrator import NarratedText, Narrator
from coalition.agents.offline_model import MODEL_ID, OfflineChatModel
from coalition.agents.registry import AGENT_TYPES, build_agents
from coalition.agents.runtime import AgentRuntime
from coalition.agents.testing import ScriptedModel
from coalition.agents.workflow import FunctionAgent

__all__ = [
    "AGENT_TYPES",
    "MODEL_ID",
    "Agent",
    "AgentError",
    "AgentOutput",
    "AgentRuntime",
    "AgentStepContext",
    "Facts",
    "FunctionAgent",
    "NarratedText",
    "Narrator",
    "OfflineChatModel",
    "Outgoing",
    "Rejected",
    "ScriptExhausted",
    "ScriptedModel",
    "UnknownAgent",
    "UnusableInput",
    "build_agents",
]
