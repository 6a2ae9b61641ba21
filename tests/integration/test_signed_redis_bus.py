"""A SignedBus over a real redis-server: the signer hands Redis its wire bytes alone (no signed envelope objects), and
consumers that read a batch whole, in parts, or shared between the consumers of a group verify every envelope; an
entry altered by one byte is refused, alone, wherever it falls."""

from __future__ import annotations

import pytest

from coalition.bus.base import WireBus
from coalition.bus.codec import decode, encode
from coalition.bus.keys import Keyring
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.signing import SignedBus, Verifier
from coalition.bus.testing import sample_envelope

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
        producer = signed(redis_bus)
        stamps, wires = producer.stamp_wire([sample_envelope(i) for i in range(8)])
        wires[5] = wires[5].replace(b"subject-5", b"subject-6")  # the payload, not the stamp
        for wire in wires:
            redis_bus.publish_raw("observations", wire)
        consumer = signed(redis_bus)
        got = []
        while len(got) < 8:
            got += consumer.read(["observations"], "g", "c", count=count)
        assert [d.ok for d in got] == [i != 5 for i in range(8)]
        assert got[5].error == "rejected: envelope env-5 does not verify against world's key (forged or altered)"
        assert stamps[5] in wires[5].decode()  # the stamp itself was left as the signer wrote it
