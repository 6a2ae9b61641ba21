"""Errors of the bus package, with the fields a caller needs to act on them."""

from __future__ import annotations


class BusError(Exception):
    """Base of every bus error."""


class BusUnavailable(BusError):
    """The broker cannot be reached (after retries)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"bus at {url} is unavailable: {reason}")
        self.url = url
        self.reason = reason


class MessageRejected(BusError):
    """A message on the wire cannot be decoded into a known, valid envelope."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnknownMessageType(MessageRejected):
    def __init__(self, type_name: str) -> None:
        super().__init__(f"unknown message type {type_name!r}")
        self.type_name = type_name


class EmbeddedRedisError(BusError):
    """The private redis-server could not be started or stopped."""


class KeyStoreError(BusError):
    """A key is missing, unreadable, malformed or has unsafe permissions."""


class AgentWorkersFailed(BusError):
    """The agent workers of a run did not complete a superstep: none serves an agent, the owner of one died with
    no other to take it over, one stayed silent past the deadline, or a step failed on its worker."""
