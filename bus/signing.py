"""Envelope signatures: every producer signs what it publishes; every consumer verifies before it acts.

What is signed: the envelope's canonical bytes without its `signature` field (`encode(…, unsigned=True)`), so
the id, type, producer (`source`), run id, superstep, simulated time, causality and the whole payload are
covered — an envelope copied into another run, or altered by one byte, no longer verifies.

Those bytes are encoded once. The wire bytes are the same bytes with the `"signature"` member spliced in where
canonical JSON puts it (keys are sorted, so just before the top-level `"sim_time"`): `wire_bytes` and
`unsigned_bytes` convert between the two without re-encoding, and equal `encode(signed)` byte for byte. A
consumer that has the wire bytes verifies the bytes it received with the member taken out; bytes in any other
shape (re-ordered, re-spaced) are checked as before, by re-encoding the decoded envelope. Either way what is
verified is what the decoded envelope says: the received bytes are the signed bytes plus one top-level member.

Ed25519 costs tens of microseconds per signature and more per verification, so a producer signs a *batch*
(one `publish_many`, one batch per producer and run, up to MAX_BATCH envelopes) once. Each envelope's leaf is
sha256(0x00 ‖ unsigned bytes); the batch's record is its leaves concatenated in order, its digest
sha256(`coalition envelope batch v4 leaves` ‖ size ‖ record) (`_digest`), and the signature covers a domain line,
the producer, the run id, the batch's size and the digest (`batch_message`), so a digest signed in one run or by one
producer proves nothing in another run or for another producer, even where two producers share a key. Each envelope
carries `v4.<index>.<size>.<signature>`.

Which envelopes a stamp lets through: exactly those whose leaf is leaf `index` of a list of `size` leaves whose
digest the producer signed for this run with `signature`. A verifier learns that list in one of three ways, and
trusts none of them before the signature checks out over its digest:
- a read that holds every envelope of the batch (the usual case: what one `publish_many` appended) has the leaves
  in hand: the received bytes' leaves (in the order read, or else in the order the stamps name), their digest
  checked against the signature once, and each stamp compared whole with the stamp the signer wrote for that index
  and size (`_whole_batches`): no round trip, nothing fetched;
- a batch of one is its own leaf;
- otherwise (a read holding part of a batch: another consumer of the group got the rest, a redelivery, a trimmed
  stream) the batch record, which the signer publishes with the batch, in the same step, keyed by the signature
  (`coalition.bus.batch_records`; Redis keeps it in the run's slot for as long as an entry of the batch, the memory
  bus likewise). All the records a read needs are fetched in one call.
A record's length must be 32 × size and the signature must verify over its digest; only then is the envelope's leaf
compared with `leaves[index]` (an index below the size its stamp names). Why that is enough: the signed message fixes
the size and the digest, and the digest hashes the size and every leaf in order, so a list that verifies is the
signed list unless sha256 has a collision; an envelope whose leaf is its `index`-th has the signed bytes unless
sha256 has a collision. A record that was altered, swapped with another batch's, truncated or written by someone
without the producer's key fails the signature; a missing record refuses the envelope with that reason; nothing
ever accepts without the signature. The domain lines keep the hashes apart: a digest's input starts with its line,
a leaf's with 0x00, so no leaf is ever a digest; the message's line names v4.

Why no Merkle tree: a tree proves one leaf with log(size) siblings, which v2 stamps carried. Since v3 a partial read
fetches the whole record, and a whole read has every leaf: each side would build a tree of size − 1 node hashes
(about 0.9 µs an envelope, sign and verify together) only to compare one root, where one hash over the record binds
the same list. Stamps are never recorded in the ledger (a resumed run starts on fresh streams), so older stamps (v2's
audit paths, v3's tree roots) are no longer read: they are malformed here.

Once a batch's record verified, the verifier remembers it for that (producer, run, signature): the next envelope
of the batch (a redelivery, the rest of a partial batch) is one hash and a comparison of 32 bytes at its index. A
record is remembered only after the signature verified over its digest, per producer and run, so the cache never
accepts different bytes nor lends one producer's batch to another.

A batch this process signed is proven without a verification: `SignedBus` hands its verifier each batch it
publishes (`Verifier.signed_here`), which remembers the record it holds in memory as proven when the signing key is
the private half of the key it trusts for the producer. The signature then holds over that record's digest by
construction, so a read of the batch by the same bus skips the Ed25519 verification (about 0.7 µs an envelope in a
batch of 100) and only compares the received bytes' leaves with the record; nothing read back from Redis is trusted
for it (an entry altered there fails its leaf; a batch record altered there is never consulted for that batch).
The verifier also holds the wire bytes it was handed for such a batch (the last `_HELD_BYTES` of them): received bytes
equal to those, byte for byte, are the bytes whose leaves the record holds, so they are accepted without hashing
(about 1 µs an envelope of 1 KB); any other bytes are hashed and compared as above.

The whole-read path is why the stamp keeps the signature: a read holding its batch needs nothing but the bytes it
read. What v2's audit paths cost (about 400 bytes an envelope on the server, in every reply, in every decode) is
now 32 bytes an envelope in a record, written once per batch.

A bus that keeps only bytes (`WireBus`: Redis) is handed the wire bytes alone: no signed envelope object, nor a
stamp apart from the bytes, is built for what only goes to the wire.

Nothing a consumer read is kept alive by its verifier: received bytes are checked each time they arrive (a
redelivered envelope meets its batch's proven record), and envelope objects handed over without bytes (an
in-process bus) are remembered weakly. Holding the envelopes themselves in a cache made every full garbage
collection of a long-lived consumer walk up to 65,536 of them (a third of the signed bus's time in the bus
benchmark).

The producer is authorised too: a message type names who may publish it (`action.authorized` only
governance; a proposal only `agent:<the agent it names>` …), so a valid key cannot speak for someone else.

`SignedBus` wraps any `Bus`: publishing signs with the keys of its `Keyring` and hands the batches' records to a
bus that keeps them (`BatchRecordBus`); reading turns every envelope that fails (unsigned, unknown producer, wrong
producer, bad signature, another run, a batch record missing or not the signed one) into a Delivery without an
envelope and with the reason, exactly like an undecodable entry — the recorder writes it to the ledger as
a dead letter and every other consumer skips it.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import operator
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from coalition.bus import messages as m
from coalition.bus.base import Bus, Delivery, WireBus
from coalition.bus.batch_records import Batch, BatchRecordBus, BatchRecords, RecordBook, holders
from coalition.bus.codec import encode
from coalition.bus.control_messages import RunAnnounced, StepBarrier, StepReported
from coalition.bus.envelope import Envelope
from coalition.bus.keys import RUNNER, KeyDirectory, Keyring, verify_signature
from coalition.bus.message import Message
from coalition.bus.sweep_messages import SweepJob

VERSION = "v4"
_STAMP_HEAD = VERSION + "."
_INDEX_AT = len(_STAMP_HEAD)  # where a stamp's index starts
_MESSAGE_DOMAIN = b"coalition envelope batch v4\n"
_DIGEST_DOMAIN = b"coalition envelope batch v4 leaves\n"
_CACHE_LIMIT = 65_536  # proven leaves / signatures / objects remembered; cleared when full (only a cache)
MAX_BATCH = 1024  # envelopes per signed batch: bounds a batch record (32 KB)
_LEAF_SIZE = 32
_BOOK_LIMIT = 4096  # batches a signing bus remembers itself when its bus keeps no records (see SignedBus)
_HELD_BYTES = 16 << 20  # wire bytes of batches signed here that a verifier holds (a few steps' publishes), oldest go


_sha256 = hashlib.sha256
_LEAF_PREFIX = _sha256(b"\x00")


def _leaf(data: bytes) -> bytes:
    leaf = _LEAF_PREFIX.copy()  # sha256(0x00 ‖ data) without copying data into a new bytes object
    leaf.update(data)
    return leaf.digest()


_DIGEST_PREFIX = _sha256(_DIGEST_DOMAIN)


def _digest(record: bytes, size: int) -> bytes:
    """What a batch's signature covers of its envelopes: sha256(domain ‖ size ‖ the leaves concatenated)."""
    digest = _DIGEST_PREFIX.copy()
    digest.update(size.to_bytes(4, "big"))
    digest.update(record)
    return digest.digest()


