"""RedisStreamsBus.read on a real redis-server, whoever wrote the entries: the bus's own client reads XREADGROUP
replies as Redis sends them (no per-entry dict), a caller's client reads them parsed by redis-py, and both give the
same deliveries, an entry written with other fields included."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from coalition.bus.base import Delivery
from coalition.bus.codec import encode
from coalition.bus.redis_streams import FIELD, RedisStreamsBus
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.integration


@pytest.fixture
def namespace(redis_url: str) -> Iterator[str]:
    name = f"test-{uuid.uuid4().hex[:12]}"
    yield name
    bus = RedisStreamsBus(redis_url, namespace=name)
    bus.delete_namespace()
    bus.close()


def shown(deliveries: list[Delivery]) -> list[tuple[str | None, bytes, str | None]]:
    return [(d.envelope.id if d.envelope else None, d.raw, d.error) for d in deliveries]


@pytest.mark.parametrize("own_client", ["url", "resp3 url", "caller's client"])
def test_entries_with_other_fields_read_alike_by_each_client(redis_url: str, namespace: str, own_client: str) -> None:
    """A URL asking for RESP3 (`?protocol=3`) overrides the bus's RESP2: its replies keep redis-py's parsed shape."""
    caller = redis.Redis.from_url(redis_url, protocol=2)
    sep = "&" if "?" in redis_url else "?"
    target = {"url": redis_url, "resp3 url": f"{redis_url}{sep}protocol=3", "caller's client": caller}[own_client]
    bus = RedisStreamsBus(target, namespace=namespace)
    try:
        bus.ensure_group("t", "g")
        key = bus.key("t")
        first, second = encode(sample_envelope(1)), encode(sample_envelope(2))
        caller.xadd(key, {FIELD: first})
        caller.xadd(key, {b"note": b"x", FIELD: second})  # our field, but not alone and not first
        caller.xadd(key, {b"note": b"x", b"other": b"y"})  # not ours at all
        got = bus.read(["t"], "g", "c", count=10)
        assert shown(got) == [
            ("env-1", first, None),
            ("env-2", second, None),
            (None, b"", "entry has no 'm' field: ['note', 'other']"),
        ]
        assert [d.deliveries for d in got] == [1, 1, 1]
        assert bus.ack("g", got) == 3
    finally:
        bus.close()
        caller.close()
