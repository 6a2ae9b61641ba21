"""The message bus: typed envelopes over Redis Streams consumer groups or an in-memory twin.

The Redis backend and the embedded launcher are imported from their modules
(`coalition.bus.redis_streams`, `coalition.bus.embedded`) so that importing the package never pulls in redis.
"""

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
