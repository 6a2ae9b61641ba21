"""The billing desk's day behind the pack's WorldDecl port, and what the desk's policy adds to governance's: the
day opens with the `accounts.snapshot` then the day's cases and outages; the `policy.brief` carries the policy's
limits and eligibility tables (so a run under another policy file decides by its tables); a policy's
`eligibility:` section is compiled when the policy loads (a bad table is one line, before anything runs)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from coalition.bus.messages import Observation
from coalition.domain import SectionProblem
from coalition.governance.policy import Policy
from coalition.packs.billing_desk.rules import Eligibility, PolicyProblem
from coalition.packs.billing_desk.world import Desk

if TYPE_CHECKING:
    from coalition.scenarios.spec import Scenario

DESK_AGENTS = ("billing", "retention", "outreach")


def open_day(
    desk: Desk, scenario: Scenario, day: int, budget_limits: Mapping[str, Decimal | int | str] | None = None
) -> list[Observation]:
    """Move the desk to `day`; the snapshot of every account, then today's events in file order."""
    from coalition.scenarios.events import event_observation, make_observation  # only when a run opens a day

    desk.advance_day(day)
    snapshot = make_observation("accounts.snapshot", subject=f"day-{day}", to=list(DESK_AGENTS), data=desk.snapshot())
    events = [event_observation(e) for e in scenario.events_on(day)]
    return [snapshot, *events]


def brief(policy: Policy) -> dict[str, Any]:
    """The policy's limits and eligibility tables as written (numbers as numbers: the tables compare them)."""
    document = policy.document
    return {"limits": document.get("limits", {}), "eligibility": document.get("eligibility", {})}


def check_policy(document: Mapping[str, Any]) -> None:
    """The eligibility tables compile against the policy's limits; SectionProblem names the first that does not."""
    try:
        Eligibility.from_policy(document, "policy")
    except PolicyProblem as exc:
        raise SectionProblem(exc.where, exc.reason) from None
