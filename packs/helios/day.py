"""Helios's world behind the pack's WorldDecl port: built from the scenario's `world:` section within the
governing policy's price band, and opened day by day — the world's daily `market.snapshot`, then the day's
scheduled events (after their physical effect on the world)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from coalition.governance.policy import HardLimits
from coalition.packs.helios.policy_model import HeliosLimits
from coalition.packs.helios.world import World, WorldSpec
from coalition.scenarios.errors import WorldError

if TYPE_CHECKING:
    from coalition.bus.messages import Observation
    from coalition.scenarios.spec import Scenario, ScheduledEvent


def build(spec: WorldSpec, seed: int, limits: HardLimits) -> World:
    """Day 0 of the world, its price band the policy's (one band for governance, agents and KPIs)."""
    assert isinstance(limits, HeliosLimits)  # a Helios policy's limits are validated with Helios's model
    assert limits.pricing is not None  # Helios's policies are checked for it at load
    return World.from_spec(spec, seed, limits.pricing)


def snapshot_observation(world: World, budget_limits: Mapping[str, Decimal | int | str] | None = None) -> Observation:
    """Today's `market.snapshot` for all five agents."""
    from coalition.scenarios.events import make_observation  # only when a run opens a day (no agent runtime before)

    return make_observation(
        "market.snapshot", subject=f"day-{world.day}", data=world.market_snapshot_data(budget_limits)
    )


def event_observation(world: World, event: ScheduledEvent) -> Observation:
    """A scheduled event as an observation; a meter outage without a customer list gets the world's."""
    from coalition.packs.helios.payloads import MeterOutage
    from coalition.scenarios.events import event_observation as observation_of

    data = dict(event.data)
    if event.kind == "meter.outage" and "customers" not in data:
        outage = MeterOutage.model_validate(data)  # validated at load time: the agents' reading of it
        data["customers"] = world.outage_customers(outage.region, outage.meters_down, outage.hours)
    return observation_of(event, data)


def open_day(
    world: World, scenario: Scenario, day: int, budget_limits: Mapping[str, Decimal | int | str] | None = None
) -> list[Observation]:
    """Move the world to `day` (trading the days in between), apply today's outside events, and return the
    snapshot followed by today's event observations in file order. Each day opens once."""
    if day <= world.state.opened_through:
        raise WorldError(f"day {day} was already opened (the world has opened days up to {world.state.opened_through})")
    if day > scenario.last_day:
        raise WorldError(f"day {day} is after the scenario's last day ({scenario.last_day})")
    world.advance_day(day)
    events = [event_observation(world, e) for e in scenario.events_on(day)]
    for observation in events:
        world.apply_event(observation.kind, observation.data)
    world.state.opened_through = day
    return [snapshot_observation(world, budget_limits), *events]
