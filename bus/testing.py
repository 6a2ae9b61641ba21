"""Test doubles for code that publishes: a Bus wrapper that records every publish (like structlog's capture_logs)."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from coalition.bus.base import Bus, Delivery
from coalition.bus.envelope import Envelope
from coalition.bus.memory import MemoryBus
from coalition.bus.message import Message
from coalition.bus.messages import Observation

M = TypeVar("M", bound=Message)

SAMPLE_TIME = datetime(2025, 3, 1, tzinfo=UTC)


def sample_envelope(
    n: int, *, kind: str = "news", run_id: str = "run-test", data: dict[str, Any] | None = None
) -> Envelope:
    """A small valid observation envelope with id `env-<n>`, so a test can name its messages by number."""
    message = Observation(kind=kind, subject=f"subject-{n}", data=data if data is not None else {"n": n})
    return Envelope.wrap(message, id=f"env-{n}", source="world", run_id=run_id, superstep=1, sim_time=SAMPLE_TIME)


class CapturingBus:
    """A real `Bus` (a MemoryBus unless one is given) that also keeps a list of what was published, in order."""

    def __init__(self, inner: Bus | None = None) -> None:
        self.inner: Bus = inner if inner is not None else MemoryBus()
        self.published: list[tuple[str, Envelope]] = []
        self.published_raw: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()

    # -- what was published ------------------------------------------------------------------------------

    def envelopes(self, topic: str | None = None) -> list[Envelope]:
        """Published envelopes, optionally of one topic."""
        with self._lock:
            return [envelope for t, envelope in self.published if topic is None or t == topic]

    def messages(self, kind: type[M], topic: str | None = None) -> list[M]:
        """Published payloads of one message class, e.g. `bus.messages(ActionProposed)`."""
        return [e.payload for e in self.envelopes(topic) if isinstance(e.payload, kind)]

    def types(self, topic: str | None = None) -> list[str]:
        """Wire types of what was published, in order (handy for asserting a sequence)."""
        return [e.type for e in self.envelopes(topic)]

    def clear(self) -> None:
        with self._lock:
            self.published.clear()
            self.published_raw.clear()

    # -- the Bus protocol --------------------------------------------------------------------------------

    def publish(self, topic: str, envelope: Envelope) -> str:
        broker_id = self.inner.publish(topic, envelope)
        with self._lock:
            self.published.append((topic, envelope))
        return broker_id

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        ids = self.inner.publish_many(items)
        with self._lock:
            self.published.extend(items)
        return ids

    def publish_encoded(self, items: Sequence[tuple[str, Envelope, bytes]]) -> list[str]:
        ids = self.inner.publish_encoded(items)
        with self._lock:
            self.published.extend((topic, envelope) for topic, envelope, _ in items)
        return ids

    def publish_raw(self, topic: str, data: bytes) -> str:
        broker_id = self.inner.publish_raw(topic, data)
        with self._lock:
            self.published_raw.append((topic, data))
        return broker_id

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        self.inner.ensure_group(topic, group, from_start=from_start)

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        return self.inner.read(topics, group, consumer, count=count, block_ms=block_ms)

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        return self.inner.reclaim_stale(topics, group, consumer, min_idle_ms=min_idle_ms, count=count)

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> int:
        return self.inner.ack(group, deliveries)

    def pending_count(self, topic: str, group: str) -> int:
        return self.inner.pending_count(topic, group)

    def length(self, topic: str) -> int:
        return self.inner.length(topic)

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        return self.inner.range(topic, start=start, end=end, count=count)

    def close(self) -> None:
        self.inner.close()


@contextmanager
def capture_messages(inner: Bus | None = None) -> Iterator[CapturingBus]:
    """`with capture_messages() as bus:` hand `bus` to the code under test, then assert on `bus.published`."""
    bus = CapturingBus(inner)
    try:
        yield bus
    finally:
        bus.close()