def _message_head(producer: str, run_id: str) -> bytes:
    who, run = producer.encode(), run_id.encode()
    return b"".join((_MESSAGE_DOMAIN, len(who).to_bytes(2, "big"), who, len(run).to_bytes(2, "big"), run))


def batch_message(producer: str, run_id: str, digest: bytes, size: int) -> bytes:
    """The bytes a batch's Ed25519 signature covers: the domain, the producer, the run, the batch's size and its
    digest (each name prefixed with its length, so no two (producer, run) pairs give the same bytes)."""
    return b"".join((_message_head(producer, run_id), size.to_bytes(4, "big"), digest))


# In canonical bytes the top-level members are sorted: …, "run_id", "signature", "sim_time", "source",
# "superstep", "type". Only strings and an integer follow "sim_time", and a string cannot hold `,"` unescaped,
# so the last `,"sim_time":` is the top-level one: the signature member goes (or is) right before it.
_AFTER_SIGNATURE = b',"sim_time":'
_MEMBER_HEAD = b',"signature":"'


def wire_bytes(unsigned: bytes, stamp: str) -> bytes:
    """The canonical bytes of the envelope with `signature=stamp`, from its canonical unsigned bytes."""
    at = unsigned.rfind(_AFTER_SIGNATURE)
    if at < 0:
        raise ValueError("not the canonical bytes of an envelope (no top-level sim_time)")
    return b"".join((unsigned[:at], _MEMBER_HEAD, stamp.encode("ascii"), b'"', unsigned[at:]))


def _member_span(raw: bytes, stamp: str) -> tuple[int, int] | None:
    """Where `,"signature":"<stamp>"` stands in wire bytes of canonical shape: right before the last
    `,"sim_time":` (None: bytes in any other shape, or a stamp sign_wire never writes)."""
    if not stamp.isascii() or '"' in stamp or "\\" in stamp:
        return None  # not a stamp sign_wire writes: the member would not be written as these characters
    end = raw.rfind(_AFTER_SIGNATURE)
    start = end - len(stamp) - _MEMBER_LENGTH
    if (
        start < 0
        or not raw.startswith(_MEMBER_HEAD, start)
        or not raw.startswith(stamp.encode("ascii"), start + _HEAD_LENGTH)
        or raw[end - 1] != _QUOTE
    ):
        return None
    return start, end


_HEAD_LENGTH = len(_MEMBER_HEAD)
_MEMBER_LENGTH = _HEAD_LENGTH + 1  # the head and the closing quote around the stamp
_QUOTE = ord('"')


def unsigned_bytes(raw: bytes, stamp: str) -> bytes | None:
    """The bytes a producer signed, from wire bytes in canonical shape carrying `stamp`; None for any other shape.

    Taken out: exactly one `,"signature":"<stamp>"` member, which must stand right before the last
    `,"sim_time":`. Whatever bytes this returns, they are verified, never trusted: only a producer's own
    canonical bytes carry a valid signature, and inserting one member into them is the only way to get `raw`.
    """
    span = _member_span(raw, stamp)
    return None if span is None else raw[: span[0]] + raw[span[1] :]


def _wire_leaf(raw: bytes, stamp: str) -> bytes | None:
    """The leaf of `unsigned_bytes(raw, stamp)` without building those bytes (None: not in canonical shape)."""
    span = _member_span(raw, stamp)
    return None if span is None else _span_leaf(raw, *span)


