"""A drill for the billing-desk pack's scenarios: the pack's real agents (LangGraph graphs narrated by the offline
model) and its real handlers, day by day, with every proposal allowed and applied.

It checks what the pack decides (the eligibility tables through the agents) and what its actions do to its world.
It is not a governed run: governance's limits and gates are not applied here (see docs/packs.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from coalition.agents.base import AgentStepContext
from coalition.agents.narrator import Narrator
from coalition.agents.testing import Envelopes
from coalition.agents.voices import offline_model
from coalition.bus import topics
from coalition.bus.clock import IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionExecuted, ActionProposed, AgentMessage, Observation
from coalition.domain import ActionContext, ActionRefused
from coalition.packs.billing_desk import PACK
from coalition.packs.billing_desk.world import Desk, DeskSpec

SCENARIOS = Path(str(PACK.scenarios))


@dataclass
class Drill:
    proposals: list[ActionProposed]
    executions: list[ActionExecuted]
    desk: Desk
    control: list[Any]  # what the agents sent the recorder: model calls, screening verdicts


def drill(doc: dict[str, Any], *, max_steps: int = 30) -> Drill:
    seed = int(doc["seed"])
    desk = Desk.from_spec(DeskSpec.model_validate(doc["world"]))
    agents = {d.name: d.builder()(Narrator(offline_model(d.name, seed), agent=d.name)) for d in PACK.agents}
    ids = {name: IdFactory(str(seed), f"agent:{name}") for name in agents}
    envelopes = Envelopes(run_id=f"drill-{doc['name']}", seed=str(seed))
    proposals: list[ActionProposed] = []
    executions: list[ActionExecuted] = []
    control: list[Any] = []
    superstep = 0
    for day in range(int(doc["days"])):
        desk.advance_day(day)
        inbox: list[Envelope] = [envelopes.observation("accounts.snapshot", desk.snapshot(), to=list(agents))]
        for event in doc.get("events", []):
            if event["day"] == day:
                inbox.append(
                    envelopes.observation(event["kind"], event["data"], to=list(agents), text=event.get("text"))
                )
        steps = 0
        while inbox:
            steps += 1
            assert steps <= max_steps, f"day {day} does not settle"
            superstep += 1
            sim_time = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day, minutes=superstep)
            out: list[Envelope] = []
            for name, agent in agents.items():
                ctx = AgentStepContext(agent=name, superstep=superstep, sim_time=sim_time, ids=ids[name])
                result = agent.run(inbox, ctx)
                assert not result.rejected, [r.reason for r in result.rejected]
                for outgoing in result.messages:
                    message = outgoing.message
                    if outgoing.topic == topics.CONTROL:
                        control.append(message)
                    elif isinstance(message, ActionProposed):
                        proposals.append(message)
                        out.append(envelopes.verdict(message, "allow"))
                        out.append(_execute(desk, message, envelopes, executions))
                    elif isinstance(message, AgentMessage | Observation):
                        out.append(envelopes.wrap(message, source=f"agent:{name}"))
            inbox = out
    return Drill(proposals, executions, desk, control)


def _execute(desk: Desk, proposal: ActionProposed, envelopes: Envelopes, executions: list[ActionExecuted]) -> Envelope:
    action = PACK.action(proposal.action)
    assert action is not None, proposal.action
    try:
        action.handler(desk, action.parse(proposal.args), ActionContext(proposal.agent, proposal.proposal_id, desk.day))
        status = "applied"
    except ActionRefused:
        status = "failed"
    envelope = envelopes.execution(proposal, status)  # type: ignore[arg-type]
    assert isinstance(envelope.payload, ActionExecuted)
    executions.append(envelope.payload)
    return envelope


def load(name: str) -> dict[str, Any]:
    doc = yaml.safe_load((SCENARIOS / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(doc, dict)
    return doc


def matches(proposal: ActionProposed, match: dict[str, Any]) -> bool:
    if match.get("action") not in (None, proposal.action):
        return False
    for key, wanted in (match.get("args") or {}).items():
        got = proposal.args.get(key)
        if isinstance(wanted, int | float) and not isinstance(wanted, bool):
            if not isinstance(got, int | float) or float(got) != float(wanted):
                return False
        elif got != wanted:
            return False
    return True
