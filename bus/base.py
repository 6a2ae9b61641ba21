"""The Bus port. Backends: memory.py (in-process) and redis_streams.py (Redis Streams consumer groups).

Delivery is at-least-once: an entry read by a consumer stays pending until acked; an entry pending longer
than `min_idle_ms` can be reclaimed by another consumer of the group; after `max_deliveries` a consumer
dead-letters it. Effects become exactly-once through `IdempotencyStore` (dedupe on the envelope id).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, cast, runtime_checkable

from coalition.bus.envelope import Envelope


@dataclass(frozen=True, slots=True)
class Delivery:
    """One entry handed to one consumer. `broker_id` is the backend's entry id (NOT an identity)."""

    topic: str
    broker_id: str
    deliveries: int
    envelope: Envelope | None
    raw: bytes
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.envelope is not None


_new_delivery = object.__new__


class _Unsealed:
    """A Delivery's slots without the frozen dataclass's __setattr__: `delivered` fills one with plain attribute
    stores, then makes it the Delivery it is. The same slots in the same order are the same object layout, which is
    what lets an instance change class (`__class__` assignment refuses any other pair of classes)."""

    __slots__ = Delivery.__slots__
    topic: str
    broker_id: str
    deliveries: int
    envelope: Envelope | None
    raw: bytes
    error: str | None


def delivered(topic: str, broker_id: str, deliveries: int, envelope: Envelope, raw: bytes) -> Delivery:
    """`Delivery(topic, broker_id, deliveries, envelope, raw)`, the same frozen object, built for a backend's read
    loop (one per entry read) without the dataclass's generic field-by-field __init__: its slots are filled while it
    is still `_Unsealed` (the frozen class refuses plain stores; its init and the slots' own descriptors each make
    one generic call per field, about twice the cost of a whole Delivery built this way), then its class is set."""
    delivery = _new_delivery(_Unsealed)
    delivery.topic = topic
    delivery.broker_id = broker_id
    delivery.deliveries = deliveries
    delivery.envelope = envelope
    delivery.raw = raw
    delivery.error = None
    delivery.__class__ = Delivery  # type: ignore[assignment]
    return cast(Delivery, delivery)


@runtime_checkable
class Bus(Protocol):
    """Publish typed envelopes to topics; consume them through consumer groups with explicit acks."""

    def publish(self, topic: str, envelope: Envelope) -> str:
        """Append one envelope; returns the broker id."""
        ...

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        """Append several envelopes in one round trip, in order."""
        ...

    def publish_encoded(self, items: Sequence[tuple[str, Envelope, bytes]]) -> list[str]:
        """`publish_many` for envelopes whose canonical bytes the caller already holds (`data == encode(envelope)`),
        e.g. a signing bus that signed exactly those bytes: nothing is encoded twice."""
        ...

    def publish_raw(self, topic: str, data: bytes) -> str:
        """Append bytes as they are (tests and bridges only: lets a malformed message onto the wire)."""
        ...

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        """Create the consumer group if it does not exist (idempotent)."""
        ...

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        """New entries for this consumer (never delivered to the group before). Undecodable entries come
        back as a Delivery with envelope=None and error set, so the caller can dead-letter them."""
        ...

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        """Take over entries pending on other (dead or slow) consumers for at least min_idle_ms."""
        ...

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> int:
        """Acknowledge processed entries; returns how many were pending."""
        ...

    def pending_count(self, topic: str, group: str) -> int: ...

    def length(self, topic: str) -> int: ...

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        """Read a topic's entries without a group (inspection, dead-letter listing, tests)."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class WireBus(Protocol):
    """A bus that appends bytes and keeps no envelope objects (Redis): a signing bus hands it its wire bytes alone,
    without building a signed envelope object for each of them."""

    def publish_wire(self, items: Sequence[tuple[str, bytes]]) -> list[str]:
        """Append canonical envelope bytes (each `encode(envelope)` of some envelope) in order, in one round trip."""
        ...


class IdempotencyStore(Protocol):
    """Where a consumer records that it applied a message, in the same transaction as the effect."""

    def apply_once(self, consumer: str, message_id: str, effect: Callable[[], None]) -> bool:
        """Run `effect` and record (consumer, message_id) atomically; return False (and do nothing) if that
        pair was already recorded. If `effect` raises, nothing is recorded and the exception propagates."""
        ...
