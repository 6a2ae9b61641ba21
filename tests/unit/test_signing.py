"""Envelope signatures: a signed batch verifies envelope by envelope (whole, or in part with its batch record); any
change to any field, another run, another producer's key, a batch record altered, missing or another batch's, or a
producer speaking for someone else does not; the verifier's cache never accepts different bytes; key files are private
and rotations change the key."""

from __future__ import annotations

import gc
import hashlib
import stat
import weakref
from base64 import b64decode, b64encode
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coalition.bus import signing
from coalition.bus.base import Delivery
from coalition.bus.batch_records import RecordBook
from coalition.bus.codec import decode, encode
from coalition.bus.envelope import Envelope
from coalition.bus.errors import KeyStoreError
from coalition.bus.keys import ApproverKeys, Keyring, KeyStore, producer_identities, scripted_identity
from coalition.bus.memory import MemoryBus
from coalition.bus.messages import ActionProposed
from coalition.bus.signing import (
    SignedBus,
    Verifier,
    batch_message,
    sign_batch,
    sign_wire,
    stamp_batches,
    unsigned_bytes,
    wire_bytes,
)
from coalition.bus.testing import capture_messages, sample_envelope

pytestmark = pytest.mark.unit

KEYS = Keyring.ephemeral(["world", "governance", "agent:finance", "agent:marketing"])
RECORDS = RecordBook()  # where the batches signed here keep their records (a bus's, in a run)


def verifier(run_id: str | None = "run-test", records: RecordBook = RECORDS) -> Verifier:
    return Verifier(KEYS.directory(), run_id=run_id, records=records)


def signed(n: int) -> list[Envelope]:
    return sign_batch([sample_envelope(i) for i in range(n)], KEYS.private("world"), records=RECORDS)


class TestBatches:
    """One signature per batch; every envelope proves itself alone against its batch's record."""

    @settings(max_examples=40, deadline=None)
    @given(st.integers(1, 70), st.data())
    def test_every_envelope_of_any_batch_verifies_and_any_edit_breaks_it(self, n: int, data: st.DataObject) -> None:
        envelopes = signed(n)
        check = verifier()
        assert [check.problem(e) for e in envelopes] == [None] * n
        victim = envelopes[data.draw(st.integers(0, n - 1))]
        field = data.draw(st.sampled_from(["id", "source", "run_id", "superstep", "correlation_id", "payload"]))
        changed: dict[str, object] = {
            "id": victim.id + "x",
            "source": "governance",
            "run_id": "run-test",  # same run, so that the signature (not the run check) must catch the rest
            "superstep": victim.superstep + 1,
            "correlation_id": "other",
            "payload": victim.payload.model_copy(update={"subject": "tampered"}),
        }
        if field == "run_id":
            altered = victim.model_copy(update={"run_id": "run-other"})
            assert "replayed" in str(verifier().problem(altered))
            return
        altered = victim.model_copy(update={field: changed[field]})
        assert verifier().problem(altered) is not None

    def test_a_borrowed_stamp_does_not_verify(self) -> None:
        """Envelope 0 wearing envelope 1's stamp (same batch, same signature) is refused."""
        first, second = signed(2)
        assert first.signature is not None
        assert second.signature is not None
        swapped = first.model_copy(update={"signature": second.signature})
        assert "does not verify against world's key (forged or altered)" in str(verifier().problem(swapped))

    @pytest.mark.parametrize(
        "stamp", ["", "v1", "v2.0.1..", "v4.0.1.", "v4.0.1", "v4.x.2.AAAA", "v4.0.2000.AAAA", "v1.x.y.z.w"]
    )
    def test_malformed_stamps_are_refused(self, stamp: str) -> None:
        envelope = signed(1)[0].model_copy(update={"signature": stamp or None})
        assert verifier().problem(envelope) is not None

    def test_a_stamp_of_an_earlier_version_is_malformed(self) -> None:
        """A v3 stamp (its signature over a Merkle root) is never read as a v4 one, even with the same fields."""
        envelope = signed(3)[1]
        earlier = envelope.model_copy(update={"signature": str(envelope.signature).replace("v4.", "v3.", 1)})
        assert verifier().problem(envelope) is None
        assert verifier().problem(earlier) == "envelope env-1 from world has a malformed signature"


class TestProducers:
    """A valid key cannot speak for another producer."""

    def test_an_agent_cannot_propose_in_anothers_name_even_with_its_own_valid_key(self) -> None:
        proposal = ActionProposed(proposal_id="p", agent="finance", action="set_price", args={}, rationale="r")
        envelope = Envelope.wrap(
            proposal,
            id="e",
            source="agent:marketing",
            run_id="run-test",
            superstep=1,
            sim_time=sample_envelope(0).sim_time,
        )
        (mine,) = sign_batch([envelope], KEYS.private("agent:marketing"), records=RECORDS)
        assert "in the name of agent 'finance'" in str(verifier().problem(mine))

    def test_an_unknown_producer_and_an_unsigned_envelope_are_refused(self) -> None:
        stranger = sign_batch([sample_envelope(1)], Keyring.ephemeral(["world"]).private("world"))[0]
        assert "does not verify against world's key" in str(verifier().problem(stranger))
        assert "not signed" in str(verifier().problem(sample_envelope(2)))

    def test_a_worker_without_the_key_cannot_publish_as_that_producer(self) -> None:
        bus = SignedBus(MemoryBus(), KEYS.only(["agent:finance"]), verifier())
        with pytest.raises(KeyStoreError, match="no signing key for 'world'"):
            bus.publish("observations", sample_envelope(1))


