"""The composition root: the one place that chooses backends (bus, ledger, model) and wires a run together.

Tests inject their own backends by calling the constructors they need; nothing else picks an implementation.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from coalition.bus.base import Bus
from coalition.settings import Settings


@dataclass(frozen=True)
class BusChoice:
    """What `--bus` asked for: the in-memory bus, the embedded/ configured Redis, or a Redis URL."""

    kind: str  # "memory" | "redis"
    url: str | None = None  # explicit redis:// or unix:// URL; None = REDIS_URL or embedded

    @classmethod
    def parse(cls, value: str | None, settings: Settings) -> BusChoice:
        raw = value or settings.bus
        if raw == "memory":
            return cls("memory")
        if raw == "redis":
            return cls("redis", settings.redis_url)
        if raw.startswith(("redis://", "rediss://", "unix://")):
            return cls("redis", raw)
        raise ValueError(f"--bus must be memory, redis or a redis:// / unix:// URL, not {raw!r}")

    def describe(self) -> str:
        if self.kind == "memory":
            return "memory (in-process)"
        return f"redis at {self.url}" if self.url else "redis (embedded private redis-server)"


@contextmanager
def open_bus(choice: BusChoice, *, namespace: str, data_dir: Path) -> Iterator[Bus]:
    """Yield a ready bus; an embedded redis-server lives exactly as long as the context (Ctrl-C included)."""
    if choice.kind == "memory":
        from coalition.bus.memory import MemoryBus

        bus: Bus = MemoryBus(namespace=namespace)
        try:
            yield bus
        finally:
            bus.close()
        return

    from coalition.bus.redis_streams import RedisStreamsBus

    if choice.url:
        bus = RedisStreamsBus(choice.url, namespace=namespace)
        try:
            yield bus
        finally:
            bus.close()
        return

    from coalition.bus.embedded import EmbeddedRedis

    with EmbeddedRedis(data_dir / "redis") as server:
        bus = RedisStreamsBus(server.url, namespace=namespace)
        try:
            yield bus
        finally:
            bus.close()
