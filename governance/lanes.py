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
- `assistive`: the model drafts the proposal the same way; governance escalates the draft as gate
  `draft_review` to a person holding one of `reviewers` (within `review_hours`), who adopts it, amends its
  arguments (within the action's schema) or drops it. Only what the person adopted is then evaluated, as a
  final proposal that names the draft; governance still disposes (an amended draft over a limit is denied).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from coalition.bus.message import is_none

Lane = Literal["transactional", "autonomous", "assistive"]
TRANSACTIONAL: Lane = "transactional"
AUTONOMOUS: Lane = "autonomous"
ASSISTIVE: Lane = "assistive"
DRAFT_REVIEW = "draft_review"  # the gate an assistive draft is escalated at
# An agent's request for more model budget is the engine's (its amounts are the shortfall, never a model's): it is
# in no model lane whatever the section says.
ENGINE_ONLY = frozenset({"request_model_budget"})
MAX_ROUNDS = 8


class AgentLane(BaseModel):
    """One agent's lane, optionally a different lane per action."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lane: Lane = TRANSACTIONAL
    actions: dict[str, Lane] = Field(default_factory=dict)
    rounds: int = Field(default=3, ge=1, le=MAX_ROUNDS)
    # assistive: the roles that may adopt, amend or drop a draft (default board), and the hours a draft waits
    # for them before it expires, i.e. is dropped (default 24). Unset, they are not in the policy's content, so
    # a policy written before the assistive lane keeps its version.
    reviewers: tuple[str, ...] | None = Field(default=None, min_length=1, exclude_if=is_none)
    review_hours: int | None = Field(default=None, ge=1, le=24 * 30, exclude_if=is_none)

    @property
    def review_roles(self) -> tuple[str, ...]:
        return self.reviewers or ("board",)

    @property
    def review_after(self) -> timedelta:
        return timedelta(hours=self.review_hours or 24)

    def lane_of(self, action: str) -> Lane:
        return TRANSACTIONAL if action in ENGINE_ONLY else self.actions.get(action, self.lane)

    @property
    def any_model_lane(self) -> bool:
        return self.lane != TRANSACTIONAL or any(lane != TRANSACTIONAL for lane in self.actions.values())
