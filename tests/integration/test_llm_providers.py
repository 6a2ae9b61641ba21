"""The official openai / anthropic SDKs and the LangChain classes, for real, against the local wire server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import anthropic
import openai
import pytest
from llm_wire_server import FAKE_ANTHROPIC_KEY, FAKE_OPENAI_KEY, WireServer
from pydantic import BaseModel

from coalition.agents.facts import Facts
from coalition.agents.model_budget import ModelGuard
from coalition.agents.model_choice import choose_models
from coalition.agents.narrator import Narrator
from coalition.agents.offline_model import OfflineChatModel
from coalition.agents.providers import ProviderAccess, make_model, model_parameters
from coalition.agents.recording import CallLog, RecordingChatModel, replay_models
from coalition.bus.messages import ModelCalled, ModelStopped

pytestmark = pytest.mark.integration

FACTS = Facts(intent="propose", decision="enter the AZ market", reasons=["regulatory viability 0.75"])


class Entry(BaseModel):
    """A structured suggestion: region and the first-year investment."""

    region: str
    investment_usd: float
    confident: bool


@pytest.fixture(scope="module")
def server() -> Iterator[WireServer]:
    with WireServer() as running:
        yield running


@pytest.fixture
def wire(server: WireServer, monkeypatch: pytest.MonkeyPatch) -> WireServer:
    server.reset()
    monkeypatch.setenv("OPENAI_API_KEY", FAKE_OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", FAKE_ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.openai_base_url)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.anthropic_base_url)
    return server


def model_for(spec: str) -> object:
    choice = choose_models(per_agent={"finance": spec})["finance"]
    return make_model(choice, ProviderAccess.from_env(os.environ))


class TestOpenAISdk:
    """openai 3.x over httpx2: JSON, SSE, tool calls, retries."""

    def test_json_and_streaming_completion(self, wire: WireServer) -> None:
        """A completion and a streamed one carry the same kind of text and the usage."""
        client = openai.OpenAI()  # OPENAI_BASE_URL / OPENAI_API_KEY from the environment
        done = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert done.choices[0].message.content is not None
        assert "gpt-4o-mini" in done.choices[0].message.content
        assert done.usage is not None
        assert done.usage.total_tokens > 0
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o-mini",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text.startswith("Local model gpt-4o-mini")
        assert chunks[-1].usage is not None

    def test_tool_call(self, wire: WireServer) -> None:
        """A forced tool call returns arguments matching the schema."""
        tool = {"type": "function", "function": {"name": "Entry", "parameters": Entry.model_json_schema()}}
        client = openai.OpenAI()
        done = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "go"}],
            tools=[tool],  # type: ignore[list-item]
            tool_choice={"type": "function", "function": {"name": "Entry"}},
        )
        calls = done.choices[0].message.tool_calls
        assert calls is not None
        assert Entry.model_validate_json(calls[0].function.arguments)  # type: ignore[union-attr]

    def test_429_is_retried_and_exhaustion_raises(self, wire: WireServer) -> None:
        """Two 429s then an answer (3 requests); with one retry, two 500s surface as an API error."""
        wire.fail_next(429, 2)
        openai.OpenAI(max_retries=2).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert len(wire.requests) == 3
        wire.fail_next(500, 2)
        with pytest.raises(openai.InternalServerError):
            openai.OpenAI(max_retries=1).chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])


class TestAnthropicSdk:
    """anthropic 2.x over httpx2: JSON, SSE, tool use, retries."""

    def test_json_and_streaming_message(self, wire: WireServer) -> None:
        """A message and a streamed one; usage is reported."""
        client = anthropic.Anthropic()
        done = client.messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert done.content[0].type == "text"
        assert done.usage.output_tokens > 0
        with client.messages.stream(
            model="claude-haiku-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            assert stream.get_final_text().startswith("Local model claude-haiku-4-5")

    def test_tool_use_and_a_retried_429(self, wire: WireServer) -> None:
        """One 429 then a tool_use block whose input matches the schema."""
        wire.fail_next(429)
        done = anthropic.Anthropic(max_retries=2).messages.create(
            model="claude-haiku-4-5",
            max_tokens=50,
            messages=[{"role": "user", "content": "go"}],
            tools=[{"name": "Entry", "description": "entry", "input_schema": Entry.model_json_schema()}],  # type: ignore[list-item,typeddict-item]
            tool_choice={"type": "tool", "name": "Entry"},
        )
        block = done.content[0]
        assert block.type == "tool_use"
        assert Entry.model_validate(block.input)
        assert wire.paths() == ["/v1/messages", "/v1/messages"]


class TestLangChainClasses:
    """ChatOpenAI / ChatAnthropic built by make_model: temperature 0, invoke, stream, structured output."""

    @pytest.mark.parametrize("spec", ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"])
    def test_invoke_stream_and_structured_output(self, wire: WireServer, spec: str) -> None:
        """Text, streamed text and a validated structured suggestion; the request says temperature 0."""
        model = model_for(spec)
        assert "Local model" in str(model.invoke("hello").content)  # type: ignore[attr-defined]
        streamed = "".join(str(c.content) for c in model.stream("hello"))  # type: ignore[attr-defined]
        assert "Local model" in streamed
        entry = model.with_structured_output(Entry).invoke("suggest an entry")  # type: ignore[attr-defined]
        assert isinstance(entry, Entry)
        assert all(r["body"]["temperature"] == 0 for r in wire.requests)

    @pytest.mark.parametrize("spec", ["openai:gpt-4o-mini", "anthropic:claude-haiku-4-5"])
    def test_recorded_narration_replays_without_the_server(self, wire: WireServer, spec: str) -> None:
        """Rationale + suggestion (one malformed answer retried) recorded; the replay reproduces every record."""
        provider = spec.split(":", maxsplit=1)[0]
        params = model_parameters(provider)  # type: ignore[arg-type]

        def speaker(inner: object) -> Narrator:
            model = RecordingChatModel(inner=inner, model_id=spec, params=params, log=CallLog("finance"))
            narrator = Narrator(model, agent="finance", guard=ModelGuard("finance"), fallback=OfflineChatModel())
            narrator.at(datetime(2026, 1, 5, tzinfo=UTC))
            return narrator

        live = speaker(model_for(spec))
        wire.malformed_next(1)
        text = live.rationale("finance", FACTS)
        suggestion = live.suggest("finance", Entry, FACTS)
        records = live.drain()
        assert [type(r).__name__ for r in records] == ["ModelCalled", "ModelCalled", "ModelStopped", "ModelCalled"]
        assert isinstance(suggestion.value, Entry)
        assert not text.fallback
        system = wire.requests[0]["body"].get("system") or wire.requests[0]["body"]["messages"][0]["content"]
        assert "untrusted_data" in json.dumps(system)  # the instruction about data; no outside text in it
        replayed = speaker(replay_models(records)["finance"])
        assert replayed.rationale("finance", FACTS) == text
        assert replayed.suggest("finance", Entry, FACTS) == suggestion
        assert replayed.drain() == records

    def test_provider_errors_after_sdk_retries_are_recorded_and_fall_back(self, wire: WireServer) -> None:
        """500s beyond the SDK's retries: a recorded error call, a provider_error stop, the offline wording."""
        wire.fail_next(500, 3)  # make_model allows 2 SDK retries: 3 attempts, all failing
        model = RecordingChatModel(
            inner=model_for("openai:gpt-4o-mini"), model_id="openai:gpt-4o-mini", params={}, log=CallLog("ops")
        )
        narrator = Narrator(model, agent="ops", guard=ModelGuard("ops"), fallback=OfflineChatModel())
        text = narrator.rationale("ops", FACTS)
        call, stop = narrator.drain()
        assert isinstance(call, ModelCalled)
        assert call.status == "error"
        assert "Error code: 500" in (call.error or "")
        assert isinstance(stop, ModelStopped)
        assert stop.reason == "provider_error"
        assert text.fallback
        assert len(wire.requests) == 3
