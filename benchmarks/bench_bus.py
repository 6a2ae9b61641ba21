"""Bus throughput and latency: raw redis-py vs RedisStreamsBus on the same server, and the MemoryBus.

Every figure moves 1 KB envelopes through publish → group read (COUNT 100) → ack. The bus figures include
the codec (encode on publish, decode + validation on read); "redis-py raw + codec" shows how much of the gap
to raw redis-py is the codec rather than the bus.

Every timed run starts from a collected heap (`gc.collect()`): building the fixtures leaves a full garbage
collection owing, and without this it lands in whichever run first allocates enough, i.e. in a bus run (the
raw runs hardly allocate), billing it a pass over the benchmark's own 5,000 envelopes (10-25 ms, a fifth of a run).
Once built, the fixtures are frozen (`gc.freeze()`), so that collecting before each turn does not walk them again.

The four Redis figures are measured alike (`interleaved_rates`): in each round every lane moves the same envelopes
on a stream of its own, in turns of a tenth of them, taking turns in an order that rotates, and at the end of the
round every lane deletes what it wrote. Bus rounds used to leave their entries in Redis (about 130 MB a round at
full size) while raw rounds deleted theirs, so each raw round ran on memory the allocator had just freed and each
bus round grew the server; and whole runs one after the other let a burst of load from elsewhere on a shared
machine (seconds long) fall on one figure and not the others.
"""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.harness import Measurement, percentile, repeat
from coalition.bus.base import Bus, Delivery
from coalition.bus.batch_records import RecordBook
from coalition.bus.codec import decode, encode
from coalition.bus.embedded import EmbeddedRedis
from coalition.bus.envelope import Envelope
from coalition.bus.keys import Keyring
from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import FIELD, RedisStreamsBus
from coalition.bus.signing import SignedBus, Verifier, sign_wire
from coalition.bus.testing import sample_envelope

SECTION = "bus"
LOCAL_REDIS = "redis://127.0.0.1:6379/0"
BATCH = 100
TOPIC = "observations"
TURNS = 10  # turns per round of the interleaved Redis lanes (5,000 envelopes each at full size)


def kilobyte_envelopes(n: int) -> list[Envelope]:
    """n distinct envelopes of about 1 KB on the wire."""
    filler = "x" * 850
    return [sample_envelope(i, data={"i": i, "blob": filler}) for i in range(n)]


