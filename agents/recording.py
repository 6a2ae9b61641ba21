"""Record every call to a paid model (request hash → response, tokens, cost) and answer a replay from them.

`RecordingChatModel` wraps the provider's chat model; each call leaves a `ModelCalled` message in its
`CallLog`, which the agent publishes (the recorder turns it into a `model_call` ledger entry).
`ReplayChatModel` answers from recorded calls by request hash, in recorded order among equal requests,
so a run made with a paid model replays byte-identically without a key or network. Given a `live` model
(resuming an interrupted run), a request the recording has no answer for falls through to it instead of
failing: what was already paid for is answered from the ledger, only the rest reaches the provider.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field

from coalition.agents.chat import ToolBindingChatModel, message_text
from coalition.agents.errors import AgentError, ReplayMiss
from coalition.agents.offline_model import estimate_tokens
from coalition.agents.prices import PriceTable
from coalition.bus.canonical import content_hash
from coalition.bus.message import Message
from coalition.bus.messages import ModelCalled, ModelStopReason
from coalition.bus.redaction import redact

# How a recorded error names the kind of stop it was (the prefix survives replay: the record holds the text only).
_STOP_PREFIXES: dict[str, ModelStopReason] = {
    "timeout:": "timeout",
    "oversized:": "oversized",
    "bad usage:": "bad_usage",
}
MAX_TOKENS_PER_CALL = 10_000_000  # a usage figure beyond it is not a count a provider can mean
POLL_S = 0.25


def _plausible_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_TOKENS_PER_CALL


def stop_reason(error: str) -> ModelStopReason:
    """The stop reason a recorded call error stands for: timeout, oversized, bad_usage, else provider_error."""
    return next((reason for prefix, reason in _STOP_PREFIXES.items() if error.startswith(prefix)), "provider_error")


class ProviderCallFailed(AgentError):
    """The provider did not answer (after the SDK's own retries), answered too late, too much or with impossible
    usage figures: the call is recorded with status error and `reason` says which."""

    def __init__(self, model_id: str, error: str) -> None:
        super().__init__(f"{model_id}: {error}")
        self.model_id = model_id
        self.error = error
        self.reason: ModelStopReason = stop_reason(error)


class _CallTimedOut(Exception):
    pass


SlowCall = Callable[[str, str, float], None]  # (agent, model id, seconds waited so far)


def invoke_within(
    runnable: Runnable[LanguageModelInput, BaseMessage],
    messages: list[BaseMessage],
    *,
    timeout_s: float | None,
    slow_after_s: float,
    on_slow: Callable[[float], None] | None,
) -> BaseMessage:
    """`runnable.invoke(messages)`, abandoned after `timeout_s` however the provider trickles its answer (an SDK's
    read timeout restarts with every byte). The call runs in a daemon thread, so an abandoned one never holds the
    process open; time is counted in polls of the answer, not read from a clock."""
    if timeout_s is None:
        return runnable.invoke(messages)
    box: list[BaseMessage | BaseException] = []
    done = threading.Event()
    context = contextvars.copy_context()

    def call() -> None:
        try:
            box.append(context.run(runnable.invoke, messages))
        except BaseException as exc:  # handed to the caller's thread below
            box.append(exc)
        finally:
            done.set()

    threading.Thread(target=call, name="model-call", daemon=True).start()
    waited, warned = 0.0, False
    while not done.wait(POLL_S):
        waited += POLL_S
        if waited >= timeout_s:
            raise _CallTimedOut
        if on_slow is not None and not warned and waited >= slow_after_s:
            warned = True
            on_slow(waited)
    result = box[0]
    if isinstance(result, BaseException):
        raise result
    return result


class RecordedFailure(AgentError):
    """A replayed call whose original failed: raised again so the replay takes the same fallback path."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def transcript(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": m.type, "content": message_text(m)} for m in messages]


def prompt_hash(messages: Sequence[BaseMessage]) -> str:
    """Hash of what the model was shown (roles and contents), the `prompt_hash` of ModelTrace / ModelRef."""
    return content_hash(transcript(messages))


def request_hash(
    model_id: str, params: Mapping[str, Any], messages: Sequence[BaseMessage], tools: Any, tool_choice: Any
) -> str:
    """Hash of the whole request: model, parameters, messages and tools. Replay looks answers up by it."""
    return content_hash(
        {
            "model_id": model_id,
            "params": dict(params),
            "messages": transcript(messages),
            "tools": tools or [],
            "tool_choice": tool_choice,
        }
    )


