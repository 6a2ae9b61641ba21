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
(one `publish_many`, one batch per producer and run) once: the leaves are sha256(0x00 ‖ unsigned bytes), inner
nodes sha256(0x01 ‖ left ‖ right) (RFC 6962's domain separation; an odd node is carried up unchanged), and the
signature covers the producer, the run id and the root (`root_message`), so a root signed in one run or by one
producer proves nothing in another run or for another producer, even where two producers share a key. Each
envelope carries `v2.<index>.<size>.<audit path>.<signature>`, enough to check itself alone. A consumer
recomputes its leaf and climbs its audit path; it verifies the root's signature once per batch and then
remembers every node of the climb as proven for that (producer, run, signature), so the next envelope of the
batch stops at the first proven node (about two hashes instead of log2(size)). A node is only ever proven by a
signature check of the root above it, per producer and run, so the cache never accepts different bytes nor
lends one producer's tree to another. A read that holds every envelope of a batch (the usual case: a consumer reads what
one `publish_many` appended) does not climb at all: the tree is rebuilt from the received bytes' leaves (in the order
read, or else in the order the stamps name), its root checked against the signature once, and each stamp compared
whole with the stamp the signer wrote for that leaf of that tree; a stamp spelt in any other way is left to the
envelope's own check, so a stamp is accepted in a whole read exactly when it would be alone (`Verifier.checked`).

A bus that keeps only bytes (`WireBus`: Redis) is handed the wire bytes alone: no signed envelope object, nor a
stamp apart from the bytes, is built for what only goes to the wire.

