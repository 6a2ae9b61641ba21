"""A deterministic, seeded chat model that needs no network and no key: the default language step.

It words the structured facts it is given (the human message carries a JSON object with a "facts" block)
and answers tool calls — so `with_structured_output` works — from those facts and the tool's schema. Where a
tool call is optional (tool choice unset or "auto", e.g. a user's own graph) it answers in words: it never decides.
The seed and the sha256 of the messages pick among phrasings; nothing else varies.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackManager, CallbackManagerForLLMRun
from langchain_core.globals import get_llm_cache
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import var_child_runnable_config
from langchain_core.tracers.context import _tracing_v2_is_enabled

from coalition.agents.chat import ENGINE_TOOL, ToolBindingChatModel, message_text
from coalition.bus.canonical import canonical_json

MODEL_ID = "offline:narrator-v1"  # an agent no pack declares (a pack's agents speak with its Voice)
SIGN_OFF = "An update"

_OPENERS: dict[str, tuple[str, ...]] = {
    "propose": ("I propose to {d}", "Proposal: {d}", "Recommended action: {d}"),
    "inform": ("For your information: {d}", "Update: {d}", "Sharing that we {d}"),
    "request": ("Requesting that you {d}", "Please {d}", "Request: {d}"),
    "review": ("Review result: {d}", "After review, we {d}", "Finding: {d}"),
    "notify": ("We {d}", "Please note that we {d}", "{s}: we {d}"),
}
_BECAUSE = (", because ", " since ", " — the reason: ")
_JOINERS = ("; ", ", and ", "; moreover, ")
_RULES = (" Policy context: {r}.", " Rules in play: {r}.", " This stays within: {r}.")
_FIGURES = (" Key figures: {f}.", " Figures used: {f}.", " Inputs: {f}.")
_GREETINGS = ("Dear {a},", "Hello {a},", "To {a}:")
_CLOSINGS = (
    " We apologise for the inconvenience and will keep you informed.",
    " Thank you for your patience; we will update you as things change.",
    " We are sorry for the disruption and will follow up shortly.",
)
_TEXT_FIELDS = frozenset({"text", "rationale", "summary", "message", "copy", "explanation", "answer", "content"})


def estimate_tokens(text: str) -> int:
    """A deterministic token estimate: one token per four characters, at least one."""
    return max(1, math.ceil(len(text) / 4))


def _request(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """The structured request in the last human message (an empty one when it is not JSON)."""
    for message in reversed(messages):
        if isinstance(message, HumanMessage):
            try:
                parsed = json.loads(message_text(message))
            except ValueError:
                return {"text": message_text(message)}
            return parsed if isinstance(parsed, dict) else {"text": message_text(message)}
    return {}


class _Picker:
    """Deterministic choices from a digest: the n-th choice reads the n-th byte."""

    def __init__(self, digest: bytes) -> None:
        self._digest = digest
        self._n = 0

    def __call__(self, options: Sequence[str]) -> str:
        choice = options[self._digest[self._n % len(self._digest)] % len(options)]
        self._n += 1
        return choice


def _sentence(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else f"{text}."


def compose(request: dict[str, Any], pick: Callable[[Sequence[str]], str], sign_off: str = SIGN_OFF) -> str:
    """Word a request's facts: an opener with the decision, the reasons, the rules and the figures (a customer
    notice may open with `sign_off`)."""
    facts = request.get("facts")
    if not isinstance(facts, dict):
        words = len(str(request.get("text", "")).split())
        return f"Noted a request of {words} words; no structured facts were given, so no decision is described."
    decision = str(facts.get("decision", "take no action")).strip()
    reasons = [str(r) for r in facts.get("reasons", []) if str(r).strip()]
    rules = [str(r) for r in facts.get("rules", []) if str(r).strip()]
    figures = facts.get("figures", {})
    intent = str(facts.get("intent", "inform"))
    if request.get("task") == "copy":
        audience = str(request.get("audience", "customers"))
        body = _sentence(pick(_OPENERS["notify"]).format(d=decision, s=sign_off))
        if reasons:
            body += " " + _sentence(reasons[0][:1].upper() + reasons[0][1:])
        return f"{pick(_GREETINGS).format(a=audience)} {body}{pick(_CLOSINGS)}"
    text = pick(_OPENERS.get(intent, _OPENERS["inform"])).format(d=decision, s=sign_off)
    if reasons:
        text += pick(_BECAUSE) + pick(_JOINERS).join(reasons)
    text = _sentence(text)
    if rules:
        text += pick(_RULES).format(r="; ".join(rules))
    if isinstance(figures, dict) and figures:
        text += pick(_FIGURES).format(f=", ".join(f"{k} {v}" for k, v in sorted(figures.items())))
    return text


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        resolved = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        return resolved if isinstance(resolved, dict) else {}
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if isinstance(s, dict) and s.get("type") != "null"]
        return _resolve(options[0], root) if options else {}
    return schema


def _fill(schema: dict[str, Any], root: dict[str, Any], name: str, known: dict[str, Any], text: str) -> Any:
    """A value for one schema field: a known fact of that name, the composed text, or the type's empty value."""
    schema = _resolve(schema, root)
    kind = schema.get("type")
    if "enum" in schema:
        value = known.get(name)
        return value if value in schema["enum"] else schema["enum"][0]
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: _fill(sub, root, key, known, text) for key, sub in props.items()}
    value = known.get(name)
    if kind == "string":
        if isinstance(value, str):
            return value
        return text if name in _TEXT_FIELDS else (str(value) if value is not None else "")
    if kind in ("number", "integer"):
        try:
            number = float(str(value)) if value is not None else 0.0
        except ValueError:
            number = 0.0
        return int(number) if kind == "integer" else number
    if kind == "boolean":
        return bool(value) if isinstance(value, bool) else False
    if kind == "array":
        return list(value) if isinstance(value, list) else []
    return value if value is not None else (text if name in _TEXT_FIELDS else None)