def response_record(message: AIMessage) -> dict[str, Any]:
    """The parts of an answer that matter, as JSON (provider ids and timings are left out: not reproducible)."""
    usage = message.usage_metadata
    return {
        "content": message.content,
        "tool_calls": [{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls],
        "invalid_tool_calls": [
            {"name": c.get("name"), "args": c.get("args"), "id": c.get("id"), "error": c.get("error")}
            for c in message.invalid_tool_calls
        ],
        "usage": {
            "input_tokens": usage["input_tokens"] if usage else 0,
            "output_tokens": usage["output_tokens"] if usage else 0,
        },
    }


def message_from_record(record: Mapping[str, Any]) -> AIMessage:
    usage = record.get("usage") or {}
    tokens_in, tokens_out = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    return AIMessage(
        content=record.get("content", ""),
        tool_calls=[{"name": c["name"], "args": c["args"], "id": c.get("id")} for c in record.get("tool_calls", [])],
        invalid_tool_calls=[
            {
                "type": "invalid_tool_call",
                "name": c.get("name"),
                "args": c.get("args"),
                "id": c.get("id"),
                "error": c.get("error"),
            }
            for c in record.get("invalid_tool_calls", [])
        ],
        usage_metadata=UsageMetadata(
            input_tokens=tokens_in, output_tokens=tokens_out, total_tokens=tokens_in + tokens_out
        ),
    )


class CallLog:
    """Where a recording model leaves its `ModelCalled` messages until the agent publishes them."""

    def __init__(self, agent: str, call_id: Callable[[int], str] | None = None) -> None:
        self.agent = agent
        self._pending: list[ModelCalled] = []
        self._count = 0
        self._call_id = call_id or (lambda n: f"{agent}-call-{n}")
        self.purpose = ""

    def next_id(self) -> str:
        self._count += 1
        return self._call_id(self._count)

    def add(self, call: ModelCalled) -> None:
        self._pending.append(call)

    @property
    def last(self) -> ModelCalled | None:
        return self._pending[-1] if self._pending else None

    def drain(self) -> list[ModelCalled]:
        pending, self._pending = self._pending, []
        return pending


class RecordingChatModel(ToolBindingChatModel):
    """Wraps a provider's chat model: forwards each call and logs model id, params, hashes, answer, tokens, cost."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    model_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    log: CallLog = Field(exclude=True)
    prices: PriceTable = Field(default_factory=PriceTable, exclude=True)
    timeout_s: float | None = Field(default=None, exclude=True)  # the whole call, SDK retries included
    max_answer_chars: int | None = Field(default=None, exclude=True)
    slow_after_s: float = Field(default=5.0, exclude=True)
    on_slow: SlowCall | None = Field(default=None, exclude=True)

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        tool_choice = kwargs.get("tool_choice")
        req = request_hash(self.model_id, self.params, messages, tools, tool_choice)
        call_id = self.log.next_id()
        base: dict[str, Any] = {
            "call_id": call_id,
            "agent": self.log.agent,
            "model_id": self.model_id,
            "params": self.params,
            "purpose": self.log.purpose,
            "request_hash": req,
            "prompt_hash": prompt_hash(messages),
        }
        runnable: Runnable[LanguageModelInput, BaseMessage] = (
            self.inner.bind_tools(tools, tool_choice=tool_choice) if tools else self.inner
        )
        on_slow = self.on_slow

        def slow(waited: float) -> None:
            if on_slow is not None:
                on_slow(self.log.agent, self.model_id, waited)

        try:
            answer = invoke_within(
                runnable, messages, timeout_s=self.timeout_s, slow_after_s=self.slow_after_s, on_slow=slow
            )
        except ReplayMiss:
            raise
        except RecordedFailure as exc:
            self._failed(base, exc.error)
        except _CallTimedOut:
            self._failed(base, f"timeout: no answer within {self.timeout_s:g} s")
        except Exception as exc:
            detail = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no detail'}"
            self._failed(base, f"timeout: {detail}" if "Timeout" in type(exc).__name__ else detail)
        assert isinstance(answer, AIMessage)
        self._check_answer(base, answer)
        record = response_record(answer)
        usage = record["usage"]
        if not usage["input_tokens"] and not usage["output_tokens"]:
            usage = {
                "input_tokens": sum(estimate_tokens(t["content"]) for t in transcript(messages)),
                "output_tokens": estimate_tokens(json.dumps(record, sort_keys=True)),
            }
            record["usage"] = usage
        cost = self.prices.cost(self.model_id, usage["input_tokens"], usage["output_tokens"])
        self.log.add(
            ModelCalled(
                **base,
                response=record,
                response_hash=content_hash(record),
                input_tokens=usage["input_tokens"],
                output_tokens=usage["output_tokens"],
                cost_usd=str(cost),
            )
        )
        message = message_from_record(record)
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _check_answer(self, base: dict[str, Any], answer: AIMessage) -> None:
        """An answer over the size cap, or with usage figures no provider can mean, is a recorded error: its text
        is never stored (a 6.8 MB answer once made a 392 MB ledger) and the engine's wording is used."""
        size = len(message_text(answer)) + sum(len(json.dumps(c["args"], default=str)) for c in answer.tool_calls)
        size += sum(len(str(c.get("args") or "")) for c in answer.invalid_tool_calls)
        if self.max_answer_chars is not None and size > self.max_answer_chars:
            self._failed(
                base,
                f"oversized: the answer has {size:,} characters, over the cap of {self.max_answer_chars:,} "
                "(COALITION_LLM_MAX_ANSWER_CHARS)",
            )
        usage = answer.usage_metadata
        if usage:
            figures = {k: usage.get(k) for k in ("input_tokens", "output_tokens", "total_tokens")}
            bad = {
                k: v
                for k, v in figures.items()
                if v is not None
                and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= MAX_TOKENS_PER_CALL)
            }
            if bad:
                shown = ", ".join(f"{k}={str(v)[:20]}" for k, v in bad.items())
                self._failed(base, f"bad usage: the provider reported {shown}")

    def _failed(self, base: dict[str, Any], error: str) -> None:
        error = redact(error)  # a provider's error body may echo the key: it never travels or is recorded
        self.log.add(ModelCalled(**base, status="error", error=error, response_hash=content_hash({"error": error})))
        raise ProviderCallFailed(self.model_id, error)


