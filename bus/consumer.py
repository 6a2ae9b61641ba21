"""The consumer loop that turns at-least-once delivery into exactly-once effects (README: "What Coalition promises").

Each poll reclaims entries left pending by dead or slow consumers, then reads new ones. A message is
applied through an `IdempotencyStore` (effect + dedupe record in one transaction) and acknowledged only
after that commit, so a crash anywhere leads to a redelivery that the store turns into a no-op. A message
that cannot be decoded, or that failed `max_deliveries` times, goes to the dead-letter topic, then is acked.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import orjson
import structlog

from coalition.bus.base import Bus, Delivery, IdempotencyStore
from coalition.bus.clock import Clock, IdFactory, WallClock
from coalition.bus.codec import encode
from coalition.bus.envelope import Envelope
from coalition.bus.messages import DeadLettered
from coalition.bus.topics import DEAD_LETTERS

_PREVIEW_CHARS = 200
_REMEMBERED_ERRORS = 10_000

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll did: applied, skipped as already applied, dead-lettered, or left pending after a failure."""

    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    failed: int = 0

    @property
    def handled(self) -> int:
        return self.processed + self.duplicates + self.dead_lettered + self.failed


class MemoryIdempotencyStore:
    """An `IdempotencyStore` in a set, for single-process runs and tests (effects then live in memory too)."""

    def __init__(self) -> None:
        self._applied: set[tuple[str, str]] = set()
        self._lock = threading.RLock()

    def apply_once(self, consumer: str, message_id: str, effect: Callable[[], None]) -> bool:
        key = (consumer, message_id)
        with self._lock:
            if key in self._applied:
                return False
            effect()
            self._applied.add(key)
            return True

    def applied(self, consumer: str, message_id: str) -> bool:
        with self._lock:
            return (consumer, message_id) in self._applied

    def __len__(self) -> int:
        with self._lock:
            return len(self._applied)