def _adopt_engine(tools: list[dict[str, Any]], messages: Sequence[BaseMessage], digest: bytes) -> AIMessage:
    """The model lanes offline: ask the engine first, then propose exactly what it recommends (again, unchanged,
    when governance's preview warned about it: the engine's decision is what the transactional lane proposes)."""
    call_id = "call_" + digest.hex()[:24]
    last = messages[-1] if messages else None
    if isinstance(last, ToolMessage):
        try:
            result = json.loads(message_text(last))
        except ValueError:
            result = {}
        if isinstance(result, dict) and "preview" in result:
            warned = next((m for m in reversed(messages) if isinstance(m, AIMessage) and m.tool_calls), None)
            if warned is not None:
                call = warned.tool_calls[-1]
                return AIMessage(content="", tool_calls=[{"name": call["name"], "args": call["args"], "id": call_id}])
        recommended = result.get("recommendation") if isinstance(result, dict) else None
        names = {t["function"]["name"] for t in tools}
        if isinstance(recommended, dict) and recommended.get("action") in names:
            args = recommended.get("args") if isinstance(recommended.get("args"), dict) else {}
            return AIMessage(content="", tool_calls=[{"name": recommended["action"], "args": args, "id": call_id}])
    return AIMessage(content="", tool_calls=[{"name": ENGINE_TOOL, "args": {}, "id": call_id}])


