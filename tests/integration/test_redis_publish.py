"""RedisStreamsBus.publish_many on a real redis-server: one round trip appends every entry in order (on one server a
MULTI/EXEC written by hand, on a cluster a script call), and each stream a call touched is trimmed to about `maxlen`
(approximate trimming drops whole stream nodes only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import redis

from coalition.bus.embedded import EmbeddedRedis, free_tcp_port
from coalition.bus.envelope import Envelope
from coalition.bus.errors import BusError
from coalition.bus.keys import Keyring
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.signing import SignedBus, Verifier
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.integration

NODE = 100  # redis-server's default stream-node-max-entries: approximate trimming keeps up to one node more
KEYS = Keyring.ephemeral(["world"])


@pytest.fixture
def bus_of() -> Iterator[list[RedisStreamsBus]]:
    made: list[RedisStreamsBus] = []
    yield made
    for bus in made:
        bus.delete_namespace()
        bus.close()


@pytest.fixture(params=["own", "caller's"])
def target(request: pytest.FixtureRequest, redis_url: str) -> Iterator[str | redis.Redis]:
    """Where a bus publishes: its own client (a MULTI/EXEC written by hand) or a caller's client on the same server
    (the publish script, as on a cluster)."""
    if request.param == "own":
        yield redis_url
        return
    caller = redis.Redis.from_url(redis_url, protocol=2)
    yield caller
    caller.close()


def two_topics(n: int) -> list[tuple[str, Envelope]]:
    return [("even" if i % 2 == 0 else "odd", sample_envelope(i)) for i in range(n)]


class TestPublishMany:
    """Order, ids and trimming of one publish_many call that writes to two streams, on the bus's own client and on a
    caller's."""

    def test_each_stream_a_call_wrote_is_trimmed_to_about_maxlen(
        self, target: str | redis.Redis, bus_of: list[RedisStreamsBus]
    ) -> None:
        bus = RedisStreamsBus(target, namespace=f"test-{uuid.uuid4().hex[:12]}", maxlen=150)
        bus_of.append(bus)
        ids = bus.publish_many(two_topics(2000))
        assert len(ids) == 2000
        for topic in ("even", "odd"):
            assert 150 <= bus.length(topic) <= 150 + NODE
            kept = [d.envelope.id for d in bus.range(topic) if d.envelope is not None]
            numbers = [int(name.removeprefix("env-")) for name in kept]
            assert numbers == sorted(numbers)
            assert numbers[-1] in (1998, 1999)  # the newest stay

    def test_without_maxlen_nothing_is_trimmed_and_ids_follow_the_order(
        self, target: str | redis.Redis, bus_of: list[RedisStreamsBus]
    ) -> None:
        bus = RedisStreamsBus(target, namespace=f"test-{uuid.uuid4().hex[:12]}", maxlen=None)
        bus_of.append(bus)
        ids = bus.publish_many(two_topics(1500))
        assert bus.length("even") == bus.length("odd") == 750
        evens = [d.broker_id for d in bus.range("even")]
        assert evens == ids[0::2]

    def test_runs_of_one_topic_keep_their_order_and_ids(
        self, target: str | redis.Redis, bus_of: list[RedisStreamsBus]
    ) -> None:
        """Consecutive entries bound for one stream travel as one run of the script's arguments: runs of every
        length, a topic coming back after another, each entry in its stream and its id in its place."""
        bus = RedisStreamsBus(target, namespace=f"test-{uuid.uuid4().hex[:12]}")
        bus_of.append(bus)
        topics = ["a"] * 3 + ["b"] * 2 + ["a"] + ["c"] + ["b"] * 4 + ["a"] * 2
        ids = bus.publish_many([(topic, sample_envelope(i)) for i, topic in enumerate(topics)])
        assert len(ids) == len(topics)
        for topic in ("a", "b", "c"):
            read = bus.range(topic)
            assert [d.envelope.id for d in read if d.envelope is not None] == [
                f"env-{i}" for i, t in enumerate(topics) if t == topic
            ]
            assert [d.broker_id for d in read] == [ids[i] for i, t in enumerate(topics) if t == topic]


@pytest.fixture
def no_scripts(tmp_path: Path) -> Iterator[str]:
    """The URL of a private redis-server whose user may run anything but scripts (EVAL, EVALSHA, FCALL)."""
    with EmbeddedRedis(tmp_path, port=free_tcp_port(), appendonly=False) as server:
        admin = redis.Redis.from_url(server.url)
        admin.acl_setuser("noscripts", enabled=True, nopass=True, keys=["*"], commands=["+@all", "-@scripting"])
        admin.close()
        yield server.url.replace("redis://", "redis://noscripts:@", 1)


class TestTransaction:
    """On one server a publish is MULTI, an XADD per entry and EXEC, not a script: a refused command fails the call in
    one line and leaves the connection usable; a dropped connection is reconnected without appending twice."""

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

    def test_a_command_refused_as_it_is_queued_fails_the_call_appends_nothing_and_keeps_the_connection(
        self, no_scripts: str
    ) -> None:
        """A signed publish with a MAXLEN counts its records' holders with an EVAL in the transaction: a user without
        scripting has it refused as it is queued, so EXEC discards the whole transaction, and the call says why."""
        bus = RedisStreamsBus(no_scripts, namespace="tx-refused")
        try:
            signed = SignedBus(bus, KEYS, Verifier(KEYS.directory(), run_id="run-test"))
            with pytest.raises(BusError, match="no permissions to run the 'eval' command") as refused:
                signed.publish_many([("observations", sample_envelope(i)) for i in range(5)])
            assert "\n" not in str(refused.value)
            assert bus.length("observations") == 0
            assert len(bus.publish_many([("observations", sample_envelope(i)) for i in range(3)])) == 3
            assert bus.length("observations") == 3
        finally:
            bus.delete_namespace()
            bus.close()

    def test_a_connection_dropped_between_publishes_is_reconnected_and_nothing_is_appended_twice(
        self, redis_url: str
    ) -> None:
        """A drop while idle, before the next publish is sent. A drop after the server ran EXEC and before its reply
        arrives is retried and appends the chunk again, as the script path's EVALSHA did: consumers deduplicate on the
        envelope id (module docstring); this test does not cover that case."""
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