class ReplayChatModel(ToolBindingChatModel):
    """Answers from recorded calls by request hash (in recorded order among equal requests); a request with no
    recorded answer raises ReplayMiss, or is sent to `live` when one is given (a resumed run)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    agent: str
    model_id: str
    params: dict[str, Any] = Field(default_factory=dict)
    answers: dict[str, deque[ModelCalled]] = Field(default_factory=dict, exclude=True)
    live: BaseChatModel | None = Field(default=None, exclude=True)  # fall-through for unrecorded requests

    @property
    def _llm_type(self) -> str:
        return "replay"

    @property
    def recorded(self) -> int:
        return sum(len(q) for q in self.answers.values())

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools = kwargs.get("tools") or []
        tool_choice = kwargs.get("tool_choice")
        req = request_hash(self.model_id, self.params, messages, tools, tool_choice)
        queue = self.answers.get(req)
        if not queue and self.live is not None:
            runnable: Runnable[LanguageModelInput, BaseMessage] = (
                self.live.bind_tools(tools, tool_choice=tool_choice) if tools else self.live
            )
            answer = runnable.invoke(messages)
            assert isinstance(answer, AIMessage)
            return ChatResult(generations=[ChatGeneration(message=answer)])
        if not queue:
            raise ReplayMiss(self.agent, req, self.recorded)
        call = queue.popleft()
        if call.status == "error":
            raise RecordedFailure(call.error or "recorded failure")
        return ChatResult(generations=[ChatGeneration(message=message_from_record(call.response))])


def replay_models(calls: Iterable[Message | Mapping[str, Any]]) -> dict[str, ReplayChatModel]:
    """One replay model per agent that made paid calls, from `model.called` messages (other records are
    skipped) or their ledger payloads, in recorded order."""
    by_agent: dict[str, list[ModelCalled]] = defaultdict(list)
    for raw in calls:
        if isinstance(raw, Message) and not isinstance(raw, ModelCalled):
            continue
        call = raw if isinstance(raw, ModelCalled) else ModelCalled.model_validate(dict(raw))
        by_agent[call.agent].append(call)
    models: dict[str, ReplayChatModel] = {}
    for agent, recorded in sorted(by_agent.items()):
        answers: dict[str, deque[ModelCalled]] = defaultdict(deque)
        for call in recorded:
            answers[call.request_hash].append(call)
        first = recorded[0]
        models[agent] = ReplayChatModel(
            agent=agent, model_id=first.model_id, params=first.params, answers=dict(answers)
        )
    return models