def _span_leaf(raw: bytes, start: int, end: int) -> bytes:
    """The leaf of `raw` without its bytes [start, end) (the signature member)."""
    leaf = _LEAF_PREFIX.copy()
    leaf.update(raw[:start])
    leaf.update(raw[end:])
    return leaf.digest()


_new_envelope = Envelope.__new__
_set_dict = object.__setattr__
# pydantic's own slots, set through their descriptors (what object.__setattr__ would look up each time)
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_SIGNATURE_SET = frozenset({"signature"})


def _with_signature(envelope: Envelope, stamp: str) -> Envelope:
    """`envelope.model_copy(update={"signature": stamp})` without pydantic's generic copy."""
    signed = _new_envelope(Envelope)
    fields = envelope.__dict__.copy()
    fields["signature"] = stamp
    _set_dict(signed, "__dict__", fields)
    _set_fields_set(signed, envelope.__pydantic_fields_set__ | _SIGNATURE_SET)
    _set_extra(signed, None)
    _set_private(signed, None)
    return signed


@dataclass(frozen=True, slots=True)
class Stamped:
    """A publish's envelopes signed: each one's stamp and wire bytes in order, the records of their batches and the
    batch of each envelope (`batch_of[i]`, an index into `batches`)."""

    stamps: list[str]
    wires: list[bytes]
    batches: list[Batch]
    batch_of: list[int]

    def keep(self, book: RecordBook) -> None:
        """Keep the batches' records in `book`, each for as many holders as it has envelopes here."""
        book.add(self.batches, holders(self.batch_of, len(self.batches)))


def stamp_batches(envelopes: Sequence[Envelope], key: Ed25519PrivateKey) -> Stamped:
    """The envelopes signed one Ed25519 signature per batch, a batch being up to MAX_BATCH envelopes of one producer
    (`source`) and one run, with the records of their batches."""
    stamps: list[str] = []
    wires, batches, batch_of = _stamped(envelopes, lambda _source: key, stamps)
    return Stamped(stamps, wires, batches, batch_of)


def sign_wire(
    envelopes: Sequence[Envelope], key: Ed25519PrivateKey, *, records: RecordBook | None = None
) -> list[tuple[Envelope, bytes]]:
    """Each envelope signed, with its wire bytes (`encode` of the signed envelope, encoded only once); the records of
    their batches kept in `records` when given (what a partial read needs)."""
    stamped = stamp_batches(envelopes, key)
    if records is not None:
        stamped.keep(records)
    return _signed(envelopes, stamped.stamps, stamped.wires)


def _signed(envelopes: Sequence[Envelope], stamps: list[str], wires: list[bytes]) -> list[tuple[Envelope, bytes]]:
    return [
        (_with_signature(envelope, stamp), wire) for envelope, stamp, wire in zip(envelopes, stamps, wires, strict=True)
    ]


def stamp_wire(
    envelopes: Sequence[Envelope], key: Ed25519PrivateKey, *, records: RecordBook | None = None
) -> tuple[list[str], list[bytes]]:
    """`sign_wire` without the signed envelope objects: each envelope's stamp and its wire bytes, in order."""
    stamped = stamp_batches(envelopes, key)
    if records is not None:
        stamped.keep(records)
    return stamped.stamps, stamped.wires


def _stamped(
    envelopes: Sequence[Envelope], key_of: Callable[[str], Ed25519PrivateKey], stamps: list[str] | None
) -> tuple[list[bytes], list[Batch], list[int]]:
    """The wire bytes of the envelopes signed one batch per producer and run (keys from `key_of(producer)`), in
    order, with the batches' records and each envelope's batch; their stamps appended to `stamps` when given (a bus
    of bytes needs none)."""
    if not envelopes:
        return [], [], []
    first = envelopes[0]
    source, run_id = first.source, first.run_id
    for envelope in envelopes:
        if envelope.source != source or envelope.run_id != run_id:
            break
    else:  # the usual case: one producer's step in one run
        head = _message_head(source, run_id)
        key = key_of(source)
        wires: list[bytes] = []
        batches: list[Batch] = []
        batch_of: list[int] = []
        for start in range(0, len(envelopes), MAX_BATCH):
            part = envelopes[start : start + MAX_BATCH]
            batch_of += [len(batches)] * len(part)
            batches.append(_stamp_batch(part, key, head, stamps, wires))
        return wires, batches, batch_of
    by_batch: dict[tuple[str, str], list[int]] = {}
    for i, envelope in enumerate(envelopes):
        by_batch.setdefault((envelope.source, envelope.run_id), []).append(i)
    every_stamp, every_wire, every_batch = [""] * len(envelopes), [b""] * len(envelopes), [0] * len(envelopes)
    all_batches: list[Batch] = []
    for indices in by_batch.values():
        part_stamps: list[str] | None = None if stamps is None else []
        part_wires, part_batches, part_of = _stamped([envelopes[i] for i in indices], key_of, part_stamps)
        for n, i in enumerate(indices):
            every_wire[i] = part_wires[n]
            every_batch[i] = len(all_batches) + part_of[n]
            if part_stamps is not None:
                every_stamp[i] = part_stamps[n]
        all_batches += part_batches
    if stamps is not None:
        stamps += every_stamp
    return every_wire, all_batches, every_batch


