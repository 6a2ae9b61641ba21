"""The agent runtime over the in-memory bus: filtering, canonical order, envelopes, acks, dead letters."""

from __future__ import annotations

from typing import Any

import pytest

from coalition.agents import AgentRuntime, build_agents
from coalition.agents.inbox import canonical_order
from coalition.agents.testing import Envelopes
from coalition.bus import topics
from coalition.bus.base import Delivery
from coalition.bus.clock import IdFactory
from coalition.bus.envelope import Envelope
from coalition.bus.memory import MemoryBus
from coalition.bus.messages import ActionProposed, AgentMessage, DeadLettered

pytestmark = pytest.mark.unit

SNAPSHOT: dict[str, Any] = {"prices": {"TX": {"price": 60, "base_price": 60}}}
SHOCK: dict[str, Any] = {"region": "TX", "supply_change_pct": -18}


def _published(bus: MemoryBus, topic: str) -> list[Envelope]:
    return [d.envelope for d in bus.range(topic) if d.envelope is not None]


@pytest.fixture(params=[False, True], ids=["objects", "wire"])
def bus(request: pytest.FixtureRequest) -> MemoryBus:
    return MemoryBus(wire=request.param)


def _runtime(bus: MemoryBus, name: str = "finance") -> AgentRuntime:
    return AgentRuntime(build_agents(seed=1)[name], bus, run_id="run-1", ids=IdFactory("seed-1"))


class TestStep:
    """One step: read, filter, run, publish, ack."""

    def test_proposal_envelope_fields(self, bus: MemoryBus) -> None:
        """Ids from the agent's namespace, source, superstep, causation = trigger, new story = own id."""
        env = Envelopes()
        runtime = _runtime(bus)
        snapshot = env.observation("market.snapshot", SNAPSHOT, ["finance"])
        shock = env.observation("supply.shock", SHOCK, ["finance"])
        bus.publish_many([(topics.OBSERVATIONS, snapshot), (topics.OBSERVATIONS, shock)])
        assert runtime.step(1, env.sim_time) == 1
        (proposal,) = _published(bus, topics.PROPOSALS)
        expected = IdFactory("seed-1").child("agent:finance")
        assert proposal.id == expected.new()
        assert (proposal.source, proposal.run_id, proposal.superstep) == ("agent:finance", "run-1", 1)
        assert proposal.causation_id == shock.id
        assert proposal.correlation_id == proposal.id
        assert _published(bus, topics.CONTROL) == []  # no step report: nobody read one
        assert bus.pending_count(topics.OBSERVATIONS, "agent:finance") == 0

    def test_follow_up_keeps_the_story(self, bus: MemoryBus) -> None:
        """A revision triggered by a verdict carries the verdict's correlation id."""
        env = Envelopes()
        runtime = _runtime(bus)
        bus.publish_many(
            [
                (
                    topics.OBSERVATIONS,
                    env.observation(
                        "policy.brief", {"pricing": {"floor": 20, "ceiling": 150, "surge_cap_pct": 25}}, ["finance"]
                    ),
                ),
                (topics.OBSERVATIONS, env.observation("market.snapshot", SNAPSHOT, ["finance"])),
                (topics.OBSERVATIONS, env.observation("supply.shock", SHOCK, ["finance"])),
            ]
        )
        runtime.step(1, env.sim_time)
        first = next(e for e in _published(bus, topics.PROPOSALS))
        assert isinstance(first.payload, ActionProposed)
        verdict = env.verdict(first.payload, "deny", superstep=1, correlation_id=first.correlation_id)
        bus.publish(topics.VERDICTS, verdict)
        assert runtime.step(2, env.sim_time) == 1
        revised = _published(bus, topics.PROPOSALS)[1]
        assert (revised.causation_id, revised.correlation_id) == (verdict.id, first.correlation_id)

    def test_only_what_concerns_the_agent_reaches_it_and_everything_is_acked(self, bus: MemoryBus) -> None:
        """Observations for others and verdicts on others' proposals are skipped, yet acked."""
        env = Envelopes()
        runtime = _runtime(bus)
        foreign = ActionProposed(proposal_id="p-ops", agent="ops", action="open_incident", rationale="r")
        bus.publish_many(
            [
                (topics.OBSERVATIONS, env.observation("market.snapshot", SNAPSHOT, ["ops"])),
                (topics.OBSERVATIONS, env.observation("supply.shock", SHOCK, ["ops"])),
                (topics.VERDICTS, env.verdict(foreign, "deny")),
                (topics.AGENT_MESSAGES, env.message("research", "market.shortlist", {"ranked": []}, ["legal"])),
            ]
        )
        assert runtime.step(1, env.sim_time) == 0
        assert _published(bus, topics.PROPOSALS) == []
        for topic in (topics.OBSERVATIONS, topics.VERDICTS, topics.AGENT_MESSAGES):
            assert bus.pending_count(topic, "agent:finance") == 0

    def test_messages_of_the_current_superstep_wait_for_the_next(self, bus: MemoryBus) -> None:
        """A message tagged superstep s is not seen in step s (it was published by a peer in the same step)."""
        env = Envelopes()
        runtime = _runtime(bus)
        bus.publish(topics.OBSERVATIONS, env.observation("market.snapshot", SNAPSHOT, ["finance"]))
        bus.publish(topics.OBSERVATIONS, env.observation("supply.shock", SHOCK, ["finance"], superstep=3))
        assert runtime.step(3, env.sim_time) == 0
        assert bus.pending_count(topics.OBSERVATIONS, "agent:finance") == 1
        assert runtime.step(4, env.sim_time) == 1
        assert bus.pending_count(topics.OBSERVATIONS, "agent:finance") == 0

    def test_drains_more_than_one_read_batch(self, bus: MemoryBus) -> None:
        """250 inputs are all read in one step (reads of 100 until empty)."""
        env = Envelopes()
        runtime = _runtime(bus, "research")
        bus.publish_many(
            [
                (
                    topics.OBSERVATIONS,
                    env.observation("budget.pressure", {"topic": f"t{i:03d}", "cost_usd": 10}, ["research"]),
                )
                for i in range(250)
            ]
        )
        assert runtime.step(1, env.sim_time) == 250
        assert bus.pending_count(topics.OBSERVATIONS, "agent:research") == 0


