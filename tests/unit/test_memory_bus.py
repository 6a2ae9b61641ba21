"""What only the in-memory backend and the in-process helpers can show: injected idle time, trimming, wire mode."""

from __future__ import annotations

import threading

import orjson
import pytest

from coalition.bus.base import Bus
from coalition.bus.consumer import Consumer, MemoryIdempotencyStore
from coalition.bus.envelope import Envelope
from coalition.bus.errors import BusError
from coalition.bus.memory import MemoryBus
from coalition.bus.messages import DeadLettered, Observation
from coalition.bus.testing import CapturingBus, capture_messages, sample_envelope
from coalition.bus.topics import DEAD_LETTERS

pytestmark = pytest.mark.unit

TOPIC = "observations"


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TestMemoryBus:
    """Backend details the contract suite cannot reach without sleeping."""

    def test_is_a_bus(self) -> None:
        """MemoryBus satisfies the runtime-checkable Bus protocol."""
        assert isinstance(MemoryBus(), Bus)

    def test_idle_time_comes_from_the_injected_clock(self) -> None:
        """Reclaim looks at the injected clock, so idle time needs no sleep."""
        clock = FakeMonotonic()
        bus = MemoryBus(clock=clock)
        bus.publish(TOPIC, sample_envelope(1))
        bus.read([TOPIC], "g", "c1")
        clock.now += 0.999
        assert bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=1000) == []
        clock.now += 0.001
        (taken,) = bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=1000)
        assert taken.deliveries == 2
        assert bus.pending_consumers(TOPIC, "g") == {"c2": 1}

    def test_reclaim_respects_count(self) -> None:
        """At most `count` entries per topic are claimed in one call."""
        clock = FakeMonotonic()
        bus = MemoryBus(clock=clock)
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(5)])
        bus.read([TOPIC], "g", "c1")
        clock.now += 10
        assert len(bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=0, count=2)) == 2
        assert bus.pending_consumers(TOPIC, "g") == {"c1": 3, "c2": 2}

    def test_maxlen_trims_oldest_and_drops_their_pending_state(self) -> None:
        """With maxlen the log keeps the newest entries; a trimmed pending entry vanishes on reclaim."""
        clock = FakeMonotonic()
        bus = MemoryBus(clock=clock, maxlen=3)
        bus.publish(TOPIC, sample_envelope(0))
        bus.read([TOPIC], "g", "c1")
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(1, 6)])
        assert bus.length(TOPIC) == 3
        assert [d.envelope.id for d in bus.range(TOPIC) if d.envelope] == ["env-3", "env-4", "env-5"]
        clock.now += 10
        assert bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=0) == []
        assert bus.pending_count(TOPIC, "g") == 0
        assert [d.envelope.id for d in bus.read([TOPIC], "g", "c1") if d.envelope] == ["env-3", "env-4", "env-5"]

    def test_wire_mode_encodes_and_hands_out_copies(self) -> None:
        """wire=True stores bytes: raw is the codec's output and each read decodes a fresh, equal envelope."""
        envelope = sample_envelope(1)
        bus = MemoryBus(wire=True)
        bus.publish(TOPIC, envelope)
        (got,) = bus.read([TOPIC], "g", "c1")
        assert got.envelope == envelope
        assert got.envelope is not envelope
        assert orjson.loads(got.raw)["id"] == "env-1"

    def test_default_mode_shares_the_frozen_envelope(self) -> None:
        """Without wire mode the published object is handed out as it is (no re-encoding), raw is empty."""
        envelope = sample_envelope(1)
        bus = MemoryBus()
        bus.publish(TOPIC, envelope)
        (got,) = bus.read([TOPIC], "g", "c1")
        assert got.envelope is envelope
        assert got.raw == b""

    def test_closed_bus_refuses_work(self) -> None:
        """After close, publish and read raise a BusError naming the bus."""
        bus = MemoryBus(namespace="run-1")
        bus.close()
        with pytest.raises(BusError, match="run-1"):
            bus.publish(TOPIC, sample_envelope(1))
        with pytest.raises(BusError, match="closed"):
            bus.read([TOPIC], "g", "c1")

    def test_bad_range_bound_and_count(self) -> None:
        """A malformed id or a non-positive count is a clear error."""
        bus = MemoryBus()
        bus.publish(TOPIC, sample_envelope(1))
        with pytest.raises(BusError, match="bad stream id"):
            bus.range(TOPIC, start="abc")
        with pytest.raises(ValueError, match="count must be positive"):
            bus.read([TOPIC], "g", "c1", count=0)

    def test_concurrent_producers_and_consumers(self) -> None:
        """Four producer threads and two consumer threads: every entry delivered once, ids unique."""
        bus = MemoryBus()
        bus.ensure_group(TOPIC, "g")
        received: list[str] = []
        lock = threading.Lock()
        done = threading.Event()

        def produce(offset: int) -> None:
            for n in range(offset, offset + 500):
                bus.publish(TOPIC, sample_envelope(n))

        def consume(name: str) -> None:
            while not done.is_set() or bus.pending_count(TOPIC, "g") or len(received) < 2000:
                batch = bus.read([TOPIC], "g", name, count=50, block_ms=20)
                bus.ack("g", batch)
                with lock:
                    received.extend(d.envelope.id for d in batch if d.envelope)
                if done.is_set() and not batch:
                    break

        consumers = [threading.Thread(target=consume, args=(f"c{i}",)) for i in range(2)]
        producers = [threading.Thread(target=produce, args=(i * 500,)) for i in range(4)]
        for thread in consumers + producers:
            thread.start()
        for thread in producers:
            thread.join()
        done.set()
        for thread in consumers:
            thread.join(timeout=10)
        assert sorted(received) == sorted(f"env-{n}" for n in range(2000))
        assert bus.pending_count(TOPIC, "g") == 0


