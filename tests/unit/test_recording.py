"""Every paid call is recorded (hashes, answer, tokens, cost) and a replay answers from the records alone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from pydantic import BaseModel

from coalition.agents.errors import ReplayMiss
from coalition.agents.facts import Facts
from coalition.agents.model_budget import ModelGuard
from coalition.agents.narrator import Narrator
from coalition.agents.offline_model import OfflineChatModel
from coalition.agents.recording import (
    CallLog,
    ProviderCallFailed,
    RecordingChatModel,
    ReplayChatModel,
    replay_models,
)
from coalition.agents.testing import ScriptedModel
from coalition.bus.message import Message
from coalition.bus.messages import ModelCalled, ModelStopped

pytestmark = pytest.mark.unit

MODEL = "openai:gpt-4o-mini"
PARAMS = {"temperature": 0, "max_tokens": 200}
FACTS = Facts(intent="propose", decision="set the TX price to 61.20 USD/MWh", reasons=["demand rose 8%"])
NOW = datetime(2026, 1, 5, tzinfo=UTC)


class Copy(BaseModel):
    """A structured suggestion used by the tests."""

    message: str
    urgent: bool


def recording(inner: object, agent: str = "finance") -> RecordingChatModel:
    return RecordingChatModel(inner=inner, model_id=MODEL, params=PARAMS, log=CallLog(agent))


def narrator(inner: object, agent: str = "finance") -> Narrator:
    model = recording(inner, agent)
    speaker = Narrator(model, agent=agent, guard=ModelGuard(agent), fallback=OfflineChatModel())
    speaker.at(NOW)
    return speaker


class TestRecording:
    """What a call leaves behind."""

    def test_a_call_records_model_params_hashes_answer_tokens_and_cost(self) -> None:
        """One ModelCalled per call, with usage priced from the table and the answer's content."""
        speaker = narrator(ScriptedModel(responses=["The price follows demand."]))
        text = speaker.rationale("finance", FACTS)
        (call,) = speaker.drain()
        assert isinstance(call, ModelCalled)
        assert (call.model_id, call.params, call.purpose, call.status) == (MODEL, PARAMS, "rationale", "ok")
        assert call.response["content"] == "The price follows demand."
        assert call.input_tokens > 0
        assert call.output_tokens > 0
        assert float(call.cost_usd) > 0
        assert text.text == "The price follows demand."
        assert text.calls == (call.call_id,)
        assert text.trace().prompt_hash == call.prompt_hash
        assert not text.fallback

    def test_request_hash_covers_params_and_tools(self) -> None:
        """Same messages with other parameters or tools hash differently."""
        messages = [SystemMessage(content="s"), HumanMessage(content="h")]
        a = recording(OfflineChatModel())
        a.invoke(messages)
        b = RecordingChatModel(inner=OfflineChatModel(), model_id=MODEL, params={"temperature": 1}, log=CallLog("x"))
        b.invoke(messages)
        c = recording(OfflineChatModel())
        c.with_structured_output(Copy).invoke(messages)
        hashes = {m.log.drain()[0].request_hash for m in (a, b, c)}
        assert len(hashes) == 3

    def test_a_provider_error_is_recorded_and_raised_as_provider_call_failed(self) -> None:
        """The inner model raises: the record says error with the exception's first line."""
        model = recording(ScriptedModel(responses=[]))
        with pytest.raises(ProviderCallFailed, match="ScriptExhausted"):
            model.invoke("hello")
        (call,) = model.log.drain()
        assert call.status == "error"
        assert call.error is not None
        assert call.error.startswith("ScriptExhausted:")


class TestReplay:
    """Answers come back from the records, by request hash, without the provider."""

    def test_replay_gives_identical_records_and_texts(self) -> None:
        """Rationale, copy and a structured suggestion replayed: same texts, same ModelCalled messages."""
        tool = AIMessage(
            content="", tool_calls=[{"name": "Copy", "args": {"message": "Hi", "urgent": False}, "id": "c1"}]
        )
        original = narrator(ScriptedModel(responses=["Because demand rose.", "Dear customers, prices change.", tool]))
        texts = [original.rationale("finance", FACTS).text, original.copy("finance", FACTS, audience="buyers").text]
        suggestion = original.suggest("finance", Copy, FACTS)
        records = original.drain()
        replayed = narrator(replay_models(records)["finance"])
        again = [replayed.rationale("finance", FACTS).text, replayed.copy("finance", FACTS, audience="buyers").text]
        assert again == texts
        assert replayed.suggest("finance", Copy, FACTS).value == suggestion.value == Copy(message="Hi", urgent=False)
        assert replayed.drain() == records

    def test_a_request_the_recording_never_saw_is_a_replay_miss(self) -> None:
        """Divergence is loud: ReplayMiss names the agent and the request hash."""
        original = narrator(ScriptedModel(responses=["Because demand rose."]))
        original.rationale("finance", FACTS)
        replayed = narrator(replay_models(original.drain())["finance"])
        other = Facts(intent="propose", decision="set the TX price to 99 USD/MWh")
        with pytest.raises(ReplayMiss, match="agent:finance: no recorded model answer"):
            replayed.rationale("finance", other)

    def test_a_recorded_failure_replays_as_the_same_fallback(self) -> None:
        """The original call failed and fell back; the replay fails the same way and records the same."""
        original = narrator(ScriptedModel(responses=[]))
        first = original.rationale("finance", FACTS)
        records = original.drain()
        assert [type(r) for r in records] == [ModelCalled, ModelStopped]
        assert first.fallback
        replayed = narrator(replay_models(records)["finance"])
        assert replayed.rationale("finance", FACTS) == first
        assert replayed.drain() == records


