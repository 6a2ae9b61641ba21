"""The message bus: typed envelopes over Redis Streams consumer groups or an in-memory twin."""

from coalition.bus import messages, topics
from coalition.bus.base import Bus, Delivery, IdempotencyStore
from coalition.bus.canonical import canonical_json, content_hash
from coalition.bus.clock import Clock, IdFactory, SimulatedClock, WallClock
from coalition.bus.codec import decode, encode
from coalition.bus.envelope import Envelope
from coalition.bus.errors import BusError, BusUnavailable, EmbeddedRedisError, MessageRejected, UnknownMessageType
from coalition.bus.message import Message, register

__all__ = [
    "Bus",
    "BusError",
    "BusUnavailable",
    "Clock",
    "Delivery",
    "EmbeddedRedisError",
    "Envelope",
    "IdFactory",
    "IdempotencyStore",
    "Message",
    "MessageRejected",
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