class TestConsumerDetails:
    """Dead-letter details that hold on any backend, shown on the memory one."""

    def test_dead_letter_ids_are_deterministic(self) -> None:
        """The same poison message dead-lettered on two buses gets the same dead-letter envelope id."""
        letter_ids = []
        for _ in range(2):
            bus = MemoryBus(clock=FakeMonotonic())
            bus.publish(TOPIC, sample_envelope(9))
            consumer = Consumer(
                bus,
                topics=[TOPIC],
                group="g",
                name="c",
                handler=lambda e: None,
                store=MemoryIdempotencyStore(),
                min_idle_ms=0,
            )
            bus.read([TOPIC], "g", "dead")  # delivery 1 goes to a consumer that dies
            for _ in range(5):
                bus.reclaim_stale([TOPIC], "g", "dead", min_idle_ms=0)  # deliveries 2..6
            assert consumer.poll().dead_lettered == 1  # reclaim makes it the 7th delivery > 5
            (letter,) = bus.range(DEAD_LETTERS)
            assert letter.envelope is not None
            assert letter.envelope.causation_id == "env-9"
            letter_ids.append(letter.envelope.id)
        assert letter_ids[0] == letter_ids[1]

    def test_undecodable_message_keeps_its_run_id_when_readable(self) -> None:
        """A dead letter for bytes that still name a run_id is filed under that run."""
        bus = MemoryBus()
        bus.publish_raw(TOPIC, orjson.dumps({"run_id": "run-42", "type": "nope"}))
        Consumer(
            bus, topics=[TOPIC], group="g", name="c", handler=lambda e: None, store=MemoryIdempotencyStore()
        ).poll()
        (letter,) = bus.range(DEAD_LETTERS)
        assert letter.envelope is not None
        assert letter.envelope.run_id == "run-42"
        assert isinstance(letter.envelope.payload, DeadLettered)
        assert "Field required" in letter.envelope.payload.reason

    def test_a_dead_letter_is_never_dead_lettered_again(self) -> None:
        """A consumer of the dead-letter topic acks garbage there without publishing a new dead letter."""
        bus = MemoryBus()
        bus.publish_raw(DEAD_LETTERS, b"garbage")
        result = Consumer(
            bus,
            topics=[DEAD_LETTERS],
            group="recorder",
            name="r",
            handler=lambda e: None,
            store=MemoryIdempotencyStore(),
        ).poll()
        assert result.dead_lettered == 1
        assert bus.length(DEAD_LETTERS) == 1
        assert bus.pending_count(DEAD_LETTERS, "recorder") == 0

    def test_rejects_bad_settings(self) -> None:
        """No topics or max_deliveries < 1 are refused at construction."""
        bus, store = MemoryBus(), MemoryIdempotencyStore()
        with pytest.raises(ValueError, match="at least one topic"):
            Consumer(bus, topics=[], group="g", name="c", handler=lambda e: None, store=store)
        with pytest.raises(ValueError, match="max_deliveries"):
            Consumer(bus, topics=[TOPIC], group="g", name="c", handler=lambda e: None, store=store, max_deliveries=0)


