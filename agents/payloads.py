"""The bases of typed observation data (world → agents) and agent-message data (agent → agent) that every pack's
payload models extend, and what every agent reads of the policy brief.

World data is read tolerantly (unknown keys ignored: the world may say more than an agent needs); the data
agents send each other is strict (extra keys forbidden), since the agents own both ends.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class WorldData(BaseModel):
    """Base of observation data: frozen, unknown keys ignored."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="ignore")


class AgentData(BaseModel):
    """Base of agent-message data: frozen and strict."""

    model_config = ConfigDict(defer_build=True, frozen=True, extra="forbid")


class Brief(WorldData):
    """What every agent reads of `policy.brief`: the claims it may and may not make (its words are checked against
    the banned ones). A pack's brief says more; its agents' memory reads it with the pack's own model."""

    approved_claims: list[str] = Field(default_factory=list)
    banned_claims: list[str] = Field(default_factory=list)
