"""Autonomy lanes in the policy: who chooses an agent's actions — its engine (transactional) or its model.

```yaml
lanes:
  finance: {lane: autonomous, rounds: 3, actions: {commit_capital: transactional}}
  marketing: {lane: autonomous}
```

- `transactional` (the default, and every agent or action the section does not name): the engine decides, the
  model words it;
- `autonomous`: the model chooses the action and its arguments by tool calling over the actions the policy
  permits the agent, with the engine's decision offered as a read-only tool; governance disposes as always.
  `rounds` bounds the tool calls of one choice (a refused call is returned to the model to revise).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Lane = Literal["transactional", "autonomous"]
TRANSACTIONAL: Lane = "transactional"
AUTONOMOUS: Lane = "autonomous"
MAX_ROUNDS = 8


class AgentLane(BaseModel):
    """One agent's lane, optionally a different lane per action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane: Lane = TRANSACTIONAL
    actions: dict[str, Lane] = Field(default_factory=dict)
    rounds: int = Field(default=3, ge=1, le=MAX_ROUNDS)

    def lane_of(self, action: str) -> Lane:
        return self.actions.get(action, self.lane)

    @property
    def any_autonomous(self) -> bool:
        return self.lane == AUTONOMOUS or AUTONOMOUS in self.actions.values()