class TestCacheAndWire:
    """The verifier remembers verified objects while they live, checks bytes each time, and keeps nothing alive."""

    def test_a_verifier_keeps_no_envelope_it_checked_alive(self) -> None:
        """A long-lived consumer's verifier must not hold what it read: every full garbage collection would walk it."""
        check = verifier()
        pairs = sign_wire([sample_envelope(i) for i in range(8)], KEYS.private("world"), records=RECORDS)
        read = deliveries([wire for _, wire in pairs])
        assert all(d.ok for d in check.checked(read))
        assert all(check.problem(envelope) is None for envelope, _ in pairs)  # objects, as an in-process bus hands them
        gone = [weakref.ref(d.envelope) for d in read] + [weakref.ref(envelope) for envelope, _ in pairs]
        del read, pairs
        gc.collect()
        assert [ref() for ref in gone] == [None] * 16

    def test_an_object_checked_again_after_its_twin_died_is_checked_in_full(self) -> None:
        """The object cache is by identity while the object lives: a new object (even at a reused address) that
        was altered is refused."""
        check = verifier()
        (envelope,) = signed(1)
        assert check.problem(envelope) is None
        assert check.problem(envelope) is None
        altered = envelope.model_copy(update={"superstep": 9})
        del envelope
        gc.collect()
        assert check.problem(altered) is not None

    def test_altered_bytes_of_a_verified_envelope_are_checked_again(self) -> None:
        check = verifier()
        (envelope,) = signed(1)
        raw = encode(envelope)
        assert check.problem(decode(raw), raw) is None
        wire = orjson.loads(raw)
        wire["payload"]["subject"] = "tampered"
        altered = orjson.dumps(wire, option=orjson.OPT_SORT_KEYS)
        assert check.problem(decode(altered), altered) is not None
        assert check.problem(envelope.model_copy(update={"superstep": 9})) is not None

    def test_through_a_wire_memory_bus_forged_entries_come_out_rejected_with_the_reason(self) -> None:
        inner = MemoryBus(wire=True)
        bus = SignedBus(inner, KEYS, verifier())
        bus.publish("observations", sample_envelope(1))
        inner.publish("observations", sample_envelope(2))  # past the signer
        got = bus.read(["observations"], "g", "c")
        assert [d.ok for d in got] == [True, False]
        assert got[1].error is not None
        assert got[1].error.startswith("rejected: envelope env-2 from world is not signed")


class TestInProcessRecords:
    """The memory bus keeps a batch's record while an entry of the batch is kept; a bus that keeps none has the signing
    bus keep them; a record that is gone refuses, never accepts."""

    @pytest.mark.parametrize("wire", [False, True])
    def test_a_memory_run_keeps_records_exactly_as_long_as_their_entries(self, wire: bool) -> None:
        inner = MemoryBus(namespace="run", keep_acknowledged=False, wire=wire)
        bus = SignedBus(inner, KEYS, verifier())
        bus.ensure_group("observations", "g")
        bus.publish_many([("observations", sample_envelope(i)) for i in range(10)])
        first = bus.read(["observations"], "g", "c", count=4)  # part of the batch: checked against its record
        assert [d.error for d in first] == [None] * 4
        bus.ack("g", first)
        assert len(inner._records) == 1
        rest = SignedBus(inner, KEYS, verifier()).read(["observations"], "g", "c", count=100)  # a fresh consumer
        assert [d.error for d in rest] == [None] * 6
        bus.ack("g", rest)
        assert len(inner._records) == 0

    def test_objects_of_a_partly_read_batch_whose_record_is_gone_are_refused(self) -> None:
        inner = MemoryBus()
        SignedBus(inner, KEYS, verifier()).publish_many([("observations", sample_envelope(i)) for i in range(5)])
        inner._records = RecordBook()  # the record lost
        got = SignedBus(inner, KEYS, verifier()).read(["observations"], "g", "c", count=3)
        assert [d.ok for d in got] == [False] * 3
        assert all(
            str(d.error).endswith("belongs to a batch whose record is missing (trimmed, or never published)")
            for d in got
        )

    def test_over_a_bus_that_keeps_no_records_the_signing_bus_keeps_them(self) -> None:
        with capture_messages() as inner:
            bus = SignedBus(inner, KEYS, verifier())
            bus.publish_many([("observations", sample_envelope(i)) for i in range(6)])
            got = bus.read(["observations"], "g", "c", count=4) + bus.read(["observations"], "g", "c", count=4)
        assert [d.error for d in got] == [None] * 6