def _stamp_batch(
    batch: Sequence[Envelope],
    key: Ed25519PrivateKey,
    message_head: bytes,
    stamps: list[str] | None,
    wires: list[bytes],
) -> Batch:
    """One batch of one producer and run: its record (the leaves concatenated), one signature over
    `message_head ‖ size ‖ digest`, each envelope's stamp `v4.<index>.<size>.<signature>` spliced into its canonical
    bytes (appended to `wires`; the stamp itself to `stamps` when given). Returns (signature, record).

    The member is written in one join: its head with the stamp's `v4.<index>.<size>.` (one per index, cached per
    size), then `<signature>"`, shared by the whole batch."""
    unsigned = [encode(envelope, unsigned=True) for envelope in batch]
    record = b"".join(map(_leaf, unsigned))
    size = len(unsigned)
    signature = key.sign(b"".join((message_head, size.to_bytes(4, "big"), _digest(record, size))))
    tail = binascii.b2a_base64(signature, newline=False) + b'"'
    find, join, append = _AFTER_SIGNATURE, b"".join, wires.append
    for head, data in zip(_member_heads(size), unsigned, strict=True):
        at = data.rfind(find)
        if at < 0:
            raise ValueError("not the canonical bytes of an envelope (no top-level sim_time)")
        wire = join((data[:at], head, tail, data[at:]))
        append(wire)
        if stamps is not None:
            stamps.append(wire[at + _HEAD_LENGTH : at + len(wire) - len(data) - 1].decode("ascii"))
    return signature, record


def sign_batch(
    envelopes: Sequence[Envelope], key: Ed25519PrivateKey, *, records: RecordBook | None = None
) -> list[Envelope]:
    """The envelopes with their signatures (see `sign_wire`)."""
    return [envelope for envelope, _ in sign_wire(envelopes, key, records=records)]


# -- who may publish what ----------------------------------------------------------------------------------

_FIXED_PRODUCER: dict[str, str] = {
    m.Observation.TYPE: "world",
    m.RunStarted.TYPE: "runner",
    m.RunFinished.TYPE: "runner",
    m.VerdictIssued.TYPE: "governance",
    m.EscalationResolved.TYPE: "governance",
    m.ActionAuthorized.TYPE: "governance",
    m.ActionExecuted.TYPE: "executor",
    SweepJob.TYPE: RUNNER,  # the sweep's coordinator: a worker's agent keys cannot send jobs
    RunAnnounced.TYPE: RUNNER,  # the run's coordinator
    StepBarrier.TYPE: RUNNER,  # the run's coordinator
}
# messages whose producer is the agent they name
_AGENT_FIELD: dict[str, Callable[[Message], str]] = {
    m.ActionProposed.TYPE: lambda p: str(getattr(p, "agent", "")),
    m.AgentMessage.TYPE: lambda p: str(getattr(p, "sender", "")),
    m.ModelCalled.TYPE: lambda p: str(getattr(p, "agent", "")),
    m.ModelStopped.TYPE: lambda p: str(getattr(p, "agent", "")),
    m.ContentScreened.TYPE: lambda p: str(getattr(p, "agent", "")),
    StepReported.TYPE: lambda p: str(getattr(p, "agent", "")),  # an agent worker's report of the agent's step
}
# human decisions never travel on the bus: they are signed by their approver and appended to the ledger
_NOT_ON_THE_BUS = frozenset({m.ApprovalGranted.TYPE, m.ApprovalRejected.TYPE})


def producer_problem(envelope: Envelope) -> str | None:
    """Why this producer may not publish this message (None: it may)."""
    kind, source = envelope.type, envelope.source
    if kind in _NOT_ON_THE_BUS:
        return f"{kind} does not travel on the bus (human decisions are signed ledger entries)"
    fixed = _FIXED_PRODUCER.get(kind)
    if fixed is not None and source != fixed:
        return f"{kind} may be published by {fixed} only, not by {source}"
    named = _AGENT_FIELD.get(kind)
    if named is not None and source != f"agent:{named(envelope.payload)}":
        return f"{source} may not publish {kind} in the name of agent {named(envelope.payload)!r}"
    return None


# -- verification ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Stamp:
    index: int
    size: int
    signature: bytes


_Proven = tuple[str, str, bytes]  # (producer, run, batch signature)


