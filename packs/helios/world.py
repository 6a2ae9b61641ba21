"""Helios's world behind the pack's WorldDecl port: built from the scenario's `world:` section within the
governing policy's price band, and opened day by day (the world model itself is coalition.scenarios.world)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING

from coalition.governance.policy import HardLimits
from coalition.scenarios.world import World, WorldSpec

if TYPE_CHECKING:
    from coalition.bus.messages import Observation
    from coalition.scenarios.spec import Scenario


def build(spec: WorldSpec, seed: int, limits: HardLimits) -> World:
    """Day 0 of the world, its price band the policy's (one band for governance, agents and KPIs)."""
    assert limits.pricing is not None  # Helios's policies are checked for it at load
    return World.from_spec(spec, seed, limits.pricing)


def open_day(
    world: World, scenario: Scenario, day: int, budget_limits: Mapping[str, Decimal | int | str] | None = None
) -> list[Observation]:
    """The day's `market.snapshot`, then its events (coalition.scenarios.events, imported only when a run opens a
    day: reading the pack's vocabulary loads no agent runtime)."""
    from coalition.scenarios.events import open_day as open_world_day

    return open_world_day(world, scenario, day, budget_limits)
