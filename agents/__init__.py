"""coalition.agents: the five function agents (LangGraph graphs over deterministic engines), the language
step that words their decisions, and the runtime that connects them to the bus."""

from coalition.agents.base import Agent, AgentOutput, AgentStepContext, Outgoing, Rejected
from coalition.agents.errors import (
    AgentError,
    ModelConfigError,
    ReplayMiss,
    ScriptExhausted,
    UnusableInput,
)
from coalition.agents.facts import Facts
from coalition.agents.model_budget import ModelGuard, ModelLimits
from coalition.agents.model_setup import build_narrators
from coalition.agents.narrator import NarratedText, Narrator, Suggestion
from coalition.agents.offline_model import MODEL_ID, OfflineChatModel
from coalition.agents.prices import PriceTable, load_prices
from coalition.agents.providers import ModelChoice, ProviderAccess, choose_models, make_model, missing_keys
from coalition.agents.recording import RecordingChatModel, ReplayChatModel, replay_models
from coalition.agents.registry import agent_types, build_agents
from coalition.agents.runtime import AgentRuntime
from coalition.agents.testing import ScriptedModel
from coalition.agents.workflow import FunctionAgent

__all__ = [
    "MODEL_ID",
    "Agent",
    "AgentError",
    "AgentOutput",
    "AgentRuntime",
    "AgentStepContext",
    "Facts",
    "FunctionAgent",
    "ModelChoice",
    "ModelConfigError",
    "ModelGuard",
    "ModelLimits",
    "NarratedText",
    "Narrator",
    "OfflineChatModel",
    "Outgoing",
    "PriceTable",
    "ProviderAccess",
    "RecordingChatModel",
    "Rejected",
    "ReplayChatModel",
    "ReplayMiss",
    "ScriptExhausted",
    "ScriptedModel",
    "Suggestion",
    "UnusableInput",
    "agent_types",
    "build_agents",
    "build_narrators",
    "choose_models",
    "load_prices",
    "make_model",
    "missing_keys",
    "replay_models",
]