class Verifier:
    """Checks envelopes against the trusted producers' public keys and (when given) the run they belong to; the
    records of partly read batches come from `records` (or the source a check is handed)."""

    def __init__(
        self, directory: KeyDirectory, *, run_id: str | None = None, records: BatchRecords | None = None
    ) -> None:
        self.directory = directory
        self.run_id = run_id
        self.records = records
        # (producer, run, signature) → the record (leaves concatenated, in order) of the batch whose digest and size
        # it signed, as proven
        self._proven: dict[_Proven, bytes] = {}
        self._proven_size = 0
        self._signatures: dict[str, bytes] = {}  # base64 text → the 64 bytes (every envelope of a batch repeats it)
        self._fetched: dict[bytes, bytes | None] = {}  # records fetched for the read being checked
        # envelope objects that verified (an in-process bus hands every group the same object), held weakly: a
        # verifier must not keep what it read alive (65,536 envelopes held for a cache made every full garbage
        # collection of a consumer walk them); an entry goes when its envelope does, so an id is never reused here
        self._objects: weakref.WeakValueDictionary[int, Envelope] = weakref.WeakValueDictionary()
        # (type, trusted producer) pairs allowed whatever the payload (`producer_problem` said None for a type that
        # names no agent): a whole read asks once per verifier, not once per envelope; at most types × producers
        self._allowed: set[tuple[str, str]] = set()
        # producer → (the private key a SignedBus of this process signed with, whether it is the key trusted here)
        self._own_keys: dict[str, tuple[Ed25519PrivateKey, bool]] = {}
        # (producer, run, signature) → (the wire bytes of a batch signed here, in order, their total length), oldest
        # first; at most _HELD_BYTES in all
        self._held: dict[_Proven, tuple[list[bytes], int]] = {}
        self._held_bytes = 0

    def problem(self, envelope: Envelope, raw: bytes = b"", records: BatchRecords | None = None) -> str | None:
        """Why this envelope must not be acted on (None: it verifies). `raw` is its wire bytes when known; `records`
        where its batch's record is found (default: this verifier's).

        Bytes are checked every time (a redelivered envelope's leaf meets its batch's proven record at once); an
        object handed without bytes is remembered while it lives, so an in-process bus verifies it once."""
        if not raw and self._objects.get(id(envelope)) is envelope:
            return None  # this very (frozen) object verified before
        why = self._check(envelope, raw, records or self.records)
        if why is None and not raw:
            if len(self._objects) >= _CACHE_LIMIT:
                self._objects.clear()
            self._objects[id(envelope)] = envelope
        return why

    def _check(self, envelope: Envelope, raw: bytes, records: BatchRecords | None) -> str | None:
        source = envelope.source
        if self.run_id is not None and envelope.run_id != self.run_id:
            return f"envelope {envelope.id} belongs to run {envelope.run_id}, not {self.run_id} (replayed)"
        if envelope.signature is None:
            return f"envelope {envelope.id} from {source} is not signed"
        key = self.directory.get(source)
        if key is None:
            return f"envelope {envelope.id} names producer {source!r}, which has no trusted key"
        why = producer_problem(envelope)
        if why is not None:
            return f"envelope {envelope.id}: {why}"
        stamp = self._parse(envelope.signature)
        if stamp is None:
            return f"envelope {envelope.id} from {source} has a malformed signature"
        if not stamp.index < stamp.size:
            return f"envelope {envelope.id} from {source} names leaf {stamp.index} of a batch of {stamp.size}"
        batch = (source, envelope.run_id, stamp.signature)
        if raw and (held := self._held.get(batch)) is not None:
            wires = held[0]
            if len(wires) == stamp.size and wires[stamp.index] == raw:
                return None  # the very bytes this process signed at that index (see `signed_here`)
        received = _wire_leaf(raw, envelope.signature) if raw else None
        if received is not None:
            why = self._leaf_problem(batch, key, received, stamp, records)
            if why is None:
                return None
        canonical = _leaf(encode(envelope, unsigned=True))
        if received is None or canonical != received:  # bytes in another shape: check what they decode to
            why = self._leaf_problem(batch, key, canonical, stamp, records)
        return None if why is None else f"envelope {envelope.id} {why}"

    def _parse(self, text: str) -> _Stamp | None:
        parts = text.split(".")
        if len(parts) != 4 or parts[0] != VERSION:
            return None
        signature = self._signature(parts[3])
        try:
            index, size = int(parts[1]), int(parts[2])
        except ValueError:
            return None
        if signature is None or not 0 < size <= MAX_BATCH or index < 0:
            return None
        return _Stamp(index, size, signature)

    def _signature(self, text: str) -> bytes | None:
        """The 64 signature bytes written as `text` (None: not base64 of 64 bytes); a batch's envelopes share it."""
        signature = self._signatures.get(text)
        if signature is None:
            try:
                signature = binascii.a2b_base64(text)
            except binascii.Error:
                return None
            if len(signature) != 64:
                return None
            if len(self._signatures) >= _CACHE_LIMIT:
                self._signatures.clear()
            self._signatures[text] = signature
        return signature

    def _leaf_problem(
        self, batch: _Proven, key: Ed25519PublicKey, leaf: bytes, stamp: _Stamp, records: BatchRecords | None
    ) -> str | None:
        """Why `leaf` is not leaf `stamp.index` of a batch of `stamp.size` whose digest the batch's producer signed
        for its run with the batch's signature (None: it is). The batch's leaves are the proven record, else the
        envelope's own leaf for a batch of one, else the batch record, checked against the signature before it is
        used."""
        source = batch[0]
        size = stamp.size
        record = self._proven.get(batch)
        if record is None:
            if size == 1:
                record = leaf
            else:
                record = self._record(batch[2], records)
                if record is None:
                    return f"from {source} belongs to a batch whose record is missing (trimmed, or never published)"
                if len(record) != size * _LEAF_SIZE:
                    return f"does not verify against {source}'s key (its batch record is not the signed batch's)"
            if not verify_signature(key, batch[2], batch_message(source, batch[1], _digest(record, size), size)):
                if size == 1:
                    return f"does not verify against {source}'s key (forged or altered)"
                return f"does not verify against {source}'s key (its batch record is not the signed batch's)"
            self._prove(batch, record)
        at = stamp.index * _LEAF_SIZE
        if len(record) != size * _LEAF_SIZE or record[at : at + _LEAF_SIZE] != leaf:
            return f"does not verify against {source}'s key (forged or altered)"
        return None

    def _record(self, signature: bytes, records: BatchRecords | None) -> bytes | None:
        if signature in self._fetched:
            return self._fetched[signature]
        return None if records is None else records.batch_records([signature])[0]

    def signed_here(
        self, producer: str, run_id: str, key: Ed25519PrivateKey, batch: Batch, wires: Sequence[bytes]
    ) -> None:
        """Take a batch this process just signed with `key` as proven, when `key` is the private half of the key
        trusted here for `producer`: its signature holds over the digest of its record by construction, so reading the
        batch back costs no Ed25519 verification. `wires` are the batch's wire bytes in order, as this process wrote
        them (each the unsigned bytes whose leaf the record holds at that index, with the stamp spliced in).

        Only what this process holds in memory is remembered (the signature, the leaves it hashed before signing and
        the bytes it wrote), never anything read back: received bytes equal to those it wrote are those bytes; any
        other bytes still have their leaves hashed and compared with the record, so an entry altered in Redis fails its
        leaf, and a batch record altered there is never consulted for this batch."""
        if self.run_id is not None and run_id != self.run_id:
            return  # refused on read whatever its signature
        own = self._own_keys.get(producer)
        if own is None or own[0] is not key:
            trusted = self.directory.get(producer)
            matches = trusted is not None and trusted.public_bytes_raw() == key.public_key().public_bytes_raw()
            own = self._own_keys[producer] = (key, matches)
        if own[1]:
            signed = (producer, run_id, batch[0])
            self._prove(signed, batch[1])
            self._hold(signed, list(wires))

    def _hold(self, batch: _Proven, wires: list[bytes]) -> None:
        """Keep the wire bytes of a batch signed here (see `signed_here`), forgetting the oldest beyond _HELD_BYTES."""
        size = sum(map(len, wires))
        if size > _HELD_BYTES:
            return
        old = self._held.pop(batch, None)
        if old is not None:
            self._held_bytes -= old[1]
        self._held[batch] = (wires, size)
        self._held_bytes += size
        while self._held_bytes > _HELD_BYTES:
            self._held_bytes -= self._held.pop(next(iter(self._held)))[1]

    def _prove(self, batch: _Proven, record: bytes) -> None:
        """Remember the record of a batch whose digest and size its producer signed for its run with its signature
        (only a cache: cleared when full)."""
        if self._proven_size >= _CACHE_LIMIT:
            self._proven.clear()
            self._proven_size = 0
        self._proven[batch] = record
        self._proven_size += len(record) // _LEAF_SIZE

    def checked(self, deliveries: list[Delivery], records: BatchRecords | None = None) -> list[Delivery]:
        """The deliveries with every envelope that fails turned into a rejected Delivery carrying the reason; the
        records of batches read in part come from `records` (default: this verifier's), fetched in one call."""
        verified = self._whole_batches(deliveries)
        if len(verified) == len(deliveries):
            return deliveries
        records = records or self.records
        self._prefetch([d for i, d in enumerate(deliveries) if i not in verified], records)
        out = deliveries
        try:
            for i, delivery in enumerate(deliveries):
                envelope = delivery.envelope
                if envelope is None or i in verified:
                    continue
                why = self.problem(envelope, delivery.raw, records)
                if why is not None:
                    if out is deliveries:
                        out = list(deliveries)
                    raw = delivery.raw or encode(envelope)
                    out[i] = Delivery(
                        delivery.topic, delivery.broker_id, delivery.deliveries, None, raw, f"rejected: {why}"
                    )
        finally:
            self._fetched.clear()
        return out

    def _prefetch(self, deliveries: list[Delivery], records: BatchRecords | None) -> None:
        """Fetch in one call the records of the batches these envelopes name that are neither proven nor of one."""
        if records is None:
            return
        wanted: dict[bytes, None] = {}
        for delivery in deliveries:
            envelope = delivery.envelope
            if envelope is None or envelope.signature is None:
                continue
            stamp = self._parse(envelope.signature)
            if (
                stamp is not None
                and stamp.size > 1
                and (envelope.source, envelope.run_id, stamp.signature) not in self._proven
            ):
                wanted[stamp.signature] = None
        if wanted:
            self._fetched.update(zip(wanted, records.batch_records(list(wanted)), strict=True))

    def _whole_batches(self, deliveries: list[Delivery]) -> set[int]:
        """Positions of the deliveries that verified together because they hold every envelope of a signed batch.

        Their record is the received bytes' leaves concatenated (one hash per envelope; no record fetched), each
        stamp compared whole with the one its producer wrote for that leaf of a batch of that size (`v4.<index>.
        <size>.<signature>`, base64 as the signer writes it), and the signature checked once over the record's digest.
        A read usually holds a batch in the order it was published, so the record is first taken in the order read;
        only when the stamps say otherwise are their indices parsed and the record taken again in their order. Only
        envelopes that pass every other check of `_check` and arrive in the canonical shape take part; anything else
        (a partial batch, a duplicate index, a digest that does not verify, a stamp written in any other way) is left
        to `problem`, envelope by envelope, which says why. Leaves are hashed only for a batch read whole (a part of
        one is hashed by `problem`), and not for the bytes of a batch signed here read back as written (`signed_here`).

        A leaf is hashed from the bytes without the `len(stamp) + 15` bytes that end right before the last
        `,"sim_time":` and must open with `,"signature":"` and close with a quote (`_member_span` also compares the
        stamp's own bytes there; here that follows once the digest verifies: the rest is then a producer's canonical
        bytes, which hold no top-level signature, so the decoded stamp was read from that span, and a JSON string
        read from a span of `len(stamp)` bytes has `len(stamp)` characters only when it is the whole span, in ASCII,
        without escapes: the span is exactly the member `,"signature":"<stamp>"`).
        """
        whole = self._one_batch(deliveries)
        if whole is not None:
            return whole
        # (producer, run, signature text) → [(position, bytes, member start, member end, stamp)] in the order read
        groups: dict[tuple[str, str, str], list[tuple[int, bytes, int, int, str]]] = {}
        allowed = self._allowed
        members: list[tuple[int, bytes, int, int, str]] = []
        tail, group_source, group_run = "", "", ""  # the last group's: most reads hold one batch
        find, member_length, head, quote = _AFTER_SIGNATURE, _MEMBER_LENGTH, _MEMBER_HEAD, _QUOTE
        for i, delivery in enumerate(deliveries):
            envelope = delivery.envelope
            if envelope is None:
                continue
            stamp = envelope.signature
            if stamp is None:
                continue
            source, kind = envelope.source, envelope.type
            if (kind, source) not in allowed:
                if producer_problem(envelope) is not None:
                    continue
                if kind not in _AGENT_FIELD and source in self.directory:  # allowed whatever the payload
                    allowed.add((kind, source))
            raw = delivery.raw
            end = raw.rfind(find)
            start = end - len(stamp) - member_length
            if start < 0 or raw[end - 1] != quote or not raw.startswith(head, start):
                continue
            run = envelope.run_id
            if not tail or not stamp.endswith(tail) or source != group_source or run != group_run:
                text = stamp[stamp.rfind(".") + 1 :]
                tail, group_source, group_run = "." + text, source, run
                members = groups.setdefault((source, run, text), [])
            members.append((i, raw, start, end, stamp))
        verified: set[int] = set()
        for (source, run, text), spans in groups.items():
            signature = self._signature(text)
            key = self.directory.get(source)
            if signature is None or key is None or (self.run_id is not None and run != self.run_id):
                continue
            if len(spans) > MAX_BATCH or _named_size(spans[0][4]) != len(spans):
                continue  # part of a batch, or more than it holds: each left to its own check (leaves not hashed here)
            signed = (source, run, signature)
            held = self._held.get(signed)
            if held is not None and [span[1] for span in spans] == held[0]:
                verified.update(span[0] for span in spans)  # the very bytes this process signed, in order
                continue
            group = [(i, _span_leaf(raw, start, end), stamp) for i, raw, start, end, stamp in spans]
            record, matched = _matching_stamps(group, text)
            if len(matched) < len(group) and (ordered := _by_index(group)) is not None:
                record, matched = _matching_stamps(ordered, text)  # read out of order: the stamps' order
            if not matched:
                continue
            if self._proven.get(signed) != record:
                size = len(group)
                if not verify_signature(key, signature, batch_message(source, run, _digest(record, size), size)):
                    continue  # each envelope's own check names what is wrong
                self._prove(signed, record)
            verified.update(matched)
        return verified

    def _one_batch(self, deliveries: list[Delivery]) -> set[int] | None:
        """Every position, when the read is one whole batch in the order it was signed and verifies: what the loop of
        `_whole_batches` accepts for such a read, found with a few calls over the whole read rather than a tuple,
        a group lookup and a stamp built for every envelope (None: anything else; the loop then decides).

        Accepted only when the loop would accept every delivery: each has an envelope, a stamp and a (type,
        producer) pair already allowed; one producer and one run; the stamps, joined, are exactly those written for
        indices 0 … n−1 of a batch of n with the first stamp's signature text (one join compared, with the stamps'
        newlines counted by that comparison: the text has none, so neither has any stamp, and equal joins are equal
        stamps one by one); each wire in canonical shape; and the signature checks out over the leaves' digest."""
        size = len(deliveries)
        if not 0 < size <= MAX_BATCH:
            return None
        try:
            envelopes = list(map(_ENVELOPE_OF, deliveries))
            stamps = list(map(_STAMP_OF, envelopes))  # AttributeError: a delivery without an envelope
        except AttributeError:
            return None
        if None in stamps:
            return None
        first = envelopes[0]
        source, run = first.source, first.run_id
        if list(map(_SOURCE_OF, envelopes)).count(source) != size or list(map(_RUN_OF, envelopes)).count(run) != size:
            return None
        allowed = self._allowed
        if any((kind, source) not in allowed for kind in set(map(_TYPE_OF, envelopes))):
            return None  # the loop asks producer_problem (and remembers the pairs it allows)
        stamp = stamps[0]
        text = stamp[stamp.rfind(".") + 1 :]
        if "\n" in text or "\n".join(stamps) != (text + "\n").join(_heads(size)) + text:
            return None
        signature = self._signature(text)
        key = self.directory.get(source)
        if signature is None or key is None or (self.run_id is not None and run != self.run_id):
            return None
        signed = (source, run, signature)
        raws = list(map(_RAW_OF, deliveries))
        held = self._held.get(signed)
        if held is not None and raws == held[0]:
            return set(range(size))  # the very bytes this process signed, in order (see `signed_here`)
        leaves: list[bytes] = []
        append, find, member_length, head, quote = leaves.append, _AFTER_SIGNATURE, _MEMBER_LENGTH, _MEMBER_HEAD, _QUOTE
        for raw, stamp in zip(raws, stamps, strict=True):
            end = raw.rfind(find)
            start = end - len(stamp) - member_length
            if start < 0 or raw[end - 1] != quote or not raw.startswith(head, start):
                return None
            leaf = _LEAF_PREFIX.copy()
            leaf.update(raw[:start])
            leaf.update(raw[end:])
            append(leaf.digest())
        record = b"".join(leaves)
        if self._proven.get(signed) != record:
            if not verify_signature(key, signature, batch_message(source, run, _digest(record, size), size)):
                return None
            self._prove(signed, record)
        return set(range(size))