@contextmanager
def redis_server() -> Iterator[tuple[str, str]]:
    """(url, where) of the local redis-server if it answers, else of a private one for the run."""
    client = redis.Redis.from_url(LOCAL_REDIS, protocol=2, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        local = bool(client.ping())
    except redis.RedisError:
        local = False
    finally:
        client.close()
    if local:
        yield LOCAL_REDIS, "redis-server at 127.0.0.1:6379"
        return
    with (
        tempfile.TemporaryDirectory(prefix="coalition-bench-") as tmp,
        EmbeddedRedis(Path(tmp), appendonly=False) as server,
    ):
        yield server.url, "embedded redis-server (unix socket, AOF off)"


Timed = Callable[[int, int], float]  # a lane's run over envelopes [start, stop): seconds spent


@contextmanager
def raw_lane(url: str, payloads: list[bytes], *, with_codec: list[Envelope] | None = None) -> Iterator[Timed]:
    """Pipelined XADD, then XREADGROUP COUNT 100 + XACK, with plain redis-py (optionally + codec), on a stream of its
    own that is deleted when the lane closes."""
    client = redis.Redis.from_url(url, protocol=2)
    key = f"bench-{uuid.uuid4().hex[:8]}:{TOPIC}"
    client.xgroup_create(key, "g", id="0", mkstream=True)
    decoded: list[Envelope] = []

    def timed(begin: int, stop: int) -> float:
        gc.collect()
        started = time.perf_counter()
        for start in range(begin, stop, BATCH):
            pipe = client.pipeline(transaction=False)
            if with_codec is not None:
                for envelope in with_codec[start : min(start + BATCH, stop)]:
                    pipe.xadd(key, {FIELD: encode(envelope)}, maxlen=1_000_000, approximate=True)
            else:
                for data in payloads[start : min(start + BATCH, stop)]:
                    pipe.xadd(key, {FIELD: data}, maxlen=1_000_000, approximate=True)
            pipe.execute()
        got = 0
        while got < stop - begin:
            reply = client.xreadgroup("g", "c", {key: ">"}, count=BATCH)
            entries = reply[0][1]
            if with_codec is not None:  # a batch is kept until the next read, as a consumer (and bus_lane) does
                decoded[:] = [decode(fields[FIELD]) for _, fields in entries]
            client.xack(key, "g", *[entry_id for entry_id, _ in entries])
            got += len(entries)
        return time.perf_counter() - started

    try:
        yield timed
    finally:
        client.delete(key)
        client.close()


@contextmanager
def bus_lane(bus: Bus, envelopes: list[Envelope], *, clean: Callable[[], object] | None = None) -> Iterator[Timed]:
    """publish_many (batches of 100), then read COUNT 100 + ack, through the Bus port, on a topic of its own; `clean`
    (when given) deletes what the lane wrote when it closes, as a raw lane deletes its stream."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    topic = f"{TOPIC}-{uuid.uuid4().hex[:8]}"
    bus.ensure_group(topic, group)

    def timed(begin: int, stop: int) -> float:
        gc.collect()
        started = time.perf_counter()
        for start in range(begin, stop, BATCH):
            bus.publish_many([(topic, envelope) for envelope in envelopes[start : min(start + BATCH, stop)]])
        got = 0
        while got < stop - begin:
            deliveries = bus.read([topic], group, "c", count=BATCH)
            bus.ack(group, deliveries)
            got += len(deliveries)
        return time.perf_counter() - started

    try:
        yield timed
    finally:
        if clean is not None:
            clean()


def interleaved_rates(
    lanes: Sequence[Callable[[], AbstractContextManager[Timed]]], n: int, rounds: int
) -> list[list[float]]:
    """events/s of each lane in each round. A round opens every lane, runs them in turns of `n // TURNS` envelopes
    (the order rotated at every turn and every round, so that no lane always follows the same one) until each has moved
    n, then closes them (each deletes what it wrote). Load from elsewhere on a shared machine lasting a second or more
    then hits every lane alike, where whole runs one after the other let a burst fall on one of them."""
    turn = max(BATCH, n // TURNS // BATCH * BATCH)
    results: list[list[float]] = []
    for r in range(rounds):
        with ExitStack() as stack:
            timers = [stack.enter_context(lane()) for lane in lanes]
            spent = [0.0] * len(timers)
            for k, begin in enumerate(range(0, n, turn)):
                shift = (k + r) % len(timers)
                for i in [*range(shift, len(timers)), *range(shift)]:
                    spent[i] += timers[i](begin, min(begin + turn, n))
        results.append([n / seconds for seconds in spent])
    return results


def bus_rate(bus: Bus, envelopes: list[Envelope]) -> float:
    """events/s of one run of `bus_lane` over every envelope."""
    with bus_lane(bus, envelopes) as timed:
        return len(envelopes) / timed(0, len(envelopes))


def signed(bus: Bus, keys: Keyring) -> SignedBus:
    """The bus as a run uses it: signing what it publishes, verifying what it reads (a fresh verifier: no cache
    carried over from an earlier round, where the same bytes verified already)."""
    return SignedBus(bus, keys, Verifier(keys.directory(), run_id="run-test"))


def sign_verify_cost(keys: Keyring, envelopes: list[Envelope], batch: int, *, wire: bool = True) -> float:
    """µs per envelope to sign in batches of `batch` (one Ed25519 signature per batch) and verify each envelope.

    wire=True is the Redis path: the signer writes the wire bytes and the verifier checks the bytes it received, as
    one read of the batch; wire=False hands the verifier each envelope object alone, so it encodes the signed bytes
    again and checks the first against the batch record (in memory here), the others against the leaves it proved."""
    key = keys.private("world")
    records = RecordBook()
    verifier = Verifier(keys.directory(), run_id="run-test", records=records)
    gc.collect()
    started = time.perf_counter()
    for start in range(0, len(envelopes), batch):
        signed_batch = sign_wire(envelopes[start : start + batch], key, records=records)
        if wire:  # as a consumer's read: the deliveries of one read, checked together
            read = [Delivery(TOPIC, f"{start + i}-0", 1, e, data) for i, (e, data) in enumerate(signed_batch)]
            if not all(d.ok for d in verifier.checked(read)):
                raise AssertionError("a signed envelope did not verify")
        elif any(verifier.problem(envelope) is not None for envelope, _ in signed_batch):
            raise AssertionError("a signed envelope did not verify")
    return (time.perf_counter() - started) / len(envelopes) * 1e6


def ed25519_cost(rounds: int) -> float:
    """µs for one bare Ed25519 signature and its verification over a 60-byte message (about what a batch's costs):
    the floor an envelope signed on its own would pay."""
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    message = b"coalition envelope batch v1\n" + bytes(32)
    gc.collect()
    started = time.perf_counter()
    for _ in range(rounds):
        public.verify(key.sign(message), message)
    return (time.perf_counter() - started) / rounds * 1e6


def one_at_a_time_latency(bus: Bus, envelopes: list[Envelope]) -> list[float]:
    """µs from publish to ack for one message at a time (publish, read it back, ack)."""
    group = f"g-{uuid.uuid4().hex[:8]}"
    topic = f"{TOPIC}-{uuid.uuid4().hex[:8]}"
    bus.ensure_group(topic, group)
    gc.collect()
    samples = []
    for envelope in envelopes:
        started = time.perf_counter()
        bus.publish(topic, envelope)
        deliveries = bus.read([topic], group, "c", count=1)
        bus.ack(group, deliveries)
        samples.append((time.perf_counter() - started) * 1e6)
    return samples


def run(quick: bool) -> list[Measurement]:
    """The bus figures; quick=True keeps the whole run under ~20 s."""
    n = 5_000 if quick else 50_000
    repeats = 3 if quick else 5
    latency_samples = 500 if quick else 5_000
    envelopes = kilobyte_envelopes(n)
    payloads = [encode(envelope) for envelope in envelopes]
    size = sum(len(p) for p in payloads) // n
    results: list[Measurement] = []

    # the fixtures are frozen out of the collector: a turn's gc.collect() no longer walks them (about 0.15 s at full
    # size, longer than the turn it precedes), and a collection during a turn walks what the turns allocated
    gc.collect()
    gc.freeze()
    try:
        keys = Keyring.ephemeral(["world"])
        with redis_server() as (url, where):
            redis_bus = RedisStreamsBus(url, namespace=f"bench-{uuid.uuid4().hex[:8]}")
            try:
                # interleaved turn by turn (see interleaved_rates); each lane deletes what it wrote after a round
                rounds = interleaved_rates(
                    [
                        lambda: raw_lane(url, payloads),
                        lambda: raw_lane(url, payloads, with_codec=envelopes),
                        lambda: bus_lane(redis_bus, envelopes, clean=redis_bus.delete_namespace),
                        lambda: bus_lane(signed(redis_bus, keys), envelopes, clean=redis_bus.delete_namespace),
                    ],
                    n,
                    repeats,
                )
                redis_latency = one_at_a_time_latency(redis_bus, envelopes[:latency_samples])
            finally:
                redis_bus.delete_namespace()
                redis_bus.close()
        raw, raw_codec, streams, streams_signed = (_spread([r[i] for r in rounds]) for i in range(4))
        sample = envelopes[: min(n, 2_000)]
        # interleaved like the bus rounds: the floor and the envelope costs see the same load
        costs = [
            (
                ed25519_cost(300),
                sign_verify_cost(keys, sample, BATCH),
                sign_verify_cost(keys, sample, BATCH, wire=False),
                sign_verify_cost(keys, sample[:300], 1),
            )
            for _ in range(repeats)
        ]
        floor, batched, objects, single = (_spread([c[i] for c in costs]) for i in range(4))
        memory = repeat(lambda: bus_rate(MemoryBus(), envelopes), repeats)
        memory_latency = one_at_a_time_latency(MemoryBus(), envelopes[:latency_samples])
    finally:
        gc.unfreeze()

    common = {"section": SECTION, "repeats": repeats}
    note = (
        f"{n} envelopes of {size} B, batches of {BATCH}; {where}; the four Redis figures interleaved: each round runs "
        f"them in turns of {n // TURNS} envelopes (order rotated every turn), each on its own stream, which it deletes "
        "at the end of the round (the bus's too)"
    )
    results.append(Measurement(name="redis-py raw", unit="events/s", **_mlh(raw), notes=note, **common))  # type: ignore[arg-type]
    results.append(
        Measurement(
            name="redis-py raw + codec",
            unit="events/s",
            **_mlh(raw_codec),
            baseline="redis-py raw",
            notes="the same calls plus codec.encode / codec.decode (each decoded batch kept until the next read): "
            "the part of the gap that is serialisation",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="RedisStreamsBus",
            unit="events/s",
            **_mlh(streams),
            baseline="redis-py raw",
            target="≥ 70% of raw redis-py",
            target_ratio=0.7,
            notes="publish_many → read → ack, codec included (encode + pydantic validation on read)",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="RedisStreamsBus, signed",
            unit="events/s",
            **_mlh(streams_signed),
            baseline="redis-py raw",
            target="≥ 60% of raw redis-py",
            target_ratio=0.6,
            notes="the same through SignedBus: one Ed25519 signature per batch of 100 (v4 stamps, the batch's record "
            "written in the same transaction), every envelope verified on read; the lane publishes and reads through "
            "one SignedBus, as one process of a run does, so it reads back batches it signed: bytes equal to those it "
            "wrote are accepted by comparison, any others hashed leaf by leaf (another process's verifier hashes every "
            "leaf and checks each batch's signature once over their digest); a fresh verifier per round, so nothing "
            "verified in an earlier round is reused",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="Ed25519 sign + verify (bare)",
            unit="µs",
            **_mlh(floor),
            higher_is_better=False,
            notes="one signature and one verification of a 60-byte message with the `cryptography` package: the floor "
            "of signing each envelope on its own",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="sign + verify per envelope",
            unit="µs",
            **_mlh(batched),
            baseline="Ed25519 sign + verify (bare)",
            higher_is_better=False,
            target="≤ 25 µs",
            target_absolute=25,
            notes=f"batches of {BATCH}: canonical bytes encoded once, the wire bytes are those bytes with the stamp "
            "spliced in; one Ed25519 signature and one verification per batch; verified as a consumer's read of "
            f"{BATCH} deliveries is (Verifier.checked: a whole batch checks the digest of the received bytes' "
            "leaves; a partial one checks them against the batch record); decode excluded "
            "(the codec's cost, signed or not)",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="sign + verify per envelope, from objects",
            unit="µs",
            **_mlh(objects),
            baseline="Ed25519 sign + verify (bare)",
            higher_is_better=False,
            notes="the same, but each envelope checked on its own from the object without its bytes (an "
            "in-process bus): encoded again, its leaf found in the batch record proven by the first",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="sign + verify per envelope, unbatched",
            unit="µs",
            **_mlh(single),
            baseline="Ed25519 sign + verify (bare)",
            higher_is_better=False,
            notes="one Ed25519 signature and verification per envelope (what batching saves)",
            **common,  # type: ignore[arg-type]
        )
    )
    results.append(
        Measurement(
            name="MemoryBus",
            unit="events/s",
            **_mlh(memory),
            target="≥ 100k events/s",
            target_absolute=100_000,
            notes="publish_many → read → ack in one process (envelopes shared, not re-encoded)",
            **common,  # type: ignore[arg-type]
        )
    )
    for backend, samples in (("RedisStreamsBus", redis_latency), ("MemoryBus", memory_latency)):
        for pct in (50, 99):
            value = percentile(samples, pct)
            results.append(
                Measurement(
                    section=SECTION,
                    name=f"{backend} publish→ack latency p{pct}",
                    unit="µs",
                    median=value,
                    low=value,
                    high=value,
                    repeats=1,
                    higher_is_better=False,
                    notes=f"{len(samples)} messages one at a time (publish, read, ack)",
                )
            )
    return results


def _spread(values: list[float]) -> tuple[float, float, float]:
    return statistics.median(values), min(values), max(values)


def _mlh(figures: tuple[float, float, float]) -> dict[str, float]:
    median, low, high = figures
    return {"median": median, "low": low, "high": high}


if __name__ == "__main__":
    for m in run(quick=True):
        print(f"{m.name:40} {m.median:>12,.0f} {m.unit:9} [{m.low:,.0f}–{m.high:,.0f}]  {m.notes}")
