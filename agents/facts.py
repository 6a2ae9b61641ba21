"""What an engine decided, as facts for the language step: the engine decides, the narrator only words it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Intent = Literal["propose", "inform", "request", "review", "notify"]


class Facts(BaseModel):
    """A decision in structured form: the verb phrase, why, the figures behind it and the rules in play."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    intent: Intent
    decision: str = Field(min_length=1)  # a verb phrase, e.g. "credit account A-17 25.00 USD"
    reasons: list[str] = Field(default_factory=list)
    figures: dict[str, str] = Field(default_factory=dict)
    rules: list[str] = Field(default_factory=list)
