"""Turning a scenario day into observations: the world's daily `market.snapshot`, then the day's scheduled
events (after their physical effect on the world), each with the evidence id agents cite."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from coalition.agents.payloads import MeterOutage
from coalition.bus.canonical import content_hash
from coalition.bus.messages import Observation
from coalition.scenarios.errors import WorldError
from coalition.scenarios.spec import Scenario, ScheduledEvent, observation_kinds
from coalition.scenarios.world import World


def make_observation(
    kind: str, *, subject: str = "", to: list[str] | None = None, data: dict[str, Any], text: str | None = None
) -> Observation:
    """An observation with its evidence id = content_hash({kind, subject, data, text}) (docs/design.md)."""
    recipients = list(to) if to is not None else list(observation_kinds()[kind])
    evidence_id = content_hash({"kind": kind, "subject": subject, "data": data, "text": text})
    return Observation(kind=kind, subject=subject, to=recipients, data=data, text=text, evidence_id=evidence_id)


def snapshot_observation(world: World, budget_limits: Mapping[str, Decimal | int | str] | None = None) -> Observation:
    """Today's `market.snapshot` for all five agents."""
    return make_observation(
        "market.snapshot", subject=f"day-{world.day}", data=world.market_snapshot_data(budget_limits)
    )


def event_observation(world: World, event: ScheduledEvent) -> Observation:
    """A scheduled event as an observation; a meter outage without a customer list gets the world's."""
    data = dict(event.data)
    if event.kind == "meter.outage" and "customers" not in data:
        outage = MeterOutage.model_validate(data)  # validated at load time: the agents' reading of it
        data["customers"] = world.outage_customers(outage.region, outage.meters_down, outage.hours)
    document = event.document
    if document is None:
        return make_observation(event.kind, subject=event.subject, to=event.recipients, data=data, text=event.text)
    observation = make_observation(
        event.kind, subject=event.subject, to=event.recipients, data=data, text=document.text
    )
    about = {"kind": document.kind, "title": document.title, "sender": document.sender}
    return observation.model_copy(update={"document": about})


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
