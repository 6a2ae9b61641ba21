"""The agent runtime: bus ↔ graph. Reads an agent's deliveries, runs its graph once, publishes what it said.

Each step reads everything new on the agent's four topics, keeps what concerns the agent and was published
in an earlier superstep (later ones are held for the next step, unacked), sorts it canonically, runs the
graph, publishes the outputs in one batch and acks. Inputs the bus could not decode,
and inputs the agent could not use, are dead-lettered with the reason — never dropped silently.

A runtime lives as long as its run. An interrupted run is resumed by re-executing it deterministically on fresh
streams (scenarios/runner.py), never by a new runtime simply reading on from a half-read group: it would mint
envelope ids from the start of its namespace again, and the recorder would drop its messages as duplicates. An
agent worker that takes an agent over from a dead one (scenarios/agent_workers.py) first `rebuild`s the agent:
it re-executes the earlier steps over the inputs they took, read back from the streams, publishing nothing, so
the agent's state and its id counter are where the dead worker left them; what the dead worker already published
(`published`) is not published again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

import structlog

from coalition.agents.base import Agent, AgentOutput, AgentStepContext
from coalition.agents.inbox import AGENT_TOPICS, canonical_order, concerns
from coalition.bus import topics
from coalition.bus.base import Bus, Delivery
from coalition.bus.clock import IdFactory
from coalition.bus.codec import encode
from coalition.bus.envelope import Envelope
from coalition.bus.message import Message
from coalition.bus.messages import DeadLettered

READ_BATCH = 100


class AgentRuntime:
    """Drives one agent over a bus, one superstep at a time."""

    def __init__(
        self,
        agent: Agent,
        bus: Bus,
        *,
        run_id: str,
        ids: IdFactory,
        group: str | None = None,
        consumer: str | None = None,
    ) -> None:
        self.agent = agent
        self.bus = bus
        self.run_id = run_id
        self.source = f"agent:{agent.name}"
        self.group = group or self.source
        self.consumer = consumer or self.source
        self._ids = ids.child(self.source)
        self._held: list[Delivery] = []
        self.published: set[str] = set()  # ids already on the streams (a takeover): not published again
        for topic in AGENT_TOPICS:
            bus.ensure_group(topic, self.group, from_start=True)

    def step(self, superstep: int, sim_time: datetime) -> int:
        """Run one superstep for the agent; returns how many proposals and agent messages it published."""
        with structlog.contextvars.bound_contextvars(agent=self.agent.name, superstep=superstep):
            return self._step(superstep, sim_time)

    def rebuild(self, history: Sequence[Delivery], steps: Sequence[tuple[int, datetime]]) -> list[Delivery]:
        """Re-execute the steps `steps` (superstep, simulated time) over `history` — every entry of the agent's
        topics, in stream order per topic — as the live steps took them: the same inputs in the same order, the
        same ids minted; nothing is published or acknowledged. What no step took stays held for the next one;
        returns what the steps took (to acknowledge). Raises ValueError if history holds an undecodable entry
        (a live step would have dead-lettered it at a point history does not tell)."""
        bad = [d for d in history if d.envelope is None]
        if bad:
            raise ValueError(f"{len(bad)} undecodable entries on {self.agent.name}'s topics ({bad[0].error})")
        self._held = list(history)
        taken: list[Delivery] = []
        for superstep, sim_time in steps:
            with structlog.contextvars.bound_contextvars(agent=self.agent.name, superstep=superstep):
                taken += self._run(superstep, sim_time, self._held, live=False)[1]
        return taken

    def _step(self, superstep: int, sim_time: datetime) -> int:
        produced, _ = self._run(superstep, sim_time, self._held + self._drain(), live=True)
        return produced

    def _run(
        self, superstep: int, sim_time: datetime, deliveries: list[Delivery], *, live: bool
    ) -> tuple[int, list[Delivery]]:
        """One step over `deliveries`; live, it publishes its outputs and acknowledges what it took. Returns how
        many proposals and agent messages it produced, and what it took."""
        undecodable = [d for d in deliveries if d.envelope is None]
        ready: list[Delivery] = []
        self._held = []
        for delivery in deliveries:
            if delivery.envelope is None:
                continue
            (ready if delivery.envelope.superstep < superstep else self._held).append(delivery)
        mine = canonical_order(
            [d for d in ready if d.envelope is not None and concerns(self.agent.name, self.agent.owns, d.envelope)]
        )
        ctx = AgentStepContext(self.agent.name, superstep, sim_time, self._ids)
        output = self.agent.run([d.envelope for d in mine if d.envelope is not None], ctx)
        batch = self._wrap(output, superstep, sim_time)
        batch += self._dead_letters(undecodable, output, mine, superstep, sim_time)
        if self.published:
            batch = [(topic, envelope) for topic, envelope in batch if envelope.id not in self.published]
        if batch and live:
            self.bus.publish_many(batch)
        if live:
            self.bus.ack(self.group, undecodable + ready)
        produced = sum(1 for item in output.messages if item.topic != topics.CONTROL)  # records are not output
        self._ids.new()  # the id a step.done report once took: ledgers recorded before its removal replay identical
        return produced, undecodable + ready

    def _drain(self) -> list[Delivery]:
        found: list[Delivery] = []
        while True:
            batch = self.bus.read(AGENT_TOPICS, self.group, self.consumer, count=READ_BATCH)
            if not batch:
                return found
            found.extend(batch)

    def _envelope(
        self, message: Message, superstep: int, sim_time: datetime, causation: str | None, correlation: str | None
    ) -> Envelope:
        new_id = self._ids.new()
        return Envelope.wrap(
            message,
            id=new_id,
            source=self.source,
            run_id=self.run_id,
            superstep=superstep,
            sim_time=sim_time,
            correlation_id=correlation or new_id,
            causation_id=causation,
        )

    def _wrap(self, output: AgentOutput, superstep: int, sim_time: datetime) -> list[tuple[str, Envelope]]:
        """A reaction to an observation starts a new story; a reaction to anything else continues its story."""
        batch: list[tuple[str, Envelope]] = []
        for item in output.messages:
            trigger = item.trigger
            follow_up = trigger is not None and trigger.type != "observation"
            envelope = self._envelope(
                item.message,
                superstep,
                sim_time,
                trigger.id if trigger is not None else None,
                trigger.correlation_id if follow_up and trigger is not None else None,
            )
            batch.append((item.topic, envelope))
        return batch

    def _dead_letters(
        self,
        undecodable: list[Delivery],
        output: AgentOutput,
        mine: list[Delivery],
        superstep: int,
        sim_time: datetime,
    ) -> list[tuple[str, Envelope]]:
        by_id = {d.envelope.id: d for d in mine if d.envelope is not None}
        items: list[tuple[Delivery, str]] = [(d, d.error or "undecodable message") for d in undecodable]
        items += [(by_id[r.envelope.id], r.reason) for r in output.rejected if r.envelope.id in by_id]
        batch: list[tuple[str, Envelope]] = []
        for delivery, reason in items:
            raw = delivery.raw or (encode(delivery.envelope) if delivery.envelope is not None else b"")
            letter = DeadLettered(
                topic=delivery.topic,
                group=self.group,
                broker_id=delivery.broker_id,
                envelope_id=delivery.envelope.id if delivery.envelope is not None else None,
                deliveries=delivery.deliveries,
                reason=reason,
                raw_sha256=hashlib.sha256(raw).hexdigest(),
                raw_preview=raw[:200].decode("utf-8", errors="replace"),
            )
            cause = delivery.envelope.id if delivery.envelope is not None else None
            batch.append((topics.DEAD_LETTERS, self._envelope(letter, superstep, sim_time, cause, None)))
        return batch
