"""What Helios's world knows of a scenario's events, checked when the file loads (WorldDecl.check_event): a region
an event names is one of the world's, and a billing dispute names a kind the rules cover, a channel Helios answers
on and a customer the world has. Each problem is a Problem at its path inside the event."""

from __future__ import annotations

from typing import Any

from coalition.packs.helios.payloads import DISPUTE_KINDS
from coalition.packs.helios.world import WorldSpec
from coalition.scenarios.errors import Problem

# ASSUMPTION: the channels a billing dispute arrives through (the seed's CX C1 names channels, not a list).
DISPUTE_CHANNELS = ("phone", "chat", "email", "app")


def check_event(world: WorldSpec, event: Any) -> None:
    """One scheduled event against the world it happens to (a Problem with its path inside the event)."""
    regions = {r.code for r in world.regions}
    region = event.data.get("region")
    if region is not None and region not in regions:
        raise Problem(f"unknown region {region!r} (the world has {', '.join(sorted(regions))})", ("data", "region"))
    if event.kind == "dispute":
        _check_dispute(event.data, world)


def _check_dispute(data: Any, world: WorldSpec) -> None:
    kind = data.get("kind")
    if kind not in DISPUTE_KINDS:
        raise Problem(f"unknown dispute kind {kind!r} (kinds: {', '.join(DISPUTE_KINDS)})", ("data", "kind"))
    channel = data.get("channel")
    if channel not in DISPUTE_CHANNELS:
        raise Problem(f"unknown channel {channel!r} (channels: {', '.join(DISPUTE_CHANNELS)})", ("data", "channel"))
    customer = str(data.get("customer_id"))
    if customer not in world_customer_ids(world):
        raise Problem(
            f"no customer {customer!r} in the world (ids look like TX-B0001 or CA-P0003)", ("data", "customer_id")
        )


def world_customer_ids(world: WorldSpec) -> set[str]:
    """The ids of the customers the world generates (as world._customers names them)."""
    ids: set[str] = set()
    for region in world.regions:
        producers = region.producers if region.producers is not None else world.producers_per_region
        buyers = region.buyers if region.buyers is not None else world.buyers_per_region
        ids.update(f"{region.code}-P{n:04d}" for n in range(1, producers + 1))
        ids.update(f"{region.code}-B{n:04d}" for n in range(1, buyers + 1))
    return ids
