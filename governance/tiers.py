"""Approval tiers in the policy: after governance's verdict, how much human attention an action gets.

```yaml
tiers:
  actions:
    refund_order: {tier: sampled, rate: 0.25}
    freeze_account: {tier: always-human, gate: incident_severity}
  agents:
    marketing: {notify_customers: {tier: sampled, rate: 1}}
```

- `auto` (the default, and every action the section does not name): governance's verdict stands;
- `sampled`: a seeded, recorded sample of the *allowed* proposals (a share `rate` in (0, 1]) goes to a review queue
  after the fact; the action still executes. Whether a proposal is drawn depends only on the run's seed and the
  proposal id (`sample_draw`), so a resume or a replay draws the same ones;
- `always-human`: every proposal of the action that governance would allow escalates through `gate` (a decision
  gate or high-impact tool: its approver roles, quorum and expiry), the same path as any escalation. A deny stays
  a deny; an escalation stays one.

`agents.<agent>.<action>` overrides `actions.<action>` for that agent.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

TierName = Literal["auto", "sampled", "always-human"]
AUTO: TierName = "auto"
SAMPLED: TierName = "sampled"
ALWAYS_HUMAN: TierName = "always-human"
SAMPLE_RULE = "tier.sampled"
HUMAN_RULE = "tier.always_human"


class ActionTier(BaseModel):
    """One action's tier: `sampled` names its rate, `always-human` its gate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tier: TierName = AUTO
    rate: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    gate: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"tier": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _fields_of_the_tier(self) -> ActionTier:
        if self.tier == SAMPLED and self.rate is None:
            raise ValueError("a sampled tier names its rate, a share in (0, 1] (e.g. rate: 0.1)")
        if self.tier != SAMPLED and self.rate is not None:
            raise ValueError(f"rate applies to the sampled tier only, not {self.tier}")
        if self.tier == ALWAYS_HUMAN and self.gate is None:
            raise ValueError(
                "an always-human tier names the gate whose approvers decide (e.g. gate: capital_commitment)"
            )
        if self.tier != ALWAYS_HUMAN and self.gate is not None:
            raise ValueError(f"gate applies to the always-human tier only, not {self.tier}")
        return self


AUTO_TIER = ActionTier()


class Tiers(BaseModel):
    """Tiers per action, and per agent × action (which wins for that agent)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    actions: dict[str, ActionTier] = Field(default_factory=dict)
    agents: dict[str, dict[str, ActionTier]] = Field(default_factory=dict)

    def of(self, agent: str, action: str) -> ActionTier:
        by_agent = self.agents.get(agent)
        if by_agent is not None and action in by_agent:
            return by_agent[action]
        return self.actions.get(action, AUTO_TIER)

    @property
    def empty(self) -> bool:
        return not self.actions and not self.agents

    def named(self) -> list[tuple[str, str | None, str, ActionTier]]:
        """(where in the policy, agent or None, action, tier) for every tier the section names."""
        out: list[tuple[str, str | None, str, ActionTier]] = [
            (f"tiers.actions.{action}", None, action, tier) for action, tier in self.actions.items()
        ]
        for agent, by_action in self.agents.items():
            out.extend((f"tiers.agents.{agent}.{action}", agent, action, tier) for action, tier in by_action.items())
        return out

    def human_actions(self) -> frozenset[str]:
        return frozenset(action for _, _, action, tier in self.named() if tier.tier == ALWAYS_HUMAN)


def sample_draw(seed: int | str, proposal_id: str) -> float:
    """A number in [0, 1) fixed by the run's seed and the proposal id (sha256; no random): sampled when < rate."""
    digest = hashlib.sha256(f"coalition review sample v1\x1f{seed}\x1f{proposal_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
