"""coalition.agents: the five function agents (LangGraph graphs over deterministic engines), the language
step that words their decisions, and the runtime that connects them to the bus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
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
    from coalition.agents.model_choice import ModelChoice, choose_models
    from coalition.agents.model_setup import build_narrators
    from coalition.agents.narrator import NarratedText, Narrator, Suggestion
    from coalition.agents.offline_model import MODEL_ID, OfflineChatModel
    from coalition.agents.prices import PriceTable, load_prices
    from coalition.agents.providers import ProviderAccess, make_model, missing_keys
    from coalition.agents.recording import RecordingChatModel, ReplayChatModel, replay_models
    from coalition.agents.registry import agent_types, build_agents
    from coalition.agents.runtime import AgentRuntime
    from coalition.agents.testing import ScriptedModel
    from coalition.agents.workflow import FunctionAgent

_LAZY: dict[str, str] = {
    "Agent": "coalition.agents.base",
    "AgentError": "coalition.agents.errors",
    "AgentOutput": "coalition.agents.base",
    "AgentRuntime": "coalition.agents.runtime",
    "AgentStepContext": "coalition.agents.base",
    "Facts": "coalition.agents.facts",
    "FunctionAgent": "coalition.agents.workflow",
    "MODEL_ID": "coalition.agents.offline_model",
    "ModelChoice": "coalition.agents.model_choice",
    "ModelConfigError": "coalition.agents.errors",
    "ModelGuard": "coalition.agents.model_budget",
    "ModelLimits": "coalition.agents.model_budget",
    "NarratedText": "coalition.agents.narrator",
    "Narrator": "coalition.agents.narrator",
    "OfflineChatModel": "coalition.agents.offline_model",
    "Outgoing": "coalition.agents.base",
    "PriceTable": "coalition.agents.prices",
    "ProviderAccess": "coalition.agents.providers",
    "RecordingChatModel": "coalition.agents.recording",
    "Rejected": "coalition.agents.base",
    "ReplayChatModel": "coalition.agents.recording",
    "ReplayMiss": "coalition.agents.errors",
    "ScriptExhausted": "coalition.agents.errors",
    "ScriptedModel": "coalition.agents.testing",
    "Suggestion": "coalition.agents.narrator",
    "UnusableInput": "coalition.agents.errors",
    "agent_types": "coalition.agents.registry",
    "build_agents": "coalition.agents.registry",
    "build_narrators": "coalition.agents.model_setup",
    "choose_models": "coalition.agents.model_choice",
    "load_prices": "coalition.agents.prices",
    "make_model": "coalition.agents.providers",
    "missing_keys": "coalition.agents.providers",
    "replay_models": "coalition.agents.recording",
}
lazy_package(__name__, _LAZY)

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
