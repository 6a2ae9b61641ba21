"""Injected time and identities, so agents and governance never read the wall clock, uuid4 or random."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Anything that can say what time it is (simulated or wall)."""

    def now(self) -> datetime: ...


class SimulatedClock:
    """The scenario's clock: it moves only when the runner advances it."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs a timezone-aware start")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("the simulated clock never moves backwards")
        self._now += delta
        return self._now

    def set(self, when: datetime) -> datetime:
        when = when.astimezone(UTC)
        if when < self._now:
            raise ValueError(f"the simulated clock never moves backwards ({when} < {self._now})")
        self._now = when
        return self._now


class WallClock:
    """Real UTC time. Only infrastructure (ledger wall_time, bus timeouts) may use it."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class IdFactory:
    """Deterministic, namespaced ids: the n-th id of a namespace depends only on the seed, the namespace and n.

    Each producer (an agent, governance, the executor) takes its own child namespace, so the ids it mints
    do not depend on how producers are scheduled relative to each other.
    """

    def __init__(self, seed: str, namespace: str = "") -> None:
        self._seed = seed
        self._namespace = namespace
        self._counter = 0

    @property
    def namespace(self) -> str:
        return self._namespace

    def child(self, name: str) -> IdFactory:
        return IdFactory(self._seed, f"{self._namespace}/{name}" if self._namespace else name)

    def new(self) -> str:
        self._counter += 1
        return self.derive(str(self._counter))

    def derive(self, *parts: str) -> str:
        """An id determined entirely by the given parts (no counter): same parts, same id."""
        digest = hashlib.sha256("\x1f".join((self._seed, self._namespace, *parts)).encode()).digest()
        return uuid5_text(digest)


def uuid5_text(digest: bytes) -> str:
    """`str(uuid.UUID(bytes=digest[:16], version=5))` without building the UUID: its version and variant bits set in
    the bytes and the hex cut into groups. A run mints an id for every message it publishes (~1 us a UUID saved)."""
    raw = bytearray(digest[:16])
    raw[6] = (raw[6] & 0x0F) | 0x50  # version 5
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 4122 variant
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