class TestFallThrough:
    """Resuming a run: recorded requests are answered from the records, only the others reach the live model."""

    @staticmethod
    def resumed(records: list[Message], live: ScriptedModel) -> Narrator:
        recorded = replay_models(records).get("finance")
        answers = recorded.answers if recorded is not None else {}
        return narrator(ReplayChatModel(agent="finance", model_id=MODEL, params=PARAMS, answers=answers, live=live))

    def test_recorded_requests_skip_the_live_model_and_new_ones_reach_it(self) -> None:
        """The recorded rationale comes back without a live call; an unrecorded one is the live model's answer."""
        original = narrator(ScriptedModel(responses=["Because demand rose."]))
        first = original.rationale("finance", FACTS)
        records = original.drain()
        live = ScriptedModel(responses=["Because the reserve is thin."])
        speaker = self.resumed(records, live)
        assert speaker.rationale("finance", FACTS) == first
        assert live.calls == []
        other = Facts(intent="propose", decision="set the TX price to 99 USD/MWh")
        assert speaker.rationale("finance", other).text == "Because the reserve is thin."
        assert len(live.calls) == 1
        replayed, new = speaker.drain()
        assert replayed == records[0]
        assert isinstance(new, ModelCalled)
        assert new.response["content"] == "Because the reserve is thin."

    def test_a_structured_request_falls_through_with_its_tools(self) -> None:
        """with_structured_output on a miss: the live model is bound to the same tool and its answer parsed."""
        tool = AIMessage(
            content="", tool_calls=[{"name": "Copy", "args": {"message": "Hi", "urgent": True}, "id": "c1"}]
        )
        live = ScriptedModel(responses=[tool])
        suggestion = self.resumed([], live).suggest("finance", Copy, FACTS)
        assert suggestion.value == Copy(message="Hi", urgent=True)
        assert len(live.calls) == 1

    def test_a_live_failure_on_a_miss_is_recorded_like_any_provider_failure(self) -> None:
        """The live model fails: an error record and the engine's wording, as in an uninterrupted run."""
        speaker = self.resumed([], ScriptedModel(responses=[]))
        text = speaker.rationale("finance", FACTS)
        assert text.fallback
        call = next(r for r in speaker.drain() if isinstance(r, ModelCalled))
        assert call.status == "error"
        assert call.error is not None
        assert call.error.startswith("ScriptExhausted:")


class TestMalformed:
    """Malformed output is retried once, then the engine's own wording / no suggestion is used."""

    def test_malformed_suggestion_retries_then_gives_none_with_stops_recorded(self) -> None:
        """Two answers without valid arguments: two calls, two 'malformed' stops, value None."""
        bad = AIMessage(content="", tool_calls=[{"name": "Copy", "args": {"unexpected": 1}, "id": "c1"}])
        speaker = narrator(ScriptedModel(responses=[bad, bad]))
        suggestion = speaker.suggest("finance", Copy, FACTS)
        records = speaker.drain()
        assert suggestion.value is None
        assert suggestion.trace.fallback
        assert len(suggestion.calls) == 2
        stops = [r for r in records if isinstance(r, ModelStopped)]
        assert [s.reason for s in stops] == ["malformed", "malformed"]

    def test_malformed_then_good_uses_the_retry(self) -> None:
        """A bad first answer and a good second one: the suggestion is the second."""
        bad = AIMessage(content="no tool call at all")
        good = AIMessage(
            content="", tool_calls=[{"name": "Copy", "args": {"message": "ok", "urgent": True}, "id": "c2"}]
        )
        suggestion = narrator(ScriptedModel(responses=[bad, good])).suggest("finance", Copy, FACTS)
        assert suggestion.value == Copy(message="ok", urgent=True)

    def test_empty_text_twice_falls_back_to_the_offline_wording(self) -> None:
        """A paid model that says nothing: the offline model words the facts, marked as fallback."""
        speaker = narrator(ScriptedModel(responses=["", "  "]))
        text = speaker.rationale("finance", FACTS)
        offline = Narrator(OfflineChatModel()).rationale("finance", FACTS)
        assert text.fallback
        assert text.text == offline.text
        assert text.model_id == offline.model_id
