"""Test doubles that ship with the package: a chat model that answers from a script, and an envelope builder."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.messages.ai import UsageMetadata
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr

from coalition.agents.chat import ToolBindingChatModel
from coalition.agents.errors import ScriptExhausted
from coalition.agents.offline_model import estimate_tokens
from coalition.bus.canonical import content_hash
from coalition.bus.clock import IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.message import Message
from coalition.bus.messages import (
    ActionExecuted,
    ActionProposed,
    AgentMessage,
    EscalationResolved,
    Observation,
    VerdictIssued,
)


class ScriptedModel(ToolBindingChatModel):
    """Returns its scripted responses one per call, in order; records every prompt it was sent.

    A response is a string (the answer's text) or a ready AIMessage (e.g. one with tool_calls, to script
    `with_structured_output`). Running out of script raises ScriptExhausted rather than inventing text.
    """

    responses: list[str | AIMessage]
    model_id: str = "scripted:test"
    _calls: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_id": self.model_id, "responses": len(self.responses)}

    @property
    def calls(self) -> list[list[BaseMessage]]:
        """The messages of every call so far, oldest first."""
        return list(self._calls)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        self._calls.append(list(messages))
        index = len(self._calls) - 1
        if index >= len(self.responses):
            raise ScriptExhausted(len(self._calls), len(self.responses))
        scripted = self.responses[index]
        message = scripted.model_copy() if isinstance(scripted, AIMessage) else AIMessage(content=scripted)
        if message.usage_metadata is None:
            prompt = sum(estimate_tokens(str(m.content)) for m in messages)
            answer = estimate_tokens(str(message.content))
            message.usage_metadata = UsageMetadata(
                input_tokens=prompt, output_tokens=answer, total_tokens=prompt + answer
            )
        message.response_metadata = {**message.response_metadata, "model_name": self.model_id}
        return ChatResult(generations=[ChatGeneration(message=message)])


class Envelopes:
    """Builds the envelopes an agent receives (observations, messages, verdicts…) for tests and benchmarks.

    Ids come from an IdFactory namespace of their own ("test:<source>"), so they never collide with an agent's.
    """

    def __init__(self, *, run_id: str = "test-run", seed: str = "test", sim_time: datetime | None = None) -> None:
        self.run_id = run_id
        self.sim_time = sim_time or datetime(2026, 1, 5, tzinfo=UTC)
        self._ids = IdFactory(seed, "test")

    def wrap(self, message: Message, *, source: str, superstep: int = 0, correlation_id: str | None = None) -> Envelope:
        return Envelope.wrap(
            message,
            id=self._ids.new(),
            source=source,
            run_id=self.run_id,
            superstep=superstep,
            sim_time=self.sim_time,
            correlation_id=correlation_id,
        )

    def observation(
        self, kind: str, data: dict[str, Any], to: Sequence[str], *, text: str | None = None, superstep: int = 0
    ) -> Envelope:
        body = {"kind": kind, "subject": "", "data": data, "text": text}
        message = Observation(kind=kind, to=list(to), data=data, text=text, evidence_id=content_hash(body))
        return self.wrap(message, source="world", superstep=superstep)

    def message(
        self, sender: str, kind: str, data: dict[str, Any], to: Sequence[str], *, superstep: int = 0
    ) -> Envelope:
        message = AgentMessage(sender=sender, to=list(to), kind=kind, summary=f"{kind} from {sender}", data=data)
        return self.wrap(message, source=f"agent:{sender}", superstep=superstep)

    def verdict(
        self,
        proposal: ActionProposed,
        outcome: Literal["allow", "deny", "escalate"],
        *,
        reasons: Sequence[str] = ("decided by the test",),
        rule_ids: Sequence[str] = (),
        gate: str | None = None,
        superstep: int = 0,
        correlation_id: str | None = None,
    ) -> Envelope:
        message = VerdictIssued(
            proposal_id=proposal.proposal_id,
            proposal_hash=proposal.proposal_hash,
            agent=proposal.agent,
            action=proposal.action,
            outcome=outcome,
            reasons=list(reasons),
            rule_ids=list(rule_ids),
            gate=gate,
            policy_version="test-policy",
        )
        return self.wrap(message, source="governance", superstep=superstep, correlation_id=correlation_id)

    def resolution(
        self, proposal: ActionProposed, outcome: Literal["approved", "rejected", "expired"], *, superstep: int = 0
    ) -> Envelope:
        message = EscalationResolved(
            proposal_id=proposal.proposal_id,
            proposal_hash=proposal.proposal_hash,
            outcome=outcome,
            reason=f"{outcome} by the test",
        )
        return self.wrap(message, source="governance", superstep=superstep)

    def execution(
        self, proposal: ActionProposed, status: Literal["applied", "duplicate", "failed"], *, superstep: int = 0
    ) -> Envelope:
        message = ActionExecuted(
            authorization_id=f"auth-{proposal.proposal_id}",
            proposal_id=proposal.proposal_id,
            agent=proposal.agent,
            action=proposal.action,
            idempotency_key=proposal.proposal_hash,
            status=status,
            detail=f"{status} by the test",
        )
        return self.wrap(message, source="executor", superstep=superstep)