# text that tries to look like the members the signer splices or removes, inside the payload
_LOOKALIKES = st.sampled_from(
    ['","sim_time":"', ',"sim_time":', ',"signature":"v1.0.1..AAAA"', '"', "\\", '\\"', "é", "\u2028", ""]
)


class TestWireBytes:
    """The signer encodes once: the wire bytes are the signed envelope's canonical bytes, and the verifier checks the
    received bytes with the stamp taken out; bytes in any other shape are checked by what they decode to."""

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.tuples(_LOOKALIKES, _LOOKALIKES), min_size=1, max_size=4), st.integers(1, 9))
    def test_wire_bytes_are_the_canonical_bytes_of_the_signed_envelope(
        self, pieces: list[tuple[str, str]], n: int
    ) -> None:
        data = {f"k{i}{a}": {"sim_time": b, "signature": a + b, "x": [a, b]} for i, (a, b) in enumerate(pieces)}
        envelopes = [sample_envelope(i, data=data) for i in range(n)]
        check = verifier()
        for signed_envelope, wire in sign_wire(envelopes, KEYS.private("world"), records=RECORDS):
            assert wire == encode(signed_envelope)
            assert signed_envelope.signature is not None
            assert unsigned_bytes(wire, signed_envelope.signature) == encode(signed_envelope, unsigned=True)
            assert wire_bytes(encode(signed_envelope, unsigned=True), signed_envelope.signature) == wire
            assert decode(wire) == signed_envelope
            assert check.problem(decode(wire), wire) is None

    def test_bytes_in_another_shape_verify_by_what_they_decode_to(self) -> None:
        """Re-ordered keys and whitespace are not the signed bytes, but the same envelope: it verifies as before."""
        ((envelope, _),) = sign_wire([sample_envelope(1)], KEYS.private("world"), records=RECORDS)
        reshaped = orjson.dumps(orjson.loads(encode(envelope)), option=orjson.OPT_INDENT_2)
        assert unsigned_bytes(reshaped, str(envelope.signature)) is None
        assert verifier().problem(decode(reshaped), reshaped) is None

    def test_the_stamp_moved_into_the_payload_or_duplicated_is_refused(self) -> None:
        ((envelope, wire),) = sign_wire(
            [sample_envelope(1, data={"sim_time": "x"})], KEYS.private("world"), records=RECORDS
        )
        stamp = str(envelope.signature)
        member = b',"signature":"' + stamp.encode() + b'"'
        bare = wire.replace(member, b"")
        # into the payload's data, right before its own "sim_time": the envelope itself is then unsigned
        nested = bare.replace(b',"sim_time":"x"', member + b',"sim_time":"x"')
        assert decode(nested).signature is None
        assert "not signed" in str(verifier().problem(decode(nested), nested))
        # twice at the top level: the last one wins, the bytes are not the signed ones plus one member
        twice = wire.replace(member, member + member)
        assert decode(twice).signature == stamp
        assert unsigned_bytes(twice, stamp) is not None
        assert unsigned_bytes(twice, stamp) != encode(envelope, unsigned=True)
        assert verifier().problem(decode(twice), twice) is None  # what it decodes to is the signed envelope
        # the same bytes with one payload byte changed and the stamp kept
        altered = wire.replace(b'"subject":"subject-1"', b'"subject":"subject-2"')
        assert "does not verify" in str(verifier().problem(decode(altered), altered))

    def test_a_stamp_that_is_not_plain_ascii_never_matches_the_wire(self) -> None:
        assert unsigned_bytes(b'{"signature":"v1\\u00e9"}', "v1\u00e9") is None
        assert unsigned_bytes(b'{"a":1,"signature":"a\\"b","sim_time":"x"}', 'a"b') is None


