"""A SignedBus over a real redis-server: the signer hands Redis its wire bytes alone (no signed envelope objects) with
its batches' records, and consumers that read a batch whole, in parts, or shared between the consumers of a group
verify every envelope; an entry altered by one byte is refused, alone, wherever it falls; a batch record that is
missing, altered or another batch's refuses what it would prove, and lives exactly as long as its entries."""

from __future__ import annotations

import binascii
import hashlib
import uuid
from typing import Any, cast

import pytest
import redis
from redis.cluster import key_slot

from coalition.bus import signing
from coalition.bus.base import Delivery, WireBus
from coalition.bus.codec import decode, encode
from coalition.bus.consumer import Consumer, MemoryIdempotencyStore
from coalition.bus.keys import Keyring
from coalition.bus.messages import DeadLettered
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.signing import SignedBus, Stamped, Verifier
from coalition.bus.testing import sample_envelope
from coalition.bus.topics import DEAD_LETTERS

pytestmark = pytest.mark.integration

KEYS = Keyring.ephemeral(["world"])


def signed(bus: RedisStreamsBus) -> SignedBus:
    return SignedBus(bus, KEYS, Verifier(KEYS.directory(), run_id="run-test"))


class TestSignedRedisBus:
    def test_the_entries_are_the_canonical_bytes_of_signed_envelopes(self, redis_bus: RedisStreamsBus) -> None:
        assert isinstance(redis_bus, WireBus)
        signed(redis_bus).publish_many([("observations", sample_envelope(i)) for i in range(7)])
        entries = redis_bus.range("observations")
        assert len(entries) == 7
        for entry in entries:
            assert entry.envelope is not None
            assert entry.envelope.signature is not None
            assert encode(decode(entry.raw)) == entry.raw

    @pytest.mark.parametrize("count", [250, 100, 37, 1])
    def test_whole_and_partial_reads_verify_every_envelope(self, redis_bus: RedisStreamsBus, count: int) -> None:
        signed(redis_bus).publish_many([("observations", sample_envelope(i)) for i in range(250)])
        consumer = signed(redis_bus)
        got = []
        while len(got) < 250:
            read = consumer.read(["observations"], "g", "c", count=count)
            assert read
            got += read
        assert [d.error for d in got] == [None] * 250
        assert [d.envelope.id for d in got if d.envelope is not None] == [f"env-{i}" for i in range(250)]

    def test_two_consumers_sharing_a_group_verify_their_parts(self, redis_bus: RedisStreamsBus) -> None:
        signed(redis_bus).publish_many([("observations", sample_envelope(i)) for i in range(120)])
        first, second = signed(redis_bus), signed(redis_bus)
        got = first.read(["observations"], "g", "a", count=45) + second.read(["observations"], "g", "b", count=100)
        assert len(got) == 120
        assert all(d.ok for d in got)

    @pytest.mark.parametrize("count", [100, 3])
    def test_an_entry_altered_by_one_byte_is_the_only_one_refused(self, redis_bus: RedisStreamsBus, count: int) -> None:
        """Whole (100) or in parts of 3 (each checked against the batch record, which is intact)."""
        batch = signed(redis_bus).stamped([sample_envelope(i) for i in range(8)])
        wires = list(batch.wires)
        wires[5] = wires[5].replace(b"subject-5", b"subject-6")  # the payload, not the stamp
        publish(redis_bus, batch, wires)
        got = read_all(signed(redis_bus), 8, count)
        assert [d.ok for d in got] == [i != 5 for i in range(8)]
        assert got[5].error == "rejected: envelope env-5 does not verify against world's key (forged or altered)"
        assert batch.stamps[5] in wires[5].decode()  # the stamp itself was left as the signer wrote it


def publish(bus: RedisStreamsBus, batch: Stamped, wires: list[bytes] | None = None) -> None:
    """The batch's entries (its own wire bytes, or `wires`) with their records, as a signing bus publishes them."""
    bus.publish_batches([("observations", None, wire) for wire in wires or batch.wires], batch.batches, batch.batch_of)


def read_all(consumer: SignedBus, n: int, count: int) -> list[Delivery]:
    got: list[Delivery] = []
    while len(got) < n:
        read = consumer.read(["observations"], "g", "c", count=count)
        assert read
        got += read
    return got