_ENVELOPE_OF = operator.attrgetter("envelope")
_RAW_OF = operator.attrgetter("raw")
_STAMP_OF = operator.attrgetter("signature")
_SOURCE_OF = operator.attrgetter("source")
_RUN_OF = operator.attrgetter("run_id")
_TYPE_OF = operator.attrgetter("type")


def _named_size(stamp: str) -> int:
    """The size a stamp names (-1: none readable)."""
    first = stamp.find(".", _INDEX_AT)
    second = stamp.find(".", first + 1)
    named = stamp[first + 1 : second]
    return int(named) if first > 0 and second > 0 and named.isdigit() else -1


def _matching_stamps(members: list[tuple[int, bytes, str]], text: str) -> tuple[bytes, list[int]]:
    """The record of the members' leaves in this order, and the positions of the members whose stamp is the one
    written for their leaf of a batch of this size with signature `text` (a stamp that does not match is left to its
    own check; none matching: the members are not in this order, or not one batch)."""
    matched = [i for head, (i, _, stamp) in zip(_heads(len(members)), members, strict=True) if stamp == head + text]
    return b"".join([leaf for _, leaf, _ in members]), matched


@functools.lru_cache(maxsize=32)
def _heads(size: int) -> list[str]:
    """`v4.<index>.<size>.` for each index of a batch of `size`: what every stamp of such a batch starts with."""
    return [f"{_STAMP_HEAD}{index}.{size}." for index in range(size)]