class Consumer:
    """One member of a consumer group, applying each message once through an idempotency store.

    Deduplication is keyed on the group (the logical consumer) and the envelope id, never on this member's
    name: when a member dies after its commit but before its ack, another member reclaims the entry and
    must see it as already applied. `crash_after_commit` is a test hook called between commit and ack;
    whatever it raises escapes `poll` with nothing acknowledged, exactly like a crash at that point.
    """

    def __init__(
        self,
        bus: Bus,
        *,
        topics: Sequence[str],
        group: str,
        name: str,
        handler: Callable[[Envelope], None],
        store: IdempotencyStore,
        max_deliveries: int = 5,
        min_idle_ms: int = 30_000,
        ids: IdFactory | None = None,
        clock: Clock | None = None,
        run_id: str = "unknown",
        dead_letter_topic: str = DEAD_LETTERS,
        crash_after_commit: Callable[[Delivery], None] | None = None,
    ) -> None:
        if not topics:
            raise ValueError("a consumer needs at least one topic")
        if max_deliveries < 1:
            raise ValueError(f"max_deliveries must be at least 1, got {max_deliveries}")
        self.bus = bus
        self.topics = tuple(topics)
        self.group = group
        self.name = name
        self.max_deliveries = max_deliveries
        self.min_idle_ms = min_idle_ms
        self.dead_letter_topic = dead_letter_topic
        self._handler = handler
        self._store = store
        self._ids = ids or IdFactory("coalition.bus.consumer")
        self._clock = clock or WallClock()
        self._run_id = run_id
        self._crash_after_commit = crash_after_commit
        self._last_errors: dict[tuple[str, str], str] = {}

    def __repr__(self) -> str:
        return f"Consumer(group={self.group!r}, name={self.name!r}, topics={list(self.topics)!r})"

    def poll(self, count: int = 100, block_ms: int = 0) -> PollResult:
        """Reclaim stale entries, read new ones, handle them all; blocks only when nothing was reclaimed."""
        deliveries = self.bus.reclaim_stale(
            self.topics, self.group, self.name, min_idle_ms=self.min_idle_ms, count=count
        )
        deliveries += self.bus.read(
            self.topics, self.group, self.name, count=count, block_ms=0 if deliveries else block_ms
        )
        processed = duplicates = dead_lettered = failed = 0
        done: list[Delivery] = []
        for delivery in deliveries:
            envelope = delivery.envelope
            if envelope is None or delivery.deliveries > self.max_deliveries:
                self._dead_letter(delivery)
                dead_lettered += 1
                # acked at once, not with the batch: the longer it stays pending, the likelier another consumer
                # reclaims it and letters it again (harmless: a letter's id is derived from the message)
                self.bus.ack(self.group, [delivery])
                self._last_errors.pop((delivery.topic, delivery.broker_id), None)
                continue
            try:
                applied = self._store.apply_once(self.group, envelope.id, partial(self._handler, envelope))
            except Exception as exc:  # the handler failed: leave it pending, it will be redelivered
                self._remember_error(delivery, exc)
                log.warning(
                    "bus.handler_failed",
                    group=self.group,
                    consumer=self.name,
                    topic=delivery.topic,
                    envelope_id=envelope.id,
                    deliveries=delivery.deliveries,
                    error=f"{type(exc).__name__}: {exc}",
                )
                failed += 1
                continue
            if self._crash_after_commit is not None:
                self._crash_after_commit(delivery)
            if applied:
                processed += 1
            else:
                duplicates += 1
            done.append(delivery)
        if done:
            self.bus.ack(self.group, done)
            for delivery in done:
                self._last_errors.pop((delivery.topic, delivery.broker_id), None)
        return PollResult(processed, duplicates, dead_lettered, failed)

    def drain(self, *, count: int = 100, max_polls: int = 10_000) -> PollResult:
        """Poll until a poll finds nothing to do (or max_polls); returns the totals."""
        totals = [0, 0, 0, 0]
        for _ in range(max_polls):
            result = self.poll(count=count)
            if result.handled == 0:
                break
            for i, value in enumerate((result.processed, result.duplicates, result.dead_lettered, result.failed)):
                totals[i] += value
        return PollResult(*totals)

    # -- dead letters ------------------------------------------------------------------------------------

    def _remember_error(self, delivery: Delivery, exc: Exception) -> None:
        if len(self._last_errors) >= _REMEMBERED_ERRORS:
            self._last_errors.clear()
        self._last_errors[(delivery.topic, delivery.broker_id)] = f"{type(exc).__name__}: {exc}"

    def _reason(self, delivery: Delivery) -> str:
        if delivery.envelope is None:
            return f"undecodable: {delivery.error or 'no envelope'}"
        last = self._last_errors.get((delivery.topic, delivery.broker_id))
        tail = f"; last error: {last}" if last else ""
        return f"gave up after {delivery.deliveries - 1} failed deliveries (max {self.max_deliveries}){tail}"

    def _dead_letter(self, delivery: Delivery) -> None:
        envelope = delivery.envelope
        reason = self._reason(delivery)
        if delivery.topic == self.dead_letter_topic:
            # never dead-letter a dead letter: that could loop forever; the entry is logged and acked
            log.error("bus.dead_letter_dropped", group=self.group, broker_id=delivery.broker_id, reason=reason)
            return
        raw = delivery.raw or (encode(envelope) if envelope is not None else b"")
        raw_sha256 = hashlib.sha256(raw).hexdigest()
        message = DeadLettered(
            topic=delivery.topic,
            group=self.group,
            broker_id=delivery.broker_id,
            envelope_id=envelope.id if envelope is not None else None,
            deliveries=delivery.deliveries,
            reason=reason,
            raw_sha256=raw_sha256,
            raw_preview=raw[:_PREVIEW_CHARS].decode("utf-8", errors="replace"),
        )
        if envelope is not None:
            letter_id = self._ids.derive("dead-letter", self.group, envelope.id)
            run_id, superstep, sim_time = envelope.run_id, envelope.superstep, envelope.sim_time
            correlation_id, causation_id = envelope.correlation_id, envelope.id
        else:
            letter_id = self._ids.derive("dead-letter", self.group, delivery.topic, delivery.broker_id)
            run_id, superstep, sim_time = _run_id_in(raw) or self._run_id, 0, self._clock.now()
            correlation_id, causation_id = letter_id, None
        letter = Envelope.wrap(
            message,
            id=letter_id,
            source=f"consumer:{self.group}",
            run_id=run_id,
            superstep=superstep,
            sim_time=sim_time,
            correlation_id=correlation_id,
            causation_id=causation_id,
        )
        self.bus.publish(self.dead_letter_topic, letter)
        log.warning(
            "bus.dead_lettered",
            group=self.group,
            topic=delivery.topic,
            broker_id=delivery.broker_id,
            envelope_id=message.envelope_id,
            reason=reason,
        )


def _run_id_in(raw: bytes) -> str | None:
    """The run id of an undecodable message, if its bytes are still a JSON object that names one."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    run_id = obj.get("run_id") if isinstance(obj, dict) else None
    return run_id if isinstance(run_id, str) and 0 < len(run_id) <= 128 else None
