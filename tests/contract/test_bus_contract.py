"""The Bus contract: every backend (memory, Redis Streams on a real server) must pass the same suite."""

from __future__ import annotations

import threading
import time

import orjson
import pytest

from coalition.bus.base import Bus, Delivery
from coalition.bus.consumer import Consumer, MemoryIdempotencyStore
from coalition.bus.envelope import Envelope
from coalition.bus.messages import DeadLettered
from coalition.bus.testing import sample_envelope
from coalition.bus.topics import DEAD_LETTERS

pytestmark = pytest.mark.contract

TOPIC = "observations"
OTHER = "proposals"
IDLE_MS = 40  # how long an entry must sit unacknowledged before another consumer may reclaim it


def wait_idle() -> None:
    time.sleep(IDLE_MS / 1000 * 1.5)


class Effects:
    """A handler that records each envelope it applied, and fails for the ids it is told to."""

    def __init__(self, poison: frozenset[str] = frozenset()) -> None:
        self.applied: list[str] = []
        self.poison = poison

    def __call__(self, envelope: Envelope) -> None:
        if envelope.id in self.poison:
            raise RuntimeError(f"cannot handle {envelope.id}")
        self.applied.append(envelope.id)


def consumer(bus: Bus, effects: Effects, store: MemoryIdempotencyStore, name: str = "c1", **kw: object) -> Consumer:
    options: dict[str, object] = {"min_idle_ms": IDLE_MS, "max_deliveries": 3} | kw
    return Consumer(
        bus,
        topics=[TOPIC],
        group="g",
        name=name,
        handler=effects,
        store=store,
        **options,  # type: ignore[arg-type]
    )


def dead_letters(bus: Bus) -> list[DeadLettered]:
    payloads = [d.envelope.payload for d in bus.range(DEAD_LETTERS) if d.envelope is not None]
    letters = [p for p in payloads if isinstance(p, DeadLettered)]
    assert len(letters) == len(payloads) == bus.length(DEAD_LETTERS)
    return letters


