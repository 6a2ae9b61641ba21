"""RedisStreamsBus on one server publishes with MULTI/EXEC written by hand, not a script: the same entries, appended
at once; a refused command fails the call in one line and leaves the connection usable; a connection the server
dropped is reconnected without appending anything twice; streams are trimmed to MAXLEN as before."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from coalition.bus.embedded import EmbeddedRedis, free_tcp_port
from coalition.bus.errors import BusError
from coalition.bus.keys import Keyring
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.signing import SignedBus, Verifier
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.integration

KEYS = Keyring.ephemeral(["world"])


@pytest.fixture
def no_scripts(tmp_path: Path) -> Iterator[str]:
    """The URL of a private redis-server whose user may run anything but scripts (EVAL, EVALSHA, FCALL)."""
    with EmbeddedRedis(tmp_path, port=free_tcp_port(), appendonly=False) as server:
        admin = redis.Redis.from_url(server.url)
        admin.acl_setuser("noscripts", enabled=True, nopass=True, keys=["*"], commands=["+@all", "-@scripting"])
        admin.close()
        yield server.url.replace("redis://", "redis://noscripts:@", 1)


class TestPublishTransaction:
    def test_a_publish_runs_no_script(self, no_scripts: str) -> None:
        """Unsigned, and signed without a MAXLEN (with one, the records' holders are counted by a script)."""
        bus = RedisStreamsBus(no_scripts, namespace="tx")
        signing = RedisStreamsBus(no_scripts, namespace="tx-signed", maxlen=None)
        try:
            ids = bus.publish_many([("observations", sample_envelope(i)) for i in range(250)])
            assert len(ids) == 250
            assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
            assert [d.envelope.id for d in bus.range("observations") if d.envelope] == [f"env-{i}" for i in range(250)]
            signed = SignedBus(signing, KEYS, Verifier(KEYS.directory(), run_id="run-test"))
            signed.publish_many([("observations", sample_envelope(i)) for i in range(120)])
            got = SignedBus(signing, KEYS, Verifier(KEYS.directory(), run_id="run-test")).read(
                ["observations"], "g", "c", count=50
            )
            assert [d.error for d in got] == [None] * 50  # a partial read: checked against the batch record
        finally:
            bus.close()
            signing.close()

    def test_a_refused_command_fails_the_call_and_the_connection_stays_in_step(self, redis_url: str) -> None:
        bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
        raw = cast(Any, bus)._r
        try:
            raw.set(bus.key("not-a-stream"), b"x")
            with pytest.raises(BusError, match="WRONGTYPE") as refused:
                bus.publish_many([("observations", sample_envelope(0)), ("not-a-stream", sample_envelope(1))])
            assert "\n" not in str(refused.value)
            assert len(bus.publish_many([("observations", sample_envelope(i)) for i in range(2, 5)])) == 3
            assert bus.length("observations") == 4  # as a script would: what came before the refused entry stays
        finally:
            bus.delete_namespace()
            bus.close()

    def test_a_dropped_connection_is_reconnected_and_nothing_is_appended_twice(self, redis_url: str) -> None:
        name = f"tx-{uuid.uuid4().hex[:12]}"
        bus = RedisStreamsBus(redis_url, namespace=name, client_name=name)
        admin = redis.Redis.from_url(redis_url)
        try:
            bus.publish_many([("observations", sample_envelope(i)) for i in range(10)])
            killed = [admin.client_kill_filter(_id=c["id"]) for c in admin.client_list() if c.get("name") == name]
            assert killed
            assert len(bus.publish_many([("observations", sample_envelope(i)) for i in range(10, 20)])) == 10
            assert bus.length("observations") == 20
        finally:
            admin.close()
            bus.delete_namespace()
            bus.close()

    def test_streams_are_trimmed_to_maxlen(self, redis_url: str) -> None:
        bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}", maxlen=100)
        try:
            for n in range(10):
                bus.publish_many([("observations", sample_envelope(i, kind=f"k{n}")) for i in range(100)])
            assert 100 <= bus.length("observations") < 400  # approximate (~): whole nodes of the stream are dropped
        finally:
            bus.delete_namespace()
            bus.close()