class OfflineChatModel(ToolBindingChatModel):
    """Deterministic seeded narrator: same seed and messages ⇒ same answer, byte for byte. A pack's agents get one
    speaking with the pack's Voice (its model id and sign-off: coalition.agents.voices.offline_model)."""

    seed: int = 0
    model_id: str = MODEL_ID
    sign_off: str = SIGN_OFF

    @property
    def _llm_type(self) -> str:
        return "offline"

    def invoke(
        self,
        input: LanguageModelInput,
        config: RunnableConfig | None = None,
        *,
        stop: list[str] | None = None,
        **kwargs: Any,
    ) -> AIMessage:
        """The answer of `_generate`, without LangChain's per-call machinery when nothing would see it run.

        BaseChatModel.invoke opens a callback run, looks up a cache, checks rate limits and streaming, then calls
        `_generate`: about 0.3 ms of a 0.05 ms answer, on every line an agent words. When no callback, tracer,
        cache, rate limiter or stream is attached — to this model or inherited from the graph node calling it —
        none of that has an effect, so the answer is the same message (only LangChain's run-derived `id` is not
        set: nothing reads it). Anything attached, tools bound, or options passed: the full path, unchanged."""
        if config is None and stop is None and not kwargs and self._unobserved():
            if isinstance(input, list) and all(isinstance(m, BaseMessage) for m in input):
                return self._answer(input)  # the messages as given (what a prompt value would hand back)
            return self._answer(self._convert_input(input).to_messages())
        return super().invoke(input, config, stop=stop, **kwargs)

    def _unobserved(self) -> bool:
        """Nothing is attached that a call through BaseChatModel.invoke would notify, consult or change."""
        if self.callbacks or self.verbose or self.rate_limiter is not None or self.output_version == "v1":
            return False
        if self.cache is not None or get_llm_cache() is not None or _tracing_v2_is_enabled():
            return False
        # the calling node's config as is (ensure_config would copy it and its callback manager, to read one key)
        calling = var_child_runnable_config.get()
        inherited = calling.get("callbacks") if calling else None  # a LangGraph node's manager: empty unless streamed
        if isinstance(inherited, BaseCallbackManager):
            return not inherited.handlers
        return not inherited

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "seed": self.seed}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._answer(messages, **kwargs))])

    def _answer(self, messages: list[BaseMessage], **kwargs: Any) -> AIMessage:
        transcript = [{"role": m.type, "content": message_text(m)} for m in messages]
        digest = hashlib.sha256(canonical_json({"seed": self.seed, "messages": transcript})).digest()
        request = _request(messages)
        text = compose(request, _Picker(digest), self.sign_off)
        tools = kwargs.get("tools") or []
        if tools and any(t["function"]["name"] == ENGINE_TOOL for t in tools):
            message = _adopt_engine(tools, messages, digest)
            spoken = json.dumps([c["args"] for c in message.tool_calls], sort_keys=True)
        elif tools and kwargs.get("tool_choice") not in (None, "auto"):
            message = self._tool_answer(tools, kwargs.get("tool_choice"), request, text, digest)
            spoken = json.dumps([c["args"] for c in message.tool_calls], sort_keys=True)
        else:
            message = AIMessage(content=text)
            spoken = text
        prompt = sum(estimate_tokens(t["content"]) for t in transcript)
        answer = estimate_tokens(spoken)
        message.usage_metadata = UsageMetadata(input_tokens=prompt, output_tokens=answer, total_tokens=prompt + answer)
        message.response_metadata = {"model_name": self.model_id, "seed": self.seed}
        return message

    @staticmethod
    def _tool_answer(
        tools: list[dict[str, Any]], tool_choice: Any, request: dict[str, Any], text: str, digest: bytes
    ) -> AIMessage:
        chosen = tools[0]
        if isinstance(tool_choice, str) and tool_choice not in ("any", "auto", "required"):
            chosen = next((t for t in tools if t["function"]["name"] == tool_choice), chosen)
        elif isinstance(tool_choice, dict):
            wanted = tool_choice.get("function", {}).get("name")
            chosen = next((t for t in tools if t["function"]["name"] == wanted), chosen)
        function = chosen["function"]
        parameters: dict[str, Any] = function.get("parameters", {})
        facts = request.get("facts") if isinstance(request.get("facts"), dict) else {}
        assert isinstance(facts, dict)
        known: dict[str, Any] = {**request, **facts, **(facts.get("figures") or {})}
        args = {key: _fill(sub, parameters, key, known, text) for key, sub in parameters.get("properties", {}).items()}
        call_id = "call_" + digest.hex()[:24]
        return AIMessage(content="", tool_calls=[{"name": function["name"], "args": args, "id": call_id}])
