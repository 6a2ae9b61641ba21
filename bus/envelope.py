"""The envelope every message travels in: identity, provenance, causality and the typed payload."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from coalition.bus.message import Message, parse_payload


class Envelope(BaseModel):
    """One message on the bus. `id` is the identity used for deduplication (never the broker's entry id).

    Emitted by every producer; consumed by every consumer. `correlation_id` groups a whole causal story
    (e.g. one proposal and everything it led to); `causation_id` is the id of the envelope that caused this one.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=128)
    type: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=128)
    run_id: str = Field(min_length=1, max_length=128)
    superstep: int = Field(ge=0)
    sim_time: datetime
    correlation_id: str = Field(min_length=1, max_length=128)
    causation_id: str | None = Field(default=None, max_length=128)
    payload: SerializeAsAny[Message]
    # the producer's Ed25519 signature over every other field (coalition.bus.signing); `source` names the signer
    signature: str | None = Field(default=None, max_length=4096)

    @model_validator(mode="before")
    @classmethod
    def _typed_payload(cls, data: Any) -> Any:
        if isinstance(data, dict) and "type" in data and "payload" in data:
            data = dict(data)
            data["payload"] = parse_payload(str(data["type"]), data["payload"])
        return data

    @model_validator(mode="after")
    def _type_matches_payload(self) -> Envelope:
        if self.type != self.payload.TYPE:
            raise ValueError(f"envelope type {self.type!r} does not match payload type {self.payload.TYPE!r}")
        if self.sim_time.tzinfo is None:
            raise ValueError("sim_time must be timezone-aware")
        return self

    @classmethod
    def wrap(
        cls,
        message: Message,
        *,
        id: str,
        source: str,
        run_id: str,
        superstep: int,
        sim_time: datetime,
        correlation_id: str | None = None,
        causation_id: str | None = None,
    ) -> Envelope:
        return cls(
            id=id,
            type=message.TYPE,
            source=source,
            run_id=run_id,
            superstep=superstep,
            sim_time=sim_time,
            correlation_id=correlation_id or id,
            causation_id=causation_id,
            payload=message,
        )