Nothing a consumer read is kept alive by its verifier: received bytes are checked each time they arrive (a
redelivered envelope meets its batch's proven nodes after a hash or two), and envelope objects handed over
without bytes (an in-process bus) are remembered weakly. Holding the envelopes themselves in a cache made
every full garbage collection of a long-lived consumer walk up to 65,536 of them (a third of the signed bus's
time in the bus benchmark).

The producer is authorised too: a message type names who may publish it (`action.authorized` only
governance; a proposal only `agent:<the agent it names>` …), so a valid key cannot speak for someone else.

`SignedBus` wraps any `Bus`: publishing signs with the keys of its `Keyring`; reading turns every envelope
that fails (unsigned, unknown producer, wrong producer, bad signature, another run) into a Delivery without
an envelope and with the reason, exactly like an undecodable entry — the recorder writes it to the ledger as
a dead letter and every other consumer skips it.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel

from coalition.bus import messages as m
from coalition.bus.base import Bus, Delivery, WireBus
from coalition.bus.codec import encode
from coalition.bus.envelope import Envelope
from coalition.bus.keys import KeyDirectory, Keyring, verify_signature
from coalition.bus.message import Message

VERSION = "v2"
_STAMP_HEAD = VERSION + "."
_INDEX_AT = len(_STAMP_HEAD)  # where a stamp's index starts
_ROOT_DOMAIN = b"coalition envelope batch v2\n"
_CACHE_LIMIT = 65_536  # proven nodes / signatures / objects remembered; cleared when full (only a cache)
MAX_BATCH = 1024  # leaves per signed tree: bounds the audit path every envelope carries (≤ 10 hashes)


_sha256 = hashlib.sha256
_LEAF_PREFIX = _sha256(b"\x00")


def _leaf(data: bytes) -> bytes:
    leaf = _LEAF_PREFIX.copy()  # sha256(0x00 ‖ data) without copying data into a new bytes object
    leaf.update(data)
    return leaf.digest()


def _node(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    level = leaves
    while len(level) > 1:
        pairs = iter(level)  # (0, 1), (2, 3), …: zip stops before an odd last node
        above = [_sha256(b"\x01" + left + right).digest() for left, right in zip(pairs, pairs, strict=False)]
        if len(level) % 2:
            above.append(level[-1])  # an odd node is carried up unchanged
        levels.append(above)
        level = above
    return levels


def _paths(levels: list[list[bytes]]) -> list[bytes]:
    """Every leaf's audit path (siblings from the bottom up), siblings sharing the part above them."""
    above = [b""]  # the root's path
    for level in reversed(levels[:-1]):
        n = len(level)
        above = [(level[i ^ 1] if i ^ 1 < n else b"") + above[i >> 1] for i in range(n)]
    return above


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def root_message(producer: str, run_id: str, root: bytes) -> bytes:
    """The bytes a batch's Ed25519 signature covers: the domain, the producer, the run and the Merkle root (each
    name prefixed with its length, so no two (producer, run) pairs give the same bytes)."""
    who, run = producer.encode(), run_id.encode()
    return b"".join((_ROOT_DOMAIN, len(who).to_bytes(2, "big"), who, len(run).to_bytes(2, "big"), run, root))


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
    if span is None:
        return None
    leaf = _LEAF_PREFIX.copy()
    leaf.update(raw[: span[0]])
    leaf.update(raw[span[1] :])
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


def sign_wire(envelopes: Sequence[Envelope], key: Ed25519PrivateKey) -> list[tuple[Envelope, bytes]]:
    """Each envelope signed, with its wire bytes (`encode` of the signed envelope, encoded only once): one
    Ed25519 signature per batch, a batch being up to MAX_BATCH envelopes of one producer (`source`) and one run."""
    return _signed(envelopes, *stamp_wire(envelopes, key))


def _signed(envelopes: Sequence[Envelope], stamps: list[str], wires: list[bytes]) -> list[tuple[Envelope, bytes]]:
    return [
        (_with_signature(envelope, stamp), wire) for envelope, stamp, wire in zip(envelopes, stamps, wires, strict=True)
    ]


def stamp_wire(envelopes: Sequence[Envelope], key: Ed25519PrivateKey) -> tuple[list[str], list[bytes]]:
    """`sign_wire` without the signed envelope objects: each envelope's stamp and its wire bytes, in order (what a
    bus that keeps only bytes needs; building an object per envelope cost the signed bus a tenth of its time)."""
    stamps: list[str] = []
    return stamps, _stamped(envelopes, lambda _source: key, stamps)


def _stamped(
    envelopes: Sequence[Envelope], key_of: Callable[[str], Ed25519PrivateKey], stamps: list[str] | None
) -> list[bytes]:
    """The wire bytes of the envelopes signed one batch per producer and run (keys from `key_of(producer)`), in
    order; their stamps appended to `stamps` when given (a bus of bytes needs none)."""
    if not envelopes:
        return []
    first = envelopes[0]
    source, run_id = first.source, first.run_id
    for envelope in envelopes:
        if envelope.source != source or envelope.run_id != run_id:
            break
    else:  # the usual case: one producer's step in one run
        head = root_message(source, run_id, b"")
        key = key_of(source)
        wires: list[bytes] = []
        for start in range(0, len(envelopes), MAX_BATCH):
            _stamp_batch(envelopes[start : start + MAX_BATCH], key, head, stamps, wires)
        return wires
    by_batch: dict[tuple[str, str], list[int]] = {}
    for i, envelope in enumerate(envelopes):
        by_batch.setdefault((envelope.source, envelope.run_id), []).append(i)
    every_stamp, every_wire = [""] * len(envelopes), [b""] * len(envelopes)
    for indices in by_batch.values():
        part_stamps: list[str] | None = None if stamps is None else []
        part_wires = _stamped([envelopes[i] for i in indices], key_of, part_stamps)
        for n, i in enumerate(indices):
            every_wire[i] = part_wires[n]
            if part_stamps is not None:
                every_stamp[i] = part_stamps[n]
    if stamps is not None:
        stamps += every_stamp
    return every_wire


def _stamp_batch(
    batch: Sequence[Envelope],
    key: Ed25519PrivateKey,
    message_head: bytes,
    stamps: list[str] | None,
    wires: list[bytes],
) -> None:
    """One batch of one producer and run: its tree, one signature over `message_head ‖ root`, each envelope's
    stamp spliced into its canonical bytes (appended to `wires`; the stamp itself to `stamps` when given).

    The member is written in one join: its head with the stamp's `v2.<index>.<size>.` (one per index, cached per
    size), the audit path in base64, then `.<signature>"`, shared by the whole batch."""
    unsigned = [encode(envelope, unsigned=True) for envelope in batch]
    levels = _levels(list(map(_leaf, unsigned)))
    tail = b"".join((b".", binascii.b2a_base64(key.sign(message_head + levels[-1][0]), newline=False), b'"'))
    b64 = binascii.b2a_base64
    find, join, append = _AFTER_SIGNATURE, b"".join, wires.append
    for head, path, data in zip(_member_heads(len(batch)), _paths(levels), unsigned, strict=True):
        at = data.rfind(find)
        if at < 0:
            raise ValueError("not the canonical bytes of an envelope (no top-level sim_time)")
        wire = join((data[:at], head, b64(path, newline=False), tail, data[at:]))
        append(wire)
        if stamps is not None:
            stamps.append(wire[at + _HEAD_LENGTH : at + len(wire) - len(data) - 1].decode("ascii"))


def sign_batch(envelopes: Sequence[Envelope], key: Ed25519PrivateKey) -> list[Envelope]:
    """The envelopes with their signatures (see `sign_wire`)."""
    return [envelope for envelope, _ in sign_wire(envelopes, key)]


# -- who may publish what ----------------------------------------------------------------------------------

_FIXED_PRODUCER: dict[str, str] = {
    m.Observation.TYPE: "world",
    m.RunStarted.TYPE: "runner",
    m.RunFinished.TYPE: "runner",
    m.VerdictIssued.TYPE: "governance",
    m.EscalationResolved.TYPE: "governance",
    m.ActionAuthorized.TYPE: "governance",
    m.ActionExecuted.TYPE: "executor",
}
# messages whose producer is the agent they name
_AGENT_FIELD: dict[str, Callable[[Message], str]] = {
    m.ActionProposed.TYPE: lambda p: str(getattr(p, "agent", "")),
    m.AgentMessage.TYPE: lambda p: str(getattr(p, "sender", "")),
    m.ModelCalled.TYPE: lambda p: str(getattr(p, "agent", "")),
    m.ModelStopped.TYPE: lambda p: str(getattr(p, "agent", "")),
    m.ContentScreened.TYPE: lambda p: str(getattr(p, "agent", "")),
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
    path: bytes
    signature: bytes


class Verifier:
    """Checks envelopes against the trusted producers' public keys and (when given) the run they belong to."""

    def __init__(self, directory: KeyDirectory, *, run_id: str | None = None) -> None:
        self.directory = directory
        self.run_id = run_id
        # (producer, run, root signature) → the leaves and inner nodes of the tree whose root it signed, as proven
        self._proven: dict[tuple[str, str, bytes], set[bytes]] = {}
        self._proven_size = 0
        self._signatures: dict[str, bytes] = {}  # base64 text → the 64 bytes (every envelope of a batch repeats it)
        # envelope objects that verified (an in-process bus hands every group the same object), held weakly: a
        # verifier must not keep what it read alive (65,536 envelopes held for a cache made every full garbage
        # collection of a consumer walk them); an entry goes when its envelope does, so an id is never reused here
        self._objects: weakref.WeakValueDictionary[int, Envelope] = weakref.WeakValueDictionary()
        # (type, trusted producer) pairs allowed whatever the payload (`producer_problem` said None for a type that
        # names no agent): a whole read asks once per verifier, not once per envelope; at most types × producers
        self._allowed: set[tuple[str, str]] = set()

    def problem(self, envelope: Envelope, raw: bytes = b"") -> str | None:
        """Why this envelope must not be acted on (None: it verifies). `raw` is its wire bytes when known.

        Bytes are checked every time (a redelivered envelope's leaf meets its batch's proven nodes at once); an
        object handed without bytes is remembered while it lives, so an in-process bus verifies it once."""
        if not raw and self._objects.get(id(envelope)) is envelope:
            return None  # this very (frozen) object verified before
        why = self._check(envelope, raw)
        if why is None and not raw:
            if len(self._objects) >= _CACHE_LIMIT:
                self._objects.clear()
            self._objects[id(envelope)] = envelope
        return why

    def _check(self, envelope: Envelope, raw: bytes) -> str | None:
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
        batch = (source, envelope.run_id, stamp.signature)
        received = _wire_leaf(raw, envelope.signature) if raw else None
        if received is not None:
            why = self._proof_problem(batch, key, received, stamp)
            if why is None:
                return None
        canonical = _leaf(encode(envelope, unsigned=True))
        if received is None or canonical != received:  # bytes in another shape: check what they decode to
            why = self._proof_problem(batch, key, canonical, stamp)
        return None if why is None else f"envelope {envelope.id} {why}"

    def _parse(self, text: str) -> _Stamp | None:
        parts = text.split(".")
        if len(parts) != 5 or parts[0] != VERSION:
            return None
        signature = self._signature(parts[4])
        try:
            index, size = int(parts[1]), int(parts[2])
            path = binascii.a2b_base64(parts[3])
        except (ValueError, binascii.Error):
            return None
        if signature is None or not 0 < size <= MAX_BATCH:
            return None
        return _Stamp(index, size, path, signature)

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

    def _proof_problem(
        self, batch: tuple[str, str, bytes], key: Ed25519PublicKey, leaf: bytes, stamp: _Stamp
    ) -> str | None:
        """Why `leaf` is not a leaf of a tree whose root the batch's producer signed for its run with the batch's
        signature (None: it is). `batch` is (producer, run id, signature)."""
        source = batch[0]
        index, size, path = stamp.index, stamp.size, stamp.path
        if not 0 <= index < size or len(path) % 32:
            return f"from {source} has a signature whose audit path does not fit"
        proven = self._proven.get(batch)
        node = leaf
        if proven is not None and node in proven:
            return None
        climbed = [node]
        used = 0
        while size > 1:
            if index ^ 1 < size:
                if used + 32 > len(path):
                    return f"from {source} has a signature whose audit path does not fit"
                other = path[used : used + 32]
                used += 32
                node = _node(node, other) if index % 2 == 0 else _node(other, node)
                if proven is not None and node in proven:  # the rest of the climb was proven by an earlier leaf
                    self._prove(batch, climbed)
                    return None
                climbed.append(node)
            index //= 2
            size = (size + 1) // 2
        if used != len(path):
            return f"from {source} has a signature whose audit path does not fit"
        if not verify_signature(key, batch[2], root_message(source, batch[1], node)):
            return f"does not verify against {source}'s key (forged or altered)"
        self._prove(batch, climbed)
        return None

    def _prove(self, batch: tuple[str, str, bytes], nodes: list[bytes]) -> None:
        """Remember nodes as part of the tree whose root the batch's producer signed for its run with its signature
        (only a cache: cleared when full)."""
        if self._proven_size >= _CACHE_LIMIT:
            self._proven.clear()
            self._proven_size = 0
        proven = self._proven.get(batch)
        if proven is None:
            proven = self._proven[batch] = set()
        proven.update(nodes)
        self._proven_size += len(nodes)

    def checked(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The deliveries with every envelope that fails turned into a rejected Delivery carrying the reason."""
        verified = self._whole_batches(deliveries)
        if len(verified) == len(deliveries):
            return deliveries
        out = deliveries
        for i, delivery in enumerate(deliveries):
            envelope = delivery.envelope
            if envelope is None or i in verified:
                continue
            why = self.problem(envelope, delivery.raw)
            if why is not None:
                if out is deliveries:
                    out = list(deliveries)
                raw = delivery.raw or encode(envelope)
                out[i] = Delivery(
                    delivery.topic, delivery.broker_id, delivery.deliveries, None, raw, f"rejected: {why}"
                )
        return out

    def _whole_batches(self, deliveries: list[Delivery]) -> set[int]:
        """Positions of the deliveries that verified together because they hold every envelope of a signed batch.

        Their tree is rebuilt from the received bytes' leaves (one hash per envelope; no audit path decoded or
        climbed), each stamp compared whole with the one its producer wrote for that leaf of that tree
        (`v2.<index>.<size>.<audit path>.<signature>`, base64 as `sign_wire` writes it), and the root's signature
        checked once. A read usually holds a batch in the order it was published, so the tree is first built in the
        order read; only when the stamps say otherwise are their indices parsed and the tree built again. Only
        envelopes that pass every other check of `_check` and arrive in the canonical shape take part; anything else
        (a partial batch, a duplicate index, a root that does not verify, a stamp written in any other way) is left
        to `problem`, envelope by envelope, which says why.

        A leaf is hashed from the bytes without the `len(stamp) + 15` bytes that end right before the last
        `,"sim_time":` and must open with `,"signature":"` and close with a quote (`_member_span` also compares the
        stamp's own bytes there; here that follows once the root verifies: the rest is then a producer's canonical
        bytes, which hold no top-level signature, so the decoded stamp was read from that span, and a JSON string
        read from a span of `len(stamp)` bytes has `len(stamp)` characters only when it is the whole span, in ASCII,
        without escapes: the span is exactly the member `,"signature":"<stamp>"`).
        """
        # (producer, run, signature text) → [(position, leaf, stamp)] in the order read
        groups: dict[tuple[str, str, str], list[tuple[int, bytes, str]]] = {}
        allowed = self._allowed
        members: list[tuple[int, bytes, str]] = []
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
            leaf = _LEAF_PREFIX.copy()
            leaf.update(raw[:start])
            leaf.update(raw[end:])
            run = envelope.run_id
            if not tail or not stamp.endswith(tail) or source != group_source or run != group_run:
                text = stamp[stamp.rfind(".") + 1 :]
                tail, group_source, group_run = "." + text, source, run
                members = groups.setdefault((source, run, text), [])
            members.append((i, leaf.digest(), stamp))
        verified: set[int] = set()
        for (source, run, text), group in groups.items():
            signature = self._signature(text)
            key = self.directory.get(source)
            if signature is None or key is None or (self.run_id is not None and run != self.run_id):
                continue
            if len(group) > MAX_BATCH:
                continue  # more than a batch holds: duplicates, each left to its own check
            root, matched = _matching_stamps(group, text)
            if not matched and (ordered := _by_index(group)) is not None:
                root, matched = _matching_stamps(ordered, text)  # read out of order: the tree in the stamps' order
            if not matched:
                continue
            signed = (source, run, signature)
            proven = self._proven.get(signed)
            if not (proven is not None and root in proven):
                if not verify_signature(key, signature, root_message(source, run, root)):
                    continue  # each envelope's own check names what is wrong
                self._prove(signed, [root])
            verified.update(matched)
        return verified


def _matching_stamps(members: list[tuple[int, bytes, str]], text: str) -> tuple[bytes, list[int]]:
    """The root of the tree over the members' leaves in this order, and the positions of the members whose stamp is
    the one written for their leaf of that tree with signature `text` (a stamp that does not match is left to its own
    check; none matching: the members are not in this order, or not one batch)."""
    levels = _levels([leaf for _, leaf, _ in members])
    tail = "." + text
    b2a = binascii.b2a_base64
    matched = [
        i
        for head, path, (i, _, stamp) in zip(_heads(len(members)), _paths(levels), members, strict=True)
        if stamp == f"{head}{b2a(path, newline=False).decode('ascii')}{tail}"
    ]
    return levels[-1][0], matched


@functools.lru_cache(maxsize=32)
def _heads(size: int) -> list[str]:
    """`v2.<index>.<size>.` for each index of a batch of `size`: what every stamp of such a batch starts with."""
    return [f"{_STAMP_HEAD}{index}.{size}." for index in range(size)]


@functools.lru_cache(maxsize=32)
def _member_heads(size: int) -> list[bytes]:
    """`,"signature":"v2.<index>.<size>.` for each index of a batch of `size`: the wire member up to the audit path."""
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
    """A `Bus` that signs what this process publishes and verifies everything it reads (see module doc)."""

    def __init__(self, inner: Bus, keyring: Keyring, verifier: Verifier) -> None:
        self.inner = inner
        self.keyring = keyring
        self.verifier = verifier
        self._wire = inner if isinstance(inner, WireBus) else None

    def __repr__(self) -> str:
        return f"SignedBus({self.inner!r})"

    def sign(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Sign envelopes, one batch per producer; raises KeyStoreError for a producer this process holds no key for."""
        return [envelope for envelope, _ in self.sign_wire(envelopes)]

    def sign_wire(self, envelopes: Sequence[Envelope]) -> list[tuple[Envelope, bytes]]:
        """`sign`, each signed envelope with its wire bytes."""
        return _signed(envelopes, *self.stamp_wire(envelopes))

    def stamp_wire(self, envelopes: Sequence[Envelope]) -> tuple[list[str], list[bytes]]:
        """Each envelope's stamp and wire bytes (see `stamp_wire`), one batch per producer and run; raises KeyStoreError
        for a producer this process holds no key for."""
        stamps: list[str] = []
        return stamps, _stamped(envelopes, self.keyring.private, stamps)

    def publish(self, topic: str, envelope: Envelope) -> str:
        return self.publish_many([(topic, envelope)])[0]

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        if self._wire is not None:  # a bus of bytes: no signed envelope object is built, no stamp kept apart
            wires = _stamped([envelope for _, envelope in items], self.keyring.private, None)
            return self._wire.publish_wire([(topic, data) for (topic, _), data in zip(items, wires, strict=True)])
        signed = self.sign_wire([envelope for _, envelope in items])
        return self.inner.publish_encoded(
            [(topic, envelope, data) for (topic, _), (envelope, data) in zip(items, signed, strict=True)]
        )

    def publish_encoded(self, items: Sequence[tuple[str, Envelope, bytes]]) -> list[str]:
        return self.publish_many([(topic, envelope) for topic, envelope, _ in items])  # signed here, so encoded again

    def publish_raw(self, topic: str, data: bytes) -> str:
        return self.inner.publish_raw(topic, data)

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        self.inner.ensure_group(topic, group, from_start=from_start)

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        return self.verifier.checked(self.inner.read(topics, group, consumer, count=count, block_ms=block_ms))

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        return self.verifier.checked(
            self.inner.reclaim_stale(topics, group, consumer, min_idle_ms=min_idle_ms, count=count)
        )

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> int:
        return self.inner.ack(group, deliveries)

    def pending_count(self, topic: str, group: str) -> int:
        return self.inner.pending_count(topic, group)

    def length(self, topic: str) -> int:
        return self.inner.length(topic)

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        return self.verifier.checked(self.inner.range(topic, start=start, end=end, count=count))

    def close(self) -> None:
        self.inner.close()