class TestCapture:
    """capture_messages records what the code under test published, through a real bus."""

    def test_records_publishes_in_order(self) -> None:
        """publish and publish_many are recorded with their topics; payloads can be filtered by class."""
        with capture_messages() as bus:
            bus.publish(TOPIC, sample_envelope(1))
            bus.publish_many([("proposals", sample_envelope(2)), (TOPIC, sample_envelope(3))])
            bus.publish_raw(TOPIC, b"raw")
            assert [e.id for e in bus.envelopes()] == ["env-1", "env-2", "env-3"]
            assert [e.id for e in bus.envelopes(TOPIC)] == ["env-1", "env-3"]
            assert [m.subject for m in bus.messages(Observation)] == ["subject-1", "subject-2", "subject-3"]
            assert bus.types("proposals") == ["observation"]
            assert bus.published_raw == [(TOPIC, b"raw")]
            assert bus.length(TOPIC) == 3  # it is a real bus underneath

    def test_wraps_a_given_bus_and_is_a_bus(self) -> None:
        """CapturingBus delegates to the bus it wraps and satisfies the Bus protocol."""
        inner = MemoryBus()
        capturing = CapturingBus(inner)
        assert isinstance(capturing, Bus)
        capturing.publish(TOPIC, sample_envelope(1))
        got = capturing.read([TOPIC], "g", "c")
        assert [d.envelope for d in got] == [sample_envelope(1)]
        assert capturing.ack("g", got) == 1
        capturing.clear()
        assert capturing.envelopes() == []
        assert inner.length(TOPIC) == 1

    def test_envelope_helper(self) -> None:
        """sample_envelope gives valid, numbered envelopes."""
        envelope = sample_envelope(4, kind="market.snapshot", run_id="r")
        assert isinstance(envelope, Envelope)
        assert (envelope.id, envelope.run_id, envelope.payload.TYPE) == ("env-4", "r", "observation")


class TestKeepAcknowledged:
    """keep_acknowledged=False (what a run uses): an entry lives until every group has acknowledged it."""

    def test_an_entry_goes_when_every_group_has_acked_it(self) -> None:
        bus = MemoryBus(keep_acknowledged=False)
        bus.ensure_group(TOPIC, "a")
        bus.ensure_group(TOPIC, "b")
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(3)])
        bus.ack("a", bus.read([TOPIC], "a", "a1"))
        assert bus.length(TOPIC) == 3  # group b has not read them yet
        taken = bus.read([TOPIC], "b", "b1")
        bus.ack("b", taken[:2])
        assert bus.length(TOPIC) == 1  # the third is still pending for b
        bus.ack("b", taken[2:])
        assert bus.length(TOPIC) == 0

    def test_a_pending_entry_can_still_be_reclaimed_by_another_consumer(self) -> None:
        """Trimming never loses what a dead consumer held: reclaim and redelivery still find it."""
        clock = FakeMonotonic()
        bus = MemoryBus(clock=clock, keep_acknowledged=False)
        bus.ensure_group(TOPIC, "g")
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(2)])
        first, second = bus.read([TOPIC], "g", "dies")
        bus.ack("g", [first])
        clock.now += 60
        (again,) = bus.reclaim_stale([TOPIC], "g", "heir", min_idle_ms=1000)
        assert again.envelope == second.envelope
        assert again.deliveries == 2
        bus.ack("g", [again])
        assert bus.length(TOPIC) == 0

    def test_a_duplicate_ack_and_a_topic_without_groups_change_nothing(self) -> None:
        bus = MemoryBus(keep_acknowledged=False)
        bus.ensure_group(TOPIC, "g")
        bus.publish(TOPIC, sample_envelope(1))
        bus.publish("nobody-reads", sample_envelope(2))
        (taken,) = bus.read([TOPIC], "g", "c")
        assert bus.ack("g", [taken]) == 1
        assert bus.ack("g", [taken]) == 0
        assert bus.length(TOPIC) == 0
        assert bus.length("nobody-reads") == 1

    def test_the_default_keeps_every_entry_as_redis_does(self) -> None:
        bus = MemoryBus()
        bus.ensure_group(TOPIC, "g")
        bus.publish(TOPIC, sample_envelope(1))
        bus.ack("g", bus.read([TOPIC], "g", "c"))
        assert bus.length(TOPIC) == 1
