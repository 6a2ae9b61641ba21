"""Shared fixtures: a real Redis (the local server, else a private one), buses over it and in memory, envelopes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from coalition.bus.base import Bus
from coalition.bus.embedded import EmbeddedRedis, free_tcp_port
from coalition.bus.errors import EmbeddedRedisError
from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import RedisStreamsBus

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"


def service_unavailable(reason: str) -> None:
    """A needed service is missing: a failure in CI (CI=true), a skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, protocol=2, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """COALITION_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers PING, else a private redis-server on a free port."""
    url = os.environ.get("COALITION_TEST_REDIS_URL", LOCAL_REDIS_URL)
    if redis_answers(url):
        yield url
        return
    try:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_tcp_port(), appendonly=False).start()
    except EmbeddedRedisError as exc:
        service_unavailable(f"no Redis at {url} and no redis-server to start: {exc}")
        return
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture
def redis_bus(redis_url: str) -> Iterator[RedisStreamsBus]:
    """A RedisStreamsBus on a namespace of its own; its streams are deleted afterwards."""
    bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield bus
    finally:
        bus.delete_namespace()
        bus.close()


@pytest.fixture
def memory_bus() -> Iterator[MemoryBus]:
    bus = MemoryBus()
    yield bus
    bus.close()


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> Bus:
    """Each backend in turn: the contract suites run once per backend."""
    backend: Bus = request.getfixturevalue(f"{request.param}_bus")
    return backend


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Library code logs through structlog; tests keep warnings and errors only."""
    from coalition.logs import configure_logging

    configure_logging("warning", "console")