class TestBatchRecordsOnRedis:
    """A stamp names its batch and carries no audit path: a read holding part of a batch checks it against the batch
    record beside the run's streams, which is never trusted (its digest must carry the batch's signature)."""

    def test_a_partial_read_fetches_the_record_once_and_a_whole_read_none(
        self, redis_bus: RedisStreamsBus, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        signed(redis_bus).publish_many([("observations", sample_envelope(i)) for i in range(100)])
        fetched: list[int] = []
        real = redis_bus.batch_records
        monkeypatch.setattr(redis_bus, "batch_records", lambda sigs: fetched.append(len(sigs)) or real(sigs))
        consumer = signed(redis_bus)
        got = consumer.read(["observations"], "g", "c", count=30) + consumer.read(["observations"], "g", "c", count=70)
        assert [d.error for d in got] == [None] * 100
        assert fetched == [1]  # the first part fetched it; the rest met the proven leaves
        assert signed(redis_bus).read(["observations"], "g2", "c", count=100)[0].ok
        assert fetched == [1]  # a whole read took the leaves from what it read

    @pytest.mark.parametrize("attack", ["missing", "altered", "another batch's", "truncated"])
    def test_a_bad_record_refuses_a_partial_read_and_a_whole_read_needs_none(
        self, redis_bus: RedisStreamsBus, attack: str
    ) -> None:
        producer = signed(redis_bus)
        batch = producer.stamped([sample_envelope(i) for i in range(8)])
        other = producer.stamped([sample_envelope(i, kind="other") for i in range(8)])
        publish(redis_bus, batch)
        signature, leaves = batch.batches[0]
        raw = cast(Any, redis_bus)._r
        if attack == "missing":
            raw.hdel(redis_bus.batch_records_key(), signature)
        elif attack == "altered":
            raw.hset(redis_bus.batch_records_key(), signature, leaves[:40] + bytes([leaves[40] ^ 1]) + leaves[41:])
        elif attack == "another batch's":
            raw.hset(redis_bus.batch_records_key(), signature, other.batches[0][1])
        else:
            raw.hset(redis_bus.batch_records_key(), signature, leaves[:-32])
        got = read_all(signed(redis_bus), 8, 3)
        assert not any(d.ok for d in got)
        reason = {
            "missing": "from world belongs to a batch whose record is missing (trimmed, or never published)",
            "altered": "does not verify against world's key (its batch record is not the signed batch's)",
        }.get(attack, "does not verify against world's key (its batch record is not the signed batch's)")
        assert all(str(d.error).endswith(reason) for d in got)
        assert all(d.ok for d in signed(redis_bus).read(["observations"], "g2", "c", count=100))

    def test_an_index_outside_the_batch_is_refused(self, redis_bus: RedisStreamsBus) -> None:
        batch = signed(redis_bus).stamped([sample_envelope(i) for i in range(4)])
        wires = list(batch.wires)
        stamp = batch.stamps[3]
        wires[3] = wires[3].replace(stamp.encode(), stamp.replace("v4.3.4.", "v4.4.4.", 1).encode())
        publish(redis_bus, batch, wires)
        for count in (100, 1):
            got = signed(redis_bus).read(["observations"], f"g{count}", "c", count=100)
            assert [d.ok for d in got] == [True, True, True, False]
            assert got[3].error == "rejected: envelope env-3 from world names leaf 4 of a batch of 4"

    def test_a_batch_of_another_run_or_key_is_refused_with_its_record(self, redis_bus: RedisStreamsBus) -> None:
        """Batches published with their records: a genuine one of another run (the run check), and one signed with a
        key that is not world's trusted key (its record's digest does not verify)."""
        signed(redis_bus).publish_many([("observations", sample_envelope(i, run_id="run-other")) for i in range(4)])
        impostor = Keyring.ephemeral(["world"])
        SignedBus(redis_bus, impostor, Verifier(impostor.directory())).publish_many(
            [("observations", sample_envelope(i, kind="alert")) for i in range(4)]
        )
        got = read_all(signed(redis_bus), 8, 3)
        assert not any(d.ok for d in got)
        assert all("belongs to run run-other, not run-test (replayed)" in str(d.error) for d in got[:4])
        assert all(
            str(d.error).endswith("does not verify against world's key (its batch record is not the signed batch's)")
            for d in got[4:]
        )

    @pytest.mark.parametrize("client", ["own", "caller's"])
    def test_records_live_as_long_as_their_entries_and_go_with_the_namespace(self, redis_url: str, client: str) -> None:
        """On the bus's own client a publish is a MULTI/EXEC with the holders counted by an EVAL inside it; on a
        caller's client it is the signed publish script: both keep the records exactly as long as their entries."""
        caller = redis.Redis.from_url(redis_url, protocol=2)
        target: str | redis.Redis = redis_url if client == "own" else caller
        bus = RedisStreamsBus(target, namespace=f"test-{uuid.uuid4().hex[:12]}", maxlen=150)
        assert cast(Any, bus)._transactions is (client == "own")
        try:
            producer = signed(bus)
            first = producer.stamped([sample_envelope(i) for i in range(120)])
            publish(bus, first)
            second = producer.stamped([sample_envelope(i, kind="second") for i in range(120)])
            publish(bus, second)
            oldest = bus.range("observations", count=1)[0].envelope
            assert oldest is not None
            assert str(oldest.signature).endswith(b64(first.batches[0][0]))
            assert bus.batch_records([first.batches[0][0], second.batches[0][0]]) == [
                first.batches[0][1],
                second.batches[0][1],
            ]
            got = read_all(signed(bus), bus.length("observations"), 7)  # every kept entry, in parts
            assert all(d.ok for d in got)
            for n in range(3):  # the first batch's entries are trimmed away: its record goes with them
                publish(bus, producer.stamped([sample_envelope(i, kind=f"later-{n}") for i in range(120)]))
            assert bus.batch_records([first.batches[0][0]]) == [None]
            assert bus.delete_namespace() > 0
            assert not cast(Any, bus)._r.exists(bus.batch_records_key())
        finally:
            bus.delete_namespace()
            bus.close()
            caller.close()

    def test_on_a_cluster_the_records_live_in_the_runs_slot(self, cluster_bus: RedisStreamsBus) -> None:
        assert key_slot(cluster_bus.batch_records_key().encode()) == key_slot(cluster_bus.key("observations").encode())
        signed(cluster_bus).publish_many([("observations", sample_envelope(i)) for i in range(50)])
        first, second = signed(cluster_bus), signed(cluster_bus)
        got = first.read(["observations"], "g", "a", count=20) + second.read(["observations"], "g", "b", count=100)
        assert [d.error for d in got] == [None] * 50


def count_leaves(monkeypatch: pytest.MonkeyPatch) -> list[None]:
    """A list that grows by one for each leaf the signing module hashes from here on."""
    hashed: list[None] = []
    prefix = signing._LEAF_PREFIX

    class Counting:
        def copy(self) -> Any:
            hashed.append(None)
            return prefix.copy()

    monkeypatch.setattr(signing, "_LEAF_PREFIX", Counting())
    return hashed


def b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode()


class TestBatchesSignedHere:
    """A signing bus that reads back a batch it published skips the Ed25519 verification: received bytes equal to the
    bytes it wrote are accepted as those, any others have their leaves compared with the record it holds in memory;
    Redis stays untrusted: an entry altered there, with the batch record rewritten to match it, is refused and
    dead-lettered, whole read or in parts."""

    def test_a_batch_read_back_by_its_signer_costs_no_verification(
        self, redis_bus: RedisStreamsBus, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        verified: list[bytes] = []
        real = signing.verify_signature
        monkeypatch.setattr(signing, "verify_signature", lambda *a: verified.append(a[1]) or real(*a))
        producer = signed(redis_bus)
        producer.publish_many([("observations", sample_envelope(i)) for i in range(100)])
        assert all(d.ok for d in producer.read(["observations"], "g", "c", count=100))
        assert all(d.ok for d in producer.read(["observations"], "g2", "c", count=30))
        assert verified == []
        assert all(d.ok for d in signed(redis_bus).read(["observations"], "g3", "c", count=100))
        assert len(verified) == 1  # another verifier (another process) checks the signature

    def test_the_bytes_a_signer_wrote_are_read_back_without_hashing_them(
        self, redis_bus: RedisStreamsBus, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Whole read and reads in parts by the signer: no leaf hashed; another verifier hashes every envelope."""
        producer = signed(redis_bus)
        producer.publish_many([("observations", sample_envelope(i)) for i in range(100)])
        hashed = count_leaves(monkeypatch)
        assert all(d.ok for d in producer.read(["observations"], "g", "c", count=100))
        parts = [producer.read(["observations"], "g2", "c", count=30) for _ in range(4)]
        assert [len(part) for part in parts] == [30, 30, 30, 10]
        assert all(d.ok for part in parts for d in part)
        assert hashed == []
        assert all(d.ok for d in signed(redis_bus).read(["observations"], "g3", "c", count=100))
        assert len(hashed) == 100

    def test_bytes_beyond_what_a_signer_holds_are_hashed_and_verified(
        self, redis_bus: RedisStreamsBus, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The signer holds the bytes of its last batches only: the oldest are let go and checked by their leaves."""
        producer = signed(redis_bus)
        batches = [[sample_envelope(i) for i in range(start, start + 10)] for start in range(0, 40, 10)]
        sizes = [sum(map(len, producer.stamped(batch).wires)) for batch in batches]  # signing is deterministic
        monkeypatch.setattr(signing, "_HELD_BYTES", sizes[2] + sizes[3])
        for batch in batches:
            producer.publish_many([("observations", envelope) for envelope in batch])
        hashed = count_leaves(monkeypatch)
        got = [d for _ in batches for d in producer.read(["observations"], "g", "c", count=10)]
        assert [d.error for d in got] == [None] * 40
        assert len(hashed) == 20  # the first two batches

    def test_a_batch_written_again_with_one_entry_altered_is_refused_at_that_entry(
        self, redis_bus: RedisStreamsBus
    ) -> None:
        """After a whole read, the signer's next whole read of one batch takes the one-batch path: the batch appended
        again by whoever holds Redis, one entry altered (its length kept), is refused at that entry and only there."""
        producer = signed(redis_bus)
        producer.publish_many([("observations", sample_envelope(i)) for i in range(8)])
        first = producer.read(["observations"], "g", "c", count=100)
        assert all(d.ok for d in first)
        wires = [d.raw for d in first]
        wires[5] = wires[5].replace(b"subject-5", b"subject-6")
        for wire in wires:
            redis_bus.publish_raw("observations", wire)
        again = producer.read(["observations"], "g", "c", count=100)
        assert [d.ok for d in again] == [i != 5 for i in range(8)]
        assert again[5].error == "rejected: envelope env-5 does not verify against world's key (forged or altered)"

    def test_a_key_this_verifier_does_not_trust_is_verified_and_refused(self, redis_bus: RedisStreamsBus) -> None:
        """Signing with a key other than the trusted one proves nothing to the same bus's verifier."""
        impostor = SignedBus(redis_bus, Keyring.ephemeral(["world"]), Verifier(KEYS.directory(), run_id="run-test"))
        impostor.publish_many([("observations", sample_envelope(i)) for i in range(8)])
        for count in (100, 3):
            got = read_all(impostor, 8, count) if count == 3 else impostor.read(["observations"], "g2", "c", count=100)
            assert not any(d.ok for d in got)

    @pytest.mark.parametrize("count", [100, 3])
    def test_an_entry_and_its_record_altered_in_redis_are_dead_lettered(
        self, redis_bus: RedisStreamsBus, count: int
    ) -> None:
        keys = Keyring({"world": KEYS.private("world"), "consumer:g": KEYS.private("world")})
        bus = SignedBus(redis_bus, keys, Verifier(keys.directory(), run_id="run-test"))
        bus.publish_many([("observations", sample_envelope(i)) for i in range(8)])
        entries = redis_bus.range("observations")
        wires = [d.raw for d in entries]
        stamp = str(entries[5].envelope.signature if entries[5].envelope else "")
        wires[5] = wires[5].replace(b"subject-5", b"subject-6")
        # whoever holds Redis rewrites the stream and makes the batch record hold the altered entry's leaf
        raw = cast(Any, redis_bus)._r
        signature = binascii.a2b_base64(stamp.rsplit(".", 1)[1])
        record = bytearray(raw.hget(redis_bus.batch_records_key(), signature))
        signed_bytes = cast(bytes, signing.unsigned_bytes(wires[5], stamp))
        record[5 * 32 : 6 * 32] = hashlib.sha256(b"\x00" + signed_bytes).digest()
        raw.hset(redis_bus.batch_records_key(), signature, bytes(record))
        raw.delete(redis_bus.key("observations"))
        for wire in wires:
            redis_bus.publish_raw("observations", wire)
        applied: list[str] = []
        consumer = Consumer(
            bus,
            topics=["observations"],
            group="g",
            name="c",
            handler=lambda envelope: applied.append(envelope.id),
            store=MemoryIdempotencyStore(),
        )
        while consumer.poll(count=count).handled:
            pass
        assert applied == [f"env-{i}" for i in range(8) if i != 5]
        letters = [cast(DeadLettered, d.envelope.payload) for d in redis_bus.range(DEAD_LETTERS) if d.envelope]
        assert [letter.reason for letter in letters] == [
            "undecodable: rejected: envelope env-5 does not verify against world's key (forged or altered)"
        ]