class TestProvenRecords:
    """After one envelope of a batch verifies, its siblings meet the batch's proven record, and the proof is never lent
    to bytes outside the batch, to another signature, to another producer or to another run."""

    def test_siblings_verify_in_any_order_and_an_altered_one_still_fails(self) -> None:
        pairs = sign_wire([sample_envelope(i) for i in range(37)], KEYS.private("world"), records=RECORDS)
        check = verifier()
        for _, wire in reversed(pairs):
            assert check.problem(decode(wire), wire) is None
        wire = pairs[20][1]
        altered = wire.replace(b"subject-20", b"subject-99")
        assert "does not verify" in str(check.problem(decode(altered), altered))

    def test_a_producer_cannot_borrow_another_producers_proven_record(self) -> None:
        """world signs a batch that also holds an envelope claiming to be governance's: once world's envelopes
        verified, the governance one still has to verify against governance's key, and does not."""
        world = [sample_envelope(i) for i in range(4)]
        claim = Envelope.wrap(
            ActionProposed(proposal_id="p", agent="finance", action="set_price", args={}, rationale="r"),
            id="claim",
            source="agent:finance",
            run_id="run-test",
            superstep=1,
            sim_time=world[0].sim_time,
        )
        pairs = sign_wire(
            [*world, claim], KEYS.private("world"), records=RECORDS
        )  # a compromised world signs for finance
        check = verifier()
        for _, wire in pairs[:4]:
            assert check.problem(decode(wire), wire) is None
        wire = pairs[4][1]
        assert "does not verify against agent:finance's key" in str(check.problem(decode(wire), wire))

    def test_a_proven_record_is_not_lent_to_another_signature(self) -> None:
        pairs = sign_wire([sample_envelope(i) for i in range(2)], KEYS.private("world"), records=RECORDS)
        check = verifier()
        assert check.problem(decode(pairs[0][1]), pairs[0][1]) is None
        envelope, wire = pairs[1]
        stamp = str(envelope.signature)
        forged_signature = stamp[: stamp.rindex(".") + 1] + "A" * 86 + "=="
        forged = wire.replace(stamp.encode(), forged_signature.encode())
        assert "belongs to a batch whose record is missing" in str(check.problem(decode(forged), forged))
        genuine = RECORDS.batch_records([b64decode(stamp.rsplit(".", 1)[1])])[0]
        assert genuine is not None
        RECORDS.add([(bytes(64), genuine)], [1])  # the forged signature (64 zero bytes) given the genuine record
        assert "does not verify against world's key" in str(check.problem(decode(forged), forged))

    def test_a_proven_record_is_lent_to_no_other_producer_nor_run_under_its_signature(self) -> None:
        """One signature of world's over a batch holding a proposal in finance's name and an envelope of another run:
        once world's envelopes proved the record, the other two still verify against their own (producer, run), and
        do not."""
        batch = [
            *(sample_envelope(i) for i in range(3)),
            proposals("finance", 1)[0],
            sample_envelope(3, run_id="run-other"),
        ]
        wires = stamped(batch, lambda digest: KEYS.private("world").sign(batch_message("world", "run-test", digest, 5)))
        check = verifier(run_id=None)
        assert [check.problem(decode(wire), wire) for wire in wires[:3]] == [None] * 3
        assert "does not verify against agent:finance's key" in str(check.problem(decode(wires[3]), wires[3]))
        assert "does not verify against world's key" in str(check.problem(decode(wires[4]), wires[4]))
        assert [d.ok for d in verifier(run_id=None).checked(deliveries(wires))] == [True] * 3 + [False] * 2

    def test_a_whole_read_of_a_proven_batch_with_one_envelope_altered_refuses_it(self) -> None:
        """The whole-read check skips the signature only for the very record it proved: other bytes under the same
        stamps are checked again."""
        wires = [
            w for _, w in sign_wire([sample_envelope(i) for i in range(6)], KEYS.private("world"), records=RECORDS)
        ]
        check = verifier()
        assert all(d.ok for d in check.checked(deliveries(wires)))
        wires[3] = wires[3].replace(b"subject-3", b"subject-X")
        assert [d.ok for d in check.checked(deliveries(wires))] == [i != 3 for i in range(6)]


def deliveries(wires: list[bytes]) -> list[Delivery]:
    return [Delivery("observations", f"{i}-0", 1, decode(wire), wire) for i, wire in enumerate(wires)]