class TestPublishAndRead:
    """Publishing, reading through a group and acknowledging."""

    def test_round_trip_preserves_envelopes(self, bus: Bus) -> None:
        """What a consumer reads is equal to what was published, with delivery count 1."""
        sent = [sample_envelope(n) for n in range(5)]
        ids = [bus.publish(TOPIC, envelope) for envelope in sent]
        got = bus.read([TOPIC], "g", "c1")
        assert [d.envelope for d in got] == sent
        assert [d.broker_id for d in got] == ids
        assert all(d.ok and d.deliveries == 1 and d.topic == TOPIC and d.error is None for d in got)
        assert bus.ack("g", got) == 5
        assert bus.pending_count(TOPIC, "g") == 0

    def test_publish_many_keeps_order_and_returns_increasing_ids(self, bus: Bus) -> None:
        """publish_many appends in order and returns one broker id per item."""
        sent = [sample_envelope(n) for n in range(20)]
        ids = bus.publish_many([(TOPIC, e) for e in sent])
        assert len(ids) == 20
        assert len(set(ids)) == 20
        assert [d.broker_id for d in bus.range(TOPIC)] == ids
        assert [d.envelope for d in bus.read([TOPIC], "g", "c1")] == sent

    def test_read_delivers_only_new_entries(self, bus: Bus) -> None:
        """A second read does not hand out what the group already received."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(3)])
        first = bus.read([TOPIC], "g", "c1")
        assert len(first) == 3
        assert bus.read([TOPIC], "g", "c1") == []
        bus.publish(TOPIC, sample_envelope(3))
        assert [d.envelope.id for d in bus.read([TOPIC], "g", "c1") if d.envelope] == ["env-3"]

    def test_count_limits_each_read(self, bus: Bus) -> None:
        """count bounds the entries one read returns from a topic."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(10)])
        assert len(bus.read([TOPIC], "g", "c1", count=4)) == 4
        assert len(bus.read([TOPIC], "g", "c1", count=100)) == 6

    def test_multiple_topics_in_one_read(self, bus: Bus) -> None:
        """One read over two topics returns the entries of both, each tagged with its topic."""
        bus.publish(TOPIC, sample_envelope(1))
        bus.publish(OTHER, sample_envelope(2))
        got = {d.topic: d.envelope.id for d in bus.read([TOPIC, OTHER], "g", "c1") if d.envelope}
        assert got == {TOPIC: "env-1", OTHER: "env-2"}

    def test_groups_are_independent(self, bus: Bus) -> None:
        """Each group receives every entry; acking in one group leaves the other's pending list alone."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(4)])
        a = bus.read([TOPIC], "ga", "c")
        b = bus.read([TOPIC], "gb", "c")
        assert [d.envelope for d in a] == [d.envelope for d in b]
        assert bus.ack("ga", a) == 4
        assert bus.pending_count(TOPIC, "ga") == 0
        assert bus.pending_count(TOPIC, "gb") == 4

    def test_group_created_at_the_end_skips_history(self, bus: Bus) -> None:
        """ensure_group(from_start=False) delivers only entries published afterwards."""
        bus.publish(TOPIC, sample_envelope(1))
        bus.ensure_group(TOPIC, "late", from_start=False)
        bus.ensure_group(TOPIC, "late", from_start=False)  # idempotent
        bus.publish(TOPIC, sample_envelope(2))
        assert [d.envelope.id for d in bus.read([TOPIC], "late", "c") if d.envelope] == ["env-2"]

    def test_two_consumers_share_the_work_without_overlap(self, bus: Bus) -> None:
        """Within one group, an entry goes to exactly one consumer."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(30)])
        seen: dict[str, list[str]] = {"c1": [], "c2": []}
        while True:
            got = {"c1": bus.read([TOPIC], "g", "c1", count=7), "c2": bus.read([TOPIC], "g", "c2", count=5)}
            if not any(got.values()):
                break
            for name, batch in got.items():
                seen[name] += [d.broker_id for d in batch]
        assert seen["c1"]
        assert seen["c2"]
        assert set(seen["c1"]).isdisjoint(seen["c2"])
        assert sorted(seen["c1"] + seen["c2"]) == sorted(d.broker_id for d in bus.range(TOPIC))

    def test_ack_is_idempotent(self, bus: Bus) -> None:
        """Acking twice counts once; pending drains to zero."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(3)])
        got = bus.read([TOPIC], "g", "c1")
        assert bus.pending_count(TOPIC, "g") == 3
        assert bus.ack("g", got) == 3
        assert bus.ack("g", got) == 0
        assert bus.pending_count(TOPIC, "g") == 0

    def test_length_and_range(self, bus: Bus) -> None:
        """length counts entries; range lists them in order without a group (delivery count 0)."""
        assert bus.length(TOPIC) == 0
        assert bus.range(TOPIC) == []
        ids = bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(5)])
        assert bus.length(TOPIC) == 5
        every = bus.range(TOPIC)
        assert [d.broker_id for d in every] == ids
        assert all(d.deliveries == 0 for d in every)
        assert [d.broker_id for d in bus.range(TOPIC, start=ids[1], end=ids[3])] == ids[1:4]
        assert len(bus.range(TOPIC, count=2)) == 2

    def test_pending_count_of_unknown_group_is_zero(self, bus: Bus) -> None:
        """Asking about a group or topic that does not exist is not an error."""
        assert bus.pending_count("nowhere", "nobody") == 0

    def test_blocking_read_wakes_up_on_publish(self, bus: Bus) -> None:
        """A read with block_ms returns as soon as something is published."""
        bus.ensure_group(TOPIC, "g")
        timer = threading.Timer(0.05, lambda: bus.publish(TOPIC, sample_envelope(1)))
        timer.start()
        started = time.monotonic()
        got = bus.read([TOPIC], "g", "c1", block_ms=2000)
        timer.join()
        assert [d.envelope.id for d in got if d.envelope] == ["env-1"]
        assert time.monotonic() - started < 1.5

    def test_blocking_read_times_out_empty(self, bus: Bus) -> None:
        """A read with block_ms on a quiet topic returns nothing after about block_ms."""
        started = time.monotonic()
        assert bus.read([TOPIC], "g", "c1", block_ms=60) == []
        assert 0.04 <= time.monotonic() - started < 1.0


class TestReclaim:
    """Entries left pending by a dead consumer are taken over after min_idle_ms."""

    def test_fresh_entries_are_not_reclaimed(self, bus: Bus) -> None:
        """An entry younger than min_idle_ms stays with its consumer."""
        bus.publish(TOPIC, sample_envelope(1))
        assert len(bus.read([TOPIC], "g", "c1")) == 1
        assert bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=10_000) == []

    def test_delivery_count_increases_on_each_reclaim(self, bus: Bus) -> None:
        """XAUTOCLAIM semantics: every reclaim bumps the delivery count and moves ownership."""
        bus.publish(TOPIC, sample_envelope(1))
        bus.read([TOPIC], "g", "c1")
        counts = []
        for name in ("c2", "c3"):
            wait_idle()
            reclaimed = bus.reclaim_stale([TOPIC], "g", name, min_idle_ms=IDLE_MS)
            assert [d.envelope.id for d in reclaimed if d.envelope] == ["env-1"]
            counts.append(reclaimed[0].deliveries)
        assert counts == [2, 3]
        assert bus.ack("g", reclaimed) == 1
        assert bus.pending_count(TOPIC, "g") == 0

    def test_killed_consumer_work_is_reclaimed_and_applied_once(self, bus: Bus) -> None:
        """c1 reads and dies before acking; c2 reclaims after min_idle and applies each message once."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(10)])
        assert len(bus.read([TOPIC], "g", "c1", count=6)) == 6  # c1 dies holding 6
        effects, store = Effects(), MemoryIdempotencyStore()
        patient = consumer(bus, effects, store, name="c2", min_idle_ms=60_000)  # a loaded CI machine stays < 60 s
        first = patient.poll()
        assert first.processed == 4  # only the never-delivered ones: c1's are not idle yet
        wait_idle()
        second = consumer(bus, effects, store, name="c2").poll()  # now past IDLE_MS: c1's entries are reclaimed
        assert second.processed == 6
        assert sorted(effects.applied) == sorted(f"env-{n}" for n in range(10))
        assert bus.pending_count(TOPIC, "g") == 0

    def test_crash_between_commit_and_ack_has_one_effect(self, bus: Bus) -> None:
        """A consumer that dies after its commit but before its ack: the redelivery is a duplicate, not an effect."""

        class Crash(Exception):
            pass

        def crash(_: Delivery) -> None:
            raise Crash

        bus.publish(TOPIC, sample_envelope(1))
        effects, store = Effects(), MemoryIdempotencyStore()
        with pytest.raises(Crash):
            consumer(bus, effects, store, name="c1", crash_after_commit=crash).poll()
        assert effects.applied == ["env-1"]
        assert bus.pending_count(TOPIC, "g") == 1
        wait_idle()
        result = consumer(bus, effects, store, name="c2").poll()
        assert (result.processed, result.duplicates) == (0, 1)
        assert effects.applied == ["env-1"]
        assert bus.pending_count(TOPIC, "g") == 0


