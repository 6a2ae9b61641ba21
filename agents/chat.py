"""What every chat model of ours shares (offline, scripted, recording, replay): a message's text as one
string, and tool binding in OpenAI format so that `with_structured_output` works on all of them."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

ENGINE_TOOL = "engine_recommendation"  # the autonomous lane's read-only tool: the engine's own decision


def message_text(message: BaseMessage) -> str:
    """The message's content as text: a string as it is, structured content as canonical-order JSON."""
    return message.content if isinstance(message.content, str) else json.dumps(message.content, sort_keys=True)


class ToolBindingChatModel(BaseChatModel):
    """A chat model whose `bind_tools` binds the tools (OpenAI format) and tool choice as call kwargs."""

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)