class TestWholeBatches:
    """A read holding every envelope of a batch verifies it by the digest of its leaves; one bad envelope
    in it sends the whole batch back to the envelope-by-envelope check, which rejects just that one."""

    def test_a_whole_batch_verifies_with_one_signature_check(self, monkeypatch: pytest.MonkeyPatch) -> None:
        wires = [
            wire
            for _, wire in sign_wire([sample_envelope(i) for i in range(23)], KEYS.private("world"), records=RECORDS)
        ]
        calls: list[bytes] = []
        real = signing.verify_signature
        monkeypatch.setattr(signing, "verify_signature", lambda k, s, d: calls.append(d) or real(k, s, d))
        got = verifier().checked(deliveries(list(reversed(wires))))
        assert all(d.ok for d in got)
        assert len(calls) == 1

    @pytest.mark.parametrize("warm", [False, True], ids=["fresh", "warm"])
    @pytest.mark.parametrize("attack", ["altered", "duplicate index", "foreign stamp", "other run"])
    def test_one_bad_envelope_in_a_whole_batch_is_the_only_one_refused(self, attack: str, warm: bool) -> None:
        """Fresh, or warm: having allowed world's observations, where a whole read takes the one-batch path."""
        pairs = sign_wire([sample_envelope(i) for i in range(8)], KEYS.private("world"), records=RECORDS)
        wires = [wire for _, wire in pairs]
        if attack == "altered":
            wires[3] = wires[3].replace(b"subject-3", b"subject-X")
        elif attack == "duplicate index":  # envelope 3's bytes with envelope 2's stamp: index 2 twice
            wires[3] = wires[3].replace(str(pairs[3][0].signature).encode(), str(pairs[2][0].signature).encode())
        elif attack == "foreign stamp":  # a stamp of another batch signed by the same producer
            (other, _), *_ = sign_wire(
                [sample_envelope(i, kind="other") for i in range(8)], KEYS.private("world"), records=RECORDS
            )
            wires[0] = wires[0].replace(str(pairs[0][0].signature).encode(), str(other.signature).encode())
        else:
            ((_, wires[5]),) = sign_wire(
                [sample_envelope(5, run_id="run-other")], KEYS.private("world"), records=RECORDS
            )
        bad = {"altered": 3, "duplicate index": 3, "foreign stamp": 0, "other run": 5}[attack]
        check = verifier()
        if warm:
            genuine = [w for _, w in sign_wire([sample_envelope(i) for i in range(3)], KEYS.private("world"))]
            assert all(d.ok for d in check.checked(deliveries(genuine)))
        got = check.checked(deliveries(wires))
        assert [d.ok for d in got] == [i != bad for i in range(8)]
        assert str(got[bad].error).startswith("rejected: envelope env-")

    def test_interleaved_batches_partial_reads_and_redeliveries_verify_each_envelope(self) -> None:
        """Entries of two producers' batches interleaved, then a read holding only part of a batch, then the same
        entries redelivered: every genuine envelope verifies alone, the altered one is refused each time."""
        world = sign_wire([sample_envelope(i) for i in range(6)], KEYS.private("world"), records=RECORDS)
        finance = sign_wire(
            [
                Envelope.wrap(
                    ActionProposed(proposal_id=f"p{i}", agent="finance", action="set_price", args={}, rationale="r"),
                    id=f"f{i}",
                    source="agent:finance",
                    run_id="run-test",
                    superstep=1,
                    sim_time=sample_envelope(0).sim_time,
                )
                for i in range(5)
            ],
            KEYS.private("agent:finance"),
            records=RECORDS,
        )
        mixed = [wire for pair in zip(world, finance, strict=False) for _, wire in pair] + [world[5][1]]
        mixed[4] = mixed[4].replace(b"subject-2", b"subject-X")  # world's envelope 2, altered in transit
        check = verifier()
        first = check.checked(deliveries(mixed))
        assert [d.ok for d in first] == [i != 4 for i in range(11)]
        partial = [mixed[i] for i in (9, 4, 1)]  # finance 4, the altered world 2, finance 0: a batch in part
        assert [d.ok for d in check.checked(deliveries(partial))] == [True, False, True]
        again = verifier().checked(deliveries(partial))  # a fresh consumer, nothing proven yet
        assert [d.ok for d in again] == [True, False, True]

    def test_a_batch_read_out_of_order_is_verified_whole(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The leaves are taken in the order the stamps name, not the order read: no envelope is left to its own
        check."""
        wires = [
            wire
            for _, wire in sign_wire([sample_envelope(i) for i in range(9)], KEYS.private("world"), records=RECORDS)
        ]
        check = verifier()
        alone: list[str] = []
        real = check.problem
        monkeypatch.setattr(check, "problem", lambda e, raw=b"": alone.append(e.id) or real(e, raw))
        got = check.checked(deliveries([wires[i] for i in [7, 2, 8, 0, 4, 1, 6, 3, 5]]))
        assert all(d.ok for d in got)
        assert alone == []

    @pytest.mark.parametrize("attack", ["altered", "duplicate index"])
    def test_a_batch_read_out_of_order_with_one_bad_envelope_refuses_only_it(self, attack: str) -> None:
        pairs = sign_wire([sample_envelope(i) for i in range(9)], KEYS.private("world"), records=RECORDS)
        wires = [wire for _, wire in pairs]
        if attack == "altered":
            wires[4] = wires[4].replace(b"subject-4", b"subject-X")
        else:  # envelope 4's bytes with envelope 5's stamp: index 5 twice, index 4 missing
            wires[4] = wires[4].replace(str(pairs[4][0].signature).encode(), str(pairs[5][0].signature).encode())
        order = [7, 2, 8, 0, 4, 1, 6, 3, 5]
        got = verifier().checked(deliveries([wires[i] for i in order]))
        assert [d.ok for d in got] == [i != 4 for i in order]

    def test_a_stamp_spelt_otherwise_is_judged_as_it_would_be_alone(self) -> None:
        """A stamp with its index written `03` is not the stamp the signer wrote; the whole read leaves it to the
        envelope's own check, which reads the index as 3 and accepts it, as it would alone."""
        pairs = sign_wire([sample_envelope(i) for i in range(6)], KEYS.private("world"), records=RECORDS)
        wires = [wire for _, wire in pairs]
        stamp = str(pairs[3][0].signature)
        wires[3] = wires[3].replace(stamp.encode(), stamp.replace("v4.3.", "v4.03.", 1).encode())
        whole, alone, objects = verdicts(wires)
        assert whole == alone == objects == [True] * 6

    def test_a_pair_allowed_once_allows_no_other_producer_nor_payload(self) -> None:
        """The verifier remembers (type, producer) pairs it allowed; a whole read by another producer of that type,
        or a proposal in another agent's name after the agent's own were allowed, is still refused."""
        check = verifier()
        world = [
            wire
            for _, wire in sign_wire([sample_envelope(i) for i in range(4)], KEYS.private("world"), records=RECORDS)
        ]
        assert all(d.ok for d in check.checked(deliveries(world)))
        finance_world = [
            e.model_copy(update={"source": "agent:finance", "id": f"fw-{i}"})
            for i, e in enumerate(sample_envelope(i) for i in range(4))
        ]
        posing = [wire for _, wire in sign_wire(finance_world, KEYS.private("agent:finance"), records=RECORDS)]
        refused = check.checked(deliveries(posing))
        assert not any(d.ok for d in refused)
        assert all("may be published by world only" in str(d.error) for d in refused)
        own = [wire for _, wire in sign_wire(proposals("finance", 3), KEYS.private("agent:finance"), records=RECORDS)]
        assert all(d.ok for d in check.checked(deliveries(own)))
        mixed = proposals("finance", 3)
        mixed[1] = proposals("marketing", 3)[1].model_copy(update={"source": "agent:finance", "id": "as-marketing"})
        wires = [wire for _, wire in sign_wire(mixed, KEYS.private("agent:finance"), records=RECORDS)]
        assert [d.ok for d in check.checked(deliveries(wires))] == [True, False, True]

    @pytest.mark.parametrize("attack", ["another key", "another run's digest", "another size", "replayed run"])
    def test_a_verifier_that_allowed_a_producer_still_refuses_its_forged_whole_batches(self, attack: str) -> None:
        """Once a verifier has allowed world's observations, a whole read of them takes the one-batch path
        (`_one_batch`); a batch whose signature is not world's over this run's digest of these leaves is refused
        there as it is by the envelope-by-envelope check, and the genuine batch after it still verifies."""
        check = verifier()
        genuine = [w for _, w in sign_wire([sample_envelope(i) for i in range(6)], KEYS.private("world"))]
        assert check._one_batch(deliveries(genuine)) is None  # nothing allowed yet: the loop decides
        assert all(d.ok for d in check.checked(deliveries(genuine)))
        assert check._one_batch(deliveries(genuine)) == set(range(6))
        batch = [sample_envelope(i, kind="forged") for i in range(6)]
        key = KEYS.private("world")
        if attack == "another key":
            wires = stamped(batch, lambda d: KEYS.private("governance").sign(batch_message("world", "run-test", d, 6)))
        elif attack == "another run's digest":
            wires = stamped(batch, lambda d: key.sign(batch_message("world", "run-other", d, 6)))
        elif attack == "another size":
            wires = stamped(batch, lambda d: key.sign(batch_message("world", "run-test", d, 5)))
        else:
            wires = [w for _, w in sign_wire([sample_envelope(i, run_id="run-other") for i in range(6)], key)]
        got = check.checked(deliveries(wires))
        assert [d.ok for d in got] == [False] * 6
        assert all(str(d.error).startswith("rejected: envelope env-") for d in got)
        assert all(d.ok for d in check.checked(deliveries(genuine)))

    def test_stamp_wire_is_sign_wire_without_the_objects(self) -> None:
        envelopes = [sample_envelope(i) for i in range(5)] + [sample_envelope(9, run_id="run-other")]
        stamps, wires = signing.stamp_wire(envelopes, KEYS.private("world"))
        pairs = sign_wire(envelopes, KEYS.private("world"), records=RECORDS)
        assert [e.signature for e, _ in pairs] == stamps
        assert [wire for _, wire in pairs] == wires == [encode(e) for e, _ in pairs]

    def test_a_stamp_with_an_extra_part_is_malformed_in_a_whole_batch_too(self) -> None:
        pairs = sign_wire([sample_envelope(i) for i in range(2)], KEYS.private("world"), records=RECORDS)
        wires = []
        for envelope, wire in pairs:
            stamp = str(envelope.signature)
            at = stamp.rindex(".")
            wires.append(wire.replace(stamp.encode(), (stamp[:at] + ".AAAA" + stamp[at:]).encode()))
        got = verifier().checked(deliveries(wires))
        assert [d.ok for d in got] == [False, False]
        assert all("malformed signature" in str(d.error) for d in got)


def proposals(agent: str, n: int, run_id: str = "run-test") -> list[Envelope]:
    return [
        Envelope.wrap(
            ActionProposed(proposal_id=f"p{i}", agent=agent, action="set_price", args={}, rationale="r"),
            id=f"{agent}-{i}",
            source=f"agent:{agent}",
            run_id=run_id,
            superstep=1,
            sim_time=sample_envelope(0).sim_time,
        )
        for i in range(n)
    ]


def stamped(envelopes: list[Envelope], sign: Callable[[bytes], bytes], records: RecordBook = RECORDS) -> list[bytes]:
    """Wire bytes of a batch whose record is genuine and whose stamps carry `sign(digest)` as the batch signature, its
    record written where the verifier looks: an attacker who holds some signature over the right digest (and can
    write records, as anyone who can write to the bus can), but not one a verifier may accept."""
    unsigned = [encode(e, unsigned=True) for e in envelopes]
    record = b"".join(signing._leaf(data) for data in unsigned)
    signature = sign(signing._digest(record, len(unsigned)))
    records.add([(signature, record)], [len(unsigned)])
    text = b64encode(signature).decode()
    return [wire_bytes(data, f"{signing.VERSION}.{i}.{len(unsigned)}.{text}") for i, data in enumerate(unsigned)]


def verdicts(
    wires: list[bytes], *, run_id: str = "run-test", records: RecordBook = RECORDS
) -> tuple[list[bool], list[bool], list[bool]]:
    """Whether each envelope verifies as a whole read, one by one from its bytes, and from the object alone."""
    whole = [d.ok for d in verifier(run_id, records).checked(deliveries(wires))]
    alone = [verifier(run_id, records).problem(decode(w), w) is None for w in wires]
    objects = [verifier(run_id, records).problem(decode(w)) is None for w in wires]
    return whole, alone, objects


class TestBatchAttacks:
    """One signature per batch must not let an attacker move envelopes between batches, pass off another batch's
    record, pass off a digest signed by another producer, or replay a signed digest into another run."""

    def test_the_stamping_helper_makes_batches_that_verify(self) -> None:
        """The control for the attacks below: a signature over the right (producer, run, size, digest) verifies."""
        key = KEYS.private("agent:finance")
        wires = stamped(
            proposals("finance", 5), lambda digest: key.sign(batch_message("agent:finance", "run-test", digest, 5))
        )
        assert verdicts(wires) == ([True] * 5, [True] * 5, [True] * 5)

    def test_an_envelope_moved_into_another_batch_is_refused_and_only_it(self) -> None:
        """Envelope 2 of batch A given batch B's stamp for position 2: B's record does not hold it."""
        a = sign_wire([sample_envelope(i) for i in range(6)], KEYS.private("world"), records=RECORDS)
        b = sign_wire([sample_envelope(i, kind="other") for i in range(6)], KEYS.private("world"), records=RECORDS)
        wires = [wire for _, wire in b]
        wires[2] = wire_bytes(encode(a[2][0], unsigned=True), str(b[2][0].signature))
        expected = [i != 2 for i in range(6)]
        whole, alone, objects = verdicts(wires)
        assert whole == alone == objects == expected
        assert "does not verify" in str(verifier().problem(decode(wires[2]), wires[2]))

    def test_a_record_from_another_batch_is_refused(self) -> None:
        """Batch A's record replaced by batch B's (same producer, run and size): a partial read of A refuses every
        envelope, saying the record is not the signed batch's; a whole read needs no record and accepts A."""
        book = RecordBook()
        a = stamp_batches([sample_envelope(i) for i in range(6)], KEYS.private("world"))
        b = stamp_batches([sample_envelope(i, kind="other") for i in range(6)], KEYS.private("world"))
        book.add([(a.batches[0][0], b.batches[0][1])], [6])
        whole, alone, objects = verdicts(a.wires, records=book)
        assert whole == [True] * 6
        assert alone == objects == [False] * 6
        why = verifier(records=book).problem(decode(a.wires[3]), a.wires[3])
        assert why == "envelope env-3 does not verify against world's key (its batch record is not the signed batch's)"

    @pytest.mark.parametrize("signer", ["governance", "agent:marketing"])
    def test_a_digest_signed_by_another_producer_is_refused(self, signer: str) -> None:
        """finance's proposals under a digest signed by another producer's key, naming finance or itself."""
        key = KEYS.private(signer)
        for named in ("agent:finance", signer):
            wires = stamped(
                proposals("finance", 4), lambda digest, n=named: key.sign(batch_message(n, "run-test", digest, 4))
            )
            assert verdicts(wires) == ([False] * 4, [False] * 4, [False] * 4)
            assert "does not verify against agent:finance's key" in str(verifier().problem(decode(wires[0]), wires[0]))

    def test_finances_own_key_over_a_digest_naming_another_producer_is_refused(self) -> None:
        """The signature binds the producer: a digest finance signed as if for marketing proves nothing for finance."""
        key = KEYS.private("agent:finance")
        wires = stamped(
            proposals("finance", 4), lambda digest: key.sign(batch_message("agent:marketing", "run-test", digest, 4))
        )
        assert verdicts(wires) == ([False] * 4, [False] * 4, [False] * 4)

    def test_a_digest_signed_for_another_run_is_refused(self) -> None:
        """The signature binds the run: world's signature over exactly this batch's digest, given for run-other, is
        refused in run-test (signing the digest alone, as v1 signed its root, would have let it through); so is one
        under another version's domain line."""
        key = KEYS.private("world")
        batch = [sample_envelope(i) for i in range(5)]
        wires = stamped(batch, lambda digest: key.sign(batch_message("world", "run-other", digest, 5)))
        assert verdicts(wires) == ([False] * 5, [False] * 5, [False] * 5)
        legacy = stamped(batch, lambda digest: key.sign(b"coalition envelope batch v1\n" + digest))
        assert verdicts(legacy) == ([False] * 5, [False] * 5, [False] * 5)
        head = signing._message_head("world", "run-test")
        v3 = stamped(batch, lambda digest: key.sign(head.replace(b"v4", b"v3") + (5).to_bytes(4, "big") + digest))
        assert verdicts(v3) == ([False] * 5, [False] * 5, [False] * 5)

    def test_the_signed_digest_binds_its_domain_line_and_the_size(self) -> None:
        """The digest world signs hashes a domain line, the batch's size and its leaves: a signature over the same
        leaves hashed without the line, or with another size, proves nothing."""
        key = KEYS.private("world")
        batch = [sample_envelope(i) for i in range(5)]

        def without_line(digest: bytes) -> bytes:
            record = b"".join(signing._leaf(encode(e, unsigned=True)) for e in batch)
            return key.sign(
                batch_message("world", "run-test", hashlib.sha256((5).to_bytes(4, "big") + record).digest(), 5)
            )

        def other_size(digest: bytes) -> bytes:
            record = b"".join(signing._leaf(encode(e, unsigned=True)) for e in batch)
            return key.sign(batch_message("world", "run-test", signing._digest(record, 4), 5))

        for sign in (without_line, other_size):
            assert verdicts(stamped(batch, sign)) == ([False] * 5, [False] * 5, [False] * 5)

    def test_a_stamp_naming_another_size_is_refused_before_and_after_its_batch_is_proven(self) -> None:
        """Envelope 3 of a genuine batch of 8 with its stamp saying 6: refused by a fresh verifier (the record is not
        6 leaves) and by one that already proved the batch (the proven record is not 6 leaves either)."""
        pairs = sign_wire([sample_envelope(i) for i in range(8)], KEYS.private("world"), records=RECORDS)
        stamp = str(pairs[3][0].signature)
        wire = pairs[3][1].replace(stamp.encode(), stamp.replace("v4.3.8.", "v4.3.6.", 1).encode())
        fresh = verifier().problem(decode(wire), wire)
        assert (
            fresh == "envelope env-3 does not verify against world's key (its batch record is not the signed batch's)"
        )
        proven = verifier()
        assert all(d.ok for d in proven.checked(deliveries([w for _, w in pairs])))
        assert (
            proven.problem(decode(wire), wire)
            == "envelope env-3 does not verify against world's key (forged or altered)"
        )
        assert proven.problem(decode(pairs[3][1]), pairs[3][1]) is None

    def test_a_batch_replayed_into_another_run_is_refused_even_whole(self) -> None:
        """A genuine batch of run-other read by run-test's verifier: every envelope is refused as replayed."""
        wires = [
            w
            for _, w in sign_wire(
                [sample_envelope(i, run_id="run-other") for i in range(4)], KEYS.private("world"), records=RECORDS
            )
        ]
        assert verdicts(wires) == ([False] * 4, [False] * 4, [False] * 4)
        assert verdicts(wires, run_id="run-other") == ([True] * 4, [True] * 4, [True] * 4)
        assert "(replayed)" in str(verifier().problem(decode(wires[0]), wires[0]))

    def test_one_publish_of_two_runs_is_signed_as_two_batches(self) -> None:
        envelopes = [sample_envelope(i, run_id="run-test" if i % 2 else "run-other") for i in range(6)]
        pairs = sign_wire(envelopes, KEYS.private("world"), records=RECORDS)
        assert [envelope.id for envelope, _ in pairs] == [e.id for e in envelopes]
        assert len({str(envelope.signature).rsplit(".", 1)[1] for envelope, _ in pairs}) == 2
        assert verdicts([w for _, w in pairs])[0] == [bool(i % 2) for i in range(6)]


class TestKeyFiles:
    """Private halves are 0600; a group- or world-readable key is refused; rotation replaces the key."""

    def test_init_list_rotate(self, tmp_path: Path) -> None:
        store = KeyStore(tmp_path / "keys")
        identities = producer_identities(["finance"])
        assert store.init(identities) == list(identities)
        assert store.init(identities) == []
        for info in store.list():
            assert info.mode == 0o600
        assert {i.identity for i in store.list()} == set(identities)
        old, new = store.rotate("governance")
        assert old != new
        assert store.list()[[i.identity for i in store.list()].index("governance")].fingerprint == new

    def test_a_readable_key_is_refused(self, tmp_path: Path) -> None:
        store = KeyStore(tmp_path)
        store.init(["governance"])
        path = tmp_path / "governance.key"
        path.chmod(path.stat().st_mode | stat.S_IRGRP)
        with pytest.raises(KeyStoreError, match="readable by others"):
            store.private("governance")

    def test_an_approver_key_opens_only_with_its_password_and_only_as_its_name(self, tmp_path: Path) -> None:
        keys = ApproverKeys(tmp_path)
        public = keys.create("carol", "carols password")
        assert keys.public("carol") == public
        assert (tmp_path / "carol.key").stat().st_mode & 0o777 == 0o600
        keys.unlock("carol", "carols password")
        with pytest.raises(KeyStoreError, match="did not open"):
            keys.unlock("carol", "guess")
        (tmp_path / "carol.key").rename(tmp_path / "dave.key")  # a sealed key is bound to its name
        with pytest.raises(KeyStoreError, match="did not open"):
            keys.unlock("dave", "carols password")

    def test_test_identities_are_public_knowledge(self) -> None:
        """Anyone derives the same scripted key from the name: that is why it never counts as a human."""
        a, b = scripted_identity("carol"), scripted_identity("carol")
        assert a.sign(b"x") == b.sign(b"x")