class TestIdempotentConsumer:
    """The consumer loop: exactly-once effects, dead letters, and a stream that keeps flowing."""

    def test_same_envelope_published_twice_has_one_effect(self, bus: Bus) -> None:
        """A producer retry appends a second entry; dedupe is on the envelope id, not the broker id."""
        envelope = sample_envelope(7)
        first, second = bus.publish(TOPIC, envelope), bus.publish(TOPIC, envelope)
        assert first != second
        effects, store = Effects(), MemoryIdempotencyStore()
        result = consumer(bus, effects, store).poll()
        assert (result.processed, result.duplicates) == (1, 1)
        assert effects.applied == ["env-7"]
        assert bus.pending_count(TOPIC, "g") == 0

    def test_poison_message_is_dead_lettered_and_the_stream_keeps_flowing(self, bus: Bus) -> None:
        """A handler that always raises: retried max_deliveries times, then a DeadLettered message, then acked."""
        effects, store = Effects(poison=frozenset({"env-2"})), MemoryIdempotencyStore()
        worker = consumer(bus, effects, store, max_deliveries=3)
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(1, 4)])
        results = [worker.poll()]
        for n in range(4, 8):
            wait_idle()
            bus.publish(TOPIC, sample_envelope(n))
            results.append(worker.poll())
        assert [r.failed for r in results] == [1, 1, 1, 0, 0]
        assert sum(r.dead_lettered for r in results) == 1
        assert effects.applied == [f"env-{n}" for n in (1, 3, 4, 5, 6, 7)]
        (letter,) = dead_letters(bus)
        assert (letter.topic, letter.group, letter.envelope_id, letter.deliveries) == (TOPIC, "g", "env-2", 4)
        assert "RuntimeError: cannot handle env-2" in letter.reason
        assert bus.pending_count(TOPIC, "g") == 0

    @pytest.mark.parametrize(
        "raw",
        [
            b"\x00\xffnot json at all",
            b"[1, 2, 3]",
            orjson.dumps({"id": "x", "type": "no.such.type", "payload": {}}),
            orjson.dumps(
                {
                    "id": "x",
                    "type": "observation",
                    "source": "s",
                    "run_id": "run-9",
                    "superstep": 0,
                    "sim_time": "2025-01-01T00:00:00Z",
                    "correlation_id": "x",
                    "payload": {"kind": ""},
                }
            ),
        ],
        ids=["garbage", "not-an-object", "unknown-type", "wrong-payload"],
    )
    def test_malformed_message_is_dead_lettered_never_crashes(self, bus: Bus, raw: bytes) -> None:
        """Bytes that are not a valid envelope come back as a failed Delivery and go straight to dead letters."""
        bus.publish_raw(TOPIC, raw)
        bus.publish(TOPIC, sample_envelope(1))
        (bad, good) = bus.range(TOPIC)
        assert bad.envelope is None
        assert bad.error
        assert bad.raw == raw
        assert good.ok
        effects, store = Effects(), MemoryIdempotencyStore()
        result = consumer(bus, effects, store).poll()
        assert (result.processed, result.dead_lettered) == (1, 1)
        assert effects.applied == ["env-1"]
        (letter,) = dead_letters(bus)
        assert letter.envelope_id is None
        assert letter.reason.startswith("undecodable")
        assert letter.broker_id == bad.broker_id
        assert len(letter.raw_sha256) == 64
        assert bus.pending_count(TOPIC, "g") == 0

    def test_pending_drains_to_zero_over_many_messages(self, bus: Bus) -> None:
        """Two consumers draining 500 messages in small batches: all applied once, nothing left pending."""
        bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(500)])
        effects, store = Effects(), MemoryIdempotencyStore()
        workers = [consumer(bus, effects, store, name=name) for name in ("c1", "c2")]
        for _ in range(100):
            if sum(w.poll(count=25).handled for w in workers) == 0:
                break
        assert sorted(effects.applied) == sorted(f"env-{n}" for n in range(500))
        assert bus.pending_count(TOPIC, "g") == 0