@functools.lru_cache(maxsize=32)
def _member_heads(size: int) -> list[bytes]:
    """`,"signature":"v4.<index>.<size>.` for each index of a batch of `size`: the wire member up to the signature."""
    return [_MEMBER_HEAD + head.encode("ascii") for head in _heads(size)]


def _by_index(members: list[tuple[int, bytes, str]]) -> list[tuple[int, bytes, str]] | None:
    """The members of one batch in the order of their stamps' indices, when they hold each index of the size their
    stamps name exactly once (None: a partial batch, a duplicate, a size or index that does not parse)."""
    size = len(members)
    if size > MAX_BATCH:
        return None
    ordered: list[tuple[int, bytes, str] | None] = [None] * size
    for member in members:
        stamp = member[2]
        first = stamp.find(".", _INDEX_AT)
        second = stamp.find(".", first + 1)
        index, named = stamp[_INDEX_AT:first], stamp[first + 1 : second]
        if not (first > 0 and second > 0 and index.isdigit() and named.isdigit() and int(named) == size):
            return None
        at = int(index)
        if at >= size or ordered[at] is not None:
            return None
        ordered[at] = member
    return cast(list[tuple[int, bytes, str]], ordered)


class SignedBus:
    """A `Bus` that signs what this process publishes and verifies everything it reads (see module doc).

    The records of its batches go where the bus keeps them (`BatchRecordBus`: Redis, the memory bus), in the same
    step as the envelopes; a bus that keeps none has this signing bus keep the last `_BOOK_LIMIT` batches' records
    itself, which only its own reads can use."""

    def __init__(self, inner: Bus, keyring: Keyring, verifier: Verifier) -> None:
        self.inner = inner
        self.keyring = keyring
        self.verifier = verifier
        self._wire = inner if isinstance(inner, WireBus) else None
        self._record_bus = inner if isinstance(inner, BatchRecordBus) else None
        self._book = None if self._record_bus is not None else RecordBook(limit=_BOOK_LIMIT)
        self._records: BatchRecords = self._record_bus or cast(RecordBook, self._book)

    def __repr__(self) -> str:
        return f"SignedBus({self.inner!r})"

    def sign(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Sign envelopes, one batch per producer; raises KeyStoreError for a producer this process holds no key for.
        Nothing is published, nor any batch record kept."""
        return [envelope for envelope, _ in self.sign_wire(envelopes)]

    def sign_wire(self, envelopes: Sequence[Envelope]) -> list[tuple[Envelope, bytes]]:
        """`sign`, each signed envelope with its wire bytes."""
        stamped = self.stamped(envelopes)
        return _signed(envelopes, stamped.stamps, stamped.wires)

    def stamp_wire(self, envelopes: Sequence[Envelope]) -> tuple[list[str], list[bytes]]:
        """Each envelope's stamp and wire bytes (see `stamp_wire`), one batch per producer and run; raises KeyStoreError
        for a producer this process holds no key for."""
        stamped = self.stamped(envelopes)
        return stamped.stamps, stamped.wires

    def stamped(self, envelopes: Sequence[Envelope]) -> Stamped:
        """The envelopes signed with the keys of this bus's keyring, with their batches' records (not published)."""
        stamps: list[str] = []
        wires, batches, batch_of = _stamped(envelopes, self.keyring.private, stamps)
        return Stamped(stamps, wires, batches, batch_of)

    def _signed_here(
        self, envelopes: Sequence[Envelope], wires: list[bytes], batches: list[Batch], batch_of: list[int]
    ) -> None:
        """Hand the verifier the batches this bus is publishing, with their wire bytes (see `Verifier.signed_here`)."""
        if len(batches) == 1:  # the usual case: one producer's step in one run
            first = envelopes[0]
            source = first.source
            self.verifier.signed_here(source, first.run_id, self.keyring.private(source), batches[0], wires)
            return
        firsts: dict[int, Envelope] = {}  # the batch's first envelope names its producer and run
        wires_of: dict[int, list[bytes]] = {}
        for envelope, wire, batch in zip(envelopes, wires, batch_of, strict=True):
            firsts.setdefault(batch, envelope)
            wires_of.setdefault(batch, []).append(wire)
        for batch, envelope in firsts.items():
            source = envelope.source
            self.verifier.signed_here(
                source, envelope.run_id, self.keyring.private(source), batches[batch], wires_of[batch]
            )

    def publish(self, topic: str, envelope: Envelope) -> str:
        return self.publish_many([(topic, envelope)])[0]

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        envelopes = [envelope for _, envelope in items]
        if self._record_bus is not None and self._wire is not None:
            # a bus of bytes: no signed envelope object is built, no stamp kept apart
            wires, batches, batch_of = _stamped(envelopes, self.keyring.private, None)
            self._signed_here(envelopes, wires, batches, batch_of)
            return self._record_bus.publish_batches(
                [(topic, None, data) for (topic, _), data in zip(items, wires, strict=True)], batches, batch_of
            )
        stamped = self.stamped(envelopes)
        self._signed_here(envelopes, stamped.wires, stamped.batches, stamped.batch_of)
        signed = _signed(envelopes, stamped.stamps, stamped.wires)
        encoded = [(topic, envelope, data) for (topic, _), (envelope, data) in zip(items, signed, strict=True)]
        if self._record_bus is not None:
            return self._record_bus.publish_batches(encoded, stamped.batches, stamped.batch_of)
        stamped.keep(cast(RecordBook, self._book))
        return self.inner.publish_encoded(encoded)

    def publish_encoded(self, items: Sequence[tuple[str, Envelope, bytes]]) -> list[str]:
        return self.publish_many([(topic, envelope) for topic, envelope, _ in items])  # signed here, so encoded again

    def publish_raw(self, topic: str, data: bytes) -> str:
        return self.inner.publish_raw(topic, data)

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        self.inner.ensure_group(topic, group, from_start=from_start)

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        return self.verifier.checked(
            self.inner.read(topics, group, consumer, count=count, block_ms=block_ms), self._records
        )

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        return self.verifier.checked(
            self.inner.reclaim_stale(topics, group, consumer, min_idle_ms=min_idle_ms, count=count), self._records
        )

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> int:
        return self.inner.ack(group, deliveries)

    def pending_count(self, topic: str, group: str) -> int:
        return self.inner.pending_count(topic, group)

    def length(self, topic: str) -> int:
        return self.inner.length(topic)

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        return self.verifier.checked(self.inner.range(topic, start=start, end=end, count=count), self._records)

    def close(self) -> None:
        self.inner.close()
