"""The message bus: typed envelopes over Redis Streams consumer groups or an in-memory twin.

The Redis backend and the embedded launcher are imported from their modules
(`coalition.bus.redis_streams`, `coalition.bus.embedded`) so that importing the package never pulls in redis.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
    from coalition.bus import messages, topics
    from coalition.bus.base import Bus, Delivery, IdempotencyStore
    from coalition.bus.canonical import canonical_json, content_hash
    from coalition.bus.clock import Clock, IdFactory, SimulatedClock, WallClock
    from coalition.bus.codec import decode, encode
    from coalition.bus.consumer import Consumer, MemoryIdempotencyStore, PollResult
    from coalition.bus.envelope import Envelope
    from coalition.bus.errors import BusError, BusUnavailable, EmbeddedRedisError, MessageRejected, UnknownMessageType
    from coalition.bus.memory import MemoryBus
    from coalition.bus.message import Message, register

_LAZY: dict[str, str] = {
    "Bus": "coalition.bus.base",
    "BusError": "coalition.bus.errors",
    "BusUnavailable": "coalition.bus.errors",
    "Clock": "coalition.bus.clock",
    "Consumer": "coalition.bus.consumer",
    "Delivery": "coalition.bus.base",
    "EmbeddedRedisError": "coalition.bus.errors",
    "Envelope": "coalition.bus.envelope",
    "IdFactory": "coalition.bus.clock",
    "IdempotencyStore": "coalition.bus.base",
    "MemoryBus": "coalition.bus.memory",
    "MemoryIdempotencyStore": "coalition.bus.consumer",
    "Message": "coalition.bus.message",
    "MessageRejected": "coalition.bus.errors",
    "PollResult": "coalition.bus.consumer",
    "SimulatedClock": "coalition.bus.clock",
    "UnknownMessageType": "coalition.bus.errors",
    "WallClock": "coalition.bus.clock",
    "canonical_json": "coalition.bus.canonical",
    "content_hash": "coalition.bus.canonical",
    "decode": "coalition.bus.codec",
    "encode": "coalition.bus.codec",
    "register": "coalition.bus.message",
}
lazy_package(__name__, _LAZY, submodules=("messages", "topics"))

__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "Clock",
    "Consumer",
    "Delivery",
    "EmbeddedRedisError",
    "Envelope",
    "IdFactory",
    "IdempotencyStore",
    "MemoryBus",
    "MemoryIdempotencyStore",
    "Message",
    "MessageRejected",
    "PollResult",
    "SimulatedClock",
    "UnknownMessageType",
    "WallClock",
    "canonical_json",
    "content_hash",
    "decode",
    "encode",
    "messages",
    "register",
    "topics",
]
