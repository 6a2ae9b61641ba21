"""RedisStreamsBus.publish_many on a real redis-server: one script call appends every entry in order, and each
stream a call touched is trimmed to about `maxlen` (approximate trimming drops whole stream nodes only)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from coalition.bus.envelope import Envelope
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.integration

NODE = 100  # redis-server's default stream-node-max-entries: approximate trimming keeps up to one node more


@pytest.fixture
def bus_of() -> Iterator[list[RedisStreamsBus]]:
    made: list[RedisStreamsBus] = []
    yield made
    for bus in made:
        bus.delete_namespace()
        bus.close()


def two_topics(n: int) -> list[tuple[str, Envelope]]:
    return [("even" if i % 2 == 0 else "odd", sample_envelope(i)) for i in range(n)]


class TestPublishMany:
    """Order, ids and trimming of one publish_many call that writes to two streams."""

    def test_each_stream_a_call_wrote_is_trimmed_to_about_maxlen(
        self, redis_url: str, bus_of: list[RedisStreamsBus]
    ) -> None:
        bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}", maxlen=150)
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
        self, redis_url: str, bus_of: list[RedisStreamsBus]
    ) -> None:
        bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}", maxlen=None)
        bus_of.append(bus)
        ids = bus.publish_many(two_topics(1500))
        assert bus.length("even") == bus.length("odd") == 750
        evens = [d.broker_id for d in bus.range("even")]
        assert evens == ids[0::2]

    def test_runs_of_one_topic_keep_their_order_and_ids(self, redis_url: str, bus_of: list[RedisStreamsBus]) -> None:
        """Consecutive entries bound for one stream travel as one run of the script's arguments: runs of every
        length, a topic coming back after another, each entry in its stream and its id in its place."""
        bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
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
