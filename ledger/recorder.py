"""The recorder: the bus consumer that writes every message of every topic into the ledger exactly once.

At-least-once delivery becomes exactly-once recording through the ledger's dedupe table: a flush appends a
whole batch together with one dedupe row per envelope id in ONE transaction, and acks only after the commit.
A crash before the commit loses nothing (the entries are redelivered or reclaimed); a crash after the commit
and before the ack leads to a redelivery that the dedupe rows turn into a no-op.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import orjson
import structlog

from coalition.bus import topics
from coalition.bus.base import Bus, Delivery
from coalition.ledger.base import Ledger
from coalition.ledger.entry import EntryDraft, LedgerEntry
from coalition.ledger.mapping import draft_from_envelope
from coalition.ledger.write_behind import WriteBehindLedger

DEDUPE_CONSUMER = "recorder"
_PREVIEW_BYTES = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_LAST = 1 << 62  # sorts undecodable deliveries after the decodable ones of their topic

log = structlog.get_logger(__name__)


def topic_rank(topic: str) -> int:
    """Position of a topic in the canonical order of docs/design.md; unknown topics come last."""
    try:
        return topics.ALL.index(topic)
    except ValueError:
        return len(topics.ALL)


def canonical_order(deliveries: Sequence[Delivery]) -> list[Delivery]:
    """Topic order, then superstep, then source; the sort is stable, so stream order is kept within a source."""

    def key(d: Delivery) -> tuple[int, int, str]:
        if d.envelope is None:
            return topic_rank(d.topic), _LAST, ""
        return topic_rank(d.topic), d.envelope.superstep, d.envelope.source

    return sorted(deliveries, key=key)


class Recorder:
    """Drains every topic into the ledger: `flush()` after each superstep (or in a loop, for a live console)."""

    def __init__(
        self,
        bus: Bus,
        ledger: Ledger,
        *,
        group: str = "recorder",
        name: str = "recorder-1",
        topic_names: Sequence[str] = topics.ALL,
        min_idle_ms: int = 30_000,
        batch: int = 500,
        dedupe_consumer: str = DEDUPE_CONSUMER,
        already_recorded: frozenset[str] = frozenset(),
        run_id: str | None = None,
    ) -> None:
        self._bus = bus
        self._already_recorded = already_recorded  # envelope ids the ledger holds already (a resumed run's)
        self._dedupe_consumer = dedupe_consumer
        self._ledger = ledger
        self._group = group
        self._name = name
        self._topics = tuple(topic_names)
        self._min_idle_ms = min_idle_ms
        self._batch = batch
        self._run_id = run_id  # a run's recorder: its dead letters belong to it, whatever run a message claims
        self._last_run_id = run_id or "unknown"
        self._last_sim_time = _EPOCH
        for topic in self._topics:
            bus.ensure_group(topic, group, from_start=True)

    def collect(self) -> list[Delivery]:
        """Everything waiting for this consumer: stale entries of dead recorders first, then new entries."""
        collected: list[Delivery] = []
        while reclaimed := self._bus.reclaim_stale(
            self._topics, self._group, self._name, min_idle_ms=self._min_idle_ms, count=self._batch
        ):
            collected.extend(reclaimed)
            if self._min_idle_ms <= 0:
                break  # with no idle bound the same entries would be reclaimed again and again
        while fresh := self._bus.read(self._topics, self._group, self._name, count=self._batch):
            collected.extend(fresh)
        return collected

    def record(self, deliveries: Sequence[Delivery]) -> list[LedgerEntry]:
        """Map deliveries to entries and append them with their dedupe rows in one transaction (no ack)."""
        items = self._items(deliveries)
        if not items:
            return []
        return self._ledger.append_batch_once(self._dedupe_consumer, items)

    def _items(self, deliveries: Sequence[Delivery]) -> list[tuple[str, Sequence[EntryDraft]]]:
        """(message id, drafts) for each delivery in canonical order, those the ledger already holds left out."""
        items: list[tuple[str, Sequence[EntryDraft]]] = []
        for delivery in canonical_order(deliveries):
            envelope = delivery.envelope
            if envelope is None:
                items.append((f"undecodable:{delivery.topic}:{delivery.broker_id}", [self._dead_letter(delivery)]))
                continue
            self._last_run_id, self._last_sim_time = envelope.run_id, envelope.sim_time
            if envelope.id in self._already_recorded:
                continue  # recorded by an earlier attempt: the ledger, not only the dedupe table, says so
            try:
                draft = draft_from_envelope(envelope)
            except ValueError as exc:  # pydantic's ValidationError included: the message cannot be recorded as is
                items.append((envelope.id, [self._dead_letter(delivery, f"cannot be recorded: {exc}")]))
                continue
            items.append((envelope.id, [draft]))
        return items

    def flush(self) -> int:
        """Drain all topics, record the batch, then ack it; returns how many entries were appended.

        Over a WriteBehindLedger (a run whose bus is its own) the batch is held instead, and acked once the ledger
        has written it (as soon as anything uses the ledger): nothing is appended yet, and 0 is returned."""
        deliveries = self.collect()
        if not deliveries:
            return 0
        if isinstance(self._ledger, WriteBehindLedger):
            acknowledge = partial(self._bus.ack, self._group, deliveries)
            self._ledger.hold_batch_once(self._dedupe_consumer, self._items(deliveries), then=acknowledge)
            log.debug("recorder.held", deliveries=len(deliveries))
            return 0
        written = self.record(deliveries)
        self._bus.ack(self._group, deliveries)
        log.debug("recorder.flush", deliveries=len(deliveries), entries=len(written))
        return len(written)

    def _dead_letter(self, delivery: Delivery, reason: str | None = None) -> EntryDraft:
        """A `dead_letter` entry for a delivery the recorder cannot record as a message, saying why."""
        why = reason or delivery.error or "undecodable message"
        run_id, sim_time = self._provenance(delivery)
        return EntryDraft(
            run_id=run_id,
            sim_time=sim_time,
            actor="system",
            actor_kind="system",
            kind="dead_letter",
            subject=delivery.broker_id,
            payload={
                "topic": delivery.topic,
                "group": self._group,
                "broker_id": delivery.broker_id,
                "envelope_id": delivery.envelope.id if delivery.envelope is not None else None,
                "deliveries": delivery.deliveries,
                "reason": why,
                "raw_sha256": hashlib.sha256(delivery.raw).hexdigest(),
                "raw_preview": delivery.raw[:_PREVIEW_BYTES].decode("utf-8", errors="replace"),
            },
            rationale=f"the recorder dead-lettered {delivery.broker_id} from {delivery.topic}: {why}",
            message_id=delivery.envelope.id if delivery.envelope is not None else None,
        )

    def _provenance(self, delivery: Delivery) -> tuple[str, datetime]:
        """The run and simulated time a dead letter belongs to: its own if readable, else the last seen."""
        if self._run_id is not None:
            return self._run_id, delivery.envelope.sim_time if delivery.envelope is not None else self._last_sim_time
        if delivery.envelope is not None:
            return delivery.envelope.run_id, delivery.envelope.sim_time
        run_id, sim_time = self._last_run_id, self._last_sim_time
        try:
            raw: Any = orjson.loads(delivery.raw)
        except orjson.JSONDecodeError:
            return run_id, sim_time
        if isinstance(raw, dict):
            candidate = raw.get("run_id")
            if isinstance(candidate, str) and 0 < len(candidate) <= 128:
                run_id = candidate
        return run_id, sim_time