class TestDeadLetters:
    """Nothing is dropped silently."""

    def test_undecodable_entry_is_dead_lettered_and_acked(self, bus: MemoryBus) -> None:
        """Bytes that are not an envelope become a dead.lettered message with the codec's reason."""
        env = Envelopes()
        runtime = _runtime(bus)
        bus.publish_raw(topics.OBSERVATIONS, b"{not json")
        runtime.step(1, env.sim_time)
        (letter,) = _published(bus, topics.DEAD_LETTERS)
        assert isinstance(letter.payload, DeadLettered)
        assert letter.payload.reason.startswith("not JSON")
        assert (letter.payload.topic, letter.payload.group, letter.payload.envelope_id) == (
            topics.OBSERVATIONS,
            "agent:finance",
            None,
        )
        assert bus.pending_count(topics.OBSERVATIONS, "agent:finance") == 0

    def test_unusable_observation_is_dead_lettered_with_its_id(self, bus: MemoryBus) -> None:
        """An observation the agent cannot use is dead-lettered, naming it and the bad field."""
        env = Envelopes()
        runtime = _runtime(bus)
        bad = env.observation("supply.shock", {"supply_change_pct": -5}, ["finance"])
        bus.publish(topics.OBSERVATIONS, bad)
        assert runtime.step(1, env.sim_time) == 0
        (letter,) = _published(bus, topics.DEAD_LETTERS)
        assert isinstance(letter.payload, DeadLettered)
        assert letter.payload.envelope_id == bad.id
        assert letter.causation_id == bad.id
        assert "data.region: Field required" in letter.payload.reason


class TestCanonicalOrder:
    """Topic order, then superstep, then source; stream order among equals."""

    def test_sort(self) -> None:
        """A verdict read first still comes after observations and messages."""
        env = Envelopes()
        proposal = ActionProposed(proposal_id="p", agent="finance", action="set_price", rationale="r")
        verdict = env.verdict(proposal, "allow", superstep=1)
        late_obs = env.observation("news", {}, ["research"], superstep=2)
        world_b = env.observation("news", {}, ["research"], superstep=1)
        world_a = env.observation("market.snapshot", {}, ["research"], superstep=1)
        message = env.message("finance", "price.guardrails", {}, ["marketing"], superstep=0)
        stream = [
            Delivery(topics.VERDICTS, "1-0", 1, verdict, b""),
            Delivery(topics.OBSERVATIONS, "2-0", 1, late_obs, b""),
            Delivery(topics.AGENT_MESSAGES, "3-0", 1, message, b""),
            Delivery(topics.OBSERVATIONS, "4-0", 1, world_b, b""),
            Delivery(topics.OBSERVATIONS, "5-0", 1, world_a, b""),
        ]
        ordered = [d.envelope for d in canonical_order(stream)]
        assert ordered == [world_b, world_a, late_obs, message, verdict]

    def test_agent_messages_reach_the_right_agent_in_a_shared_bus(self) -> None:
        """Two runtimes on one bus: research's shortlist is read by finance's group at the next step."""
        bus = MemoryBus()
        env = Envelopes()
        research, finance = _runtime(bus, "research"), _runtime(bus, "finance")
        signals = {
            "regions": {
                "TX": {"regulatory_viability": 0.8, "demand": 0.7, "price_sensitivity": 0.6, "legal_path": True}
            }
        }
        bus.publish(topics.OBSERVATIONS, env.observation("market.signals", signals, ["research"]))
        assert finance.step(1, env.sim_time) == 0
        assert research.step(1, env.sim_time) == 1
        assert finance.step(2, env.sim_time) == 1
        (entry,) = [e.payload for e in _published(bus, topics.PROPOSALS)]
        assert isinstance(entry, ActionProposed)
        assert (entry.action, entry.args["region"]) == ("enter_market", "TX")
        shortlist = _published(bus, topics.AGENT_MESSAGES)[0]
        assert isinstance(shortlist.payload, AgentMessage)
        proposal_envelope = _published(bus, topics.PROPOSALS)[0]
        assert proposal_envelope.causation_id == shortlist.id
        assert proposal_envelope.correlation_id == shortlist.correlation_id
