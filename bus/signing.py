"""Envelope signatures: every producer signs what it publishes; every consumer verifies before it acts.

What is signed: the envelope's canonical bytes without its `signature` field (`encode(…, unsigned=True)`), so
the id, type, producer (`source`), run id, superstep, simulated time, causality and the whole payload are
covered — an envelope copied into another run, or altered by one byte, no longer verifies.

Ed25519 costs tens of microseconds per signature and more per verification, so a producer signs a *batch*
(one `publish_many`) once: the leaves are sha256(0x00 ‖ unsigned bytes), inner nodes sha256(0x01 ‖ left ‖
right) (RFC 6962's domain separation; an odd node is carried up unchanged), and the root is signed. Each
envelope carries `v1.<index>.<size>.<audit path>.<signature>`, enough to check itself alone. A consumer
recomputes its leaf and the root and verifies the root's signature once per batch (cached by the exact
(producer, root, signature) triple, so the cache never accepts different bytes).

The producer is authorised too: a message type names who may publish it (`action.authorized` only
governance; a proposal only `agent:<the agent it names>` …), so a valid key cannot speak for someone else.

`SignedBus` wraps any `Bus`: publishing signs with the keys of its `Keyring`; reading turns every envelope
that fails (unsigned, unknown producer, wrong producer, bad signature, another run) into a Delivery without
an envelope and with the reason, exactly like an undecodable entry — the recorder writes it to the ledger as
a dead letter and every other consumer skips it.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.bus import messages as m
from coalition.bus.base import Bus, Delivery
from coalition.bus.codec import encode
from coalition.bus.envelope import Envelope
from coalition.bus.keys import KeyDirectory, Keyring, verify_signature
from coalition.bus.message import Message

VERSION = "v1"
_ROOT_DOMAIN = b"coalition envelope batch v1\n"
_CACHE_LIMIT = 65_536  # verified roots / envelopes remembered; cleared when full (cheap, and only a cache)
MAX_BATCH = 1024  # leaves per signed tree: bounds the audit path every envelope carries (≤ 10 hashes)


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _levels(leaves: list[bytes]) -> list[list[bytes]]:
    levels = [leaves]
    while len(levels[-1]) > 1:
        level = levels[-1]
        levels.append(
            [_node(level[i], level[i + 1]) if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)]
        )
    return levels


def _path(levels: list[list[bytes]], index: int) -> bytes:
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return b"".join(path)


def _root(leaf: bytes, index: int, size: int, path: bytes) -> bytes | None:
    """The root a leaf's audit path leads to, or None when the path does not fit the index and size."""
    if not 0 <= index < size or len(path) % 32:
        return None
    node, used = leaf, 0
    while size > 1:
        sibling = index ^ 1
        if sibling < size:
            if used + 32 > len(path):
                return None
            other = path[used : used + 32]
            used += 32
            node = _node(node, other) if index % 2 == 0 else _node(other, node)
        index //= 2
        size = (size + 1) // 2
    return node if used == len(path) else None


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def sign_batch(envelopes: Sequence[Envelope], key: Ed25519PrivateKey) -> list[Envelope]:
    """The envelopes with their signatures: one Ed25519 signature per MAX_BATCH envelopes."""
    signed: list[Envelope] = []
    for start in range(0, len(envelopes), MAX_BATCH):
        chunk = envelopes[start : start + MAX_BATCH]
        levels = _levels([_leaf(encode(envelope, unsigned=True)) for envelope in chunk])
        signature = _b64(key.sign(_ROOT_DOMAIN + levels[-1][0]))
        size = len(chunk)
        for index, envelope in enumerate(chunk):
            stamp = f"{VERSION}.{index}.{size}.{_b64(_path(levels, index))}.{signature}"
            signed.append(envelope.model_copy(update={"signature": stamp}))
    return signed


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


def _parse(stamp: str) -> _Stamp | None:
    parts = stamp.split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        return None
    try:
        index, size = int(parts[1]), int(parts[2])
        path = binascii.a2b_base64(parts[3])
        signature = binascii.a2b_base64(parts[4])
    except (ValueError, binascii.Error):
        return None
    if len(signature) != 64 or not 0 < size <= MAX_BATCH:
        return None
    return _Stamp(index, size, path, signature)


class Verifier:
    """Checks envelopes against the trusted producers' public keys and (when given) the run they belong to."""

    def __init__(self, directory: KeyDirectory, *, run_id: str | None = None) -> None:
        self.directory = directory
        self.run_id = run_id
        self._roots: set[tuple[str, bytes, bytes]] = set()
        self._envelopes: dict[object, Envelope] = {}

    def problem(self, envelope: Envelope, raw: bytes = b"") -> str | None:
        """Why this envelope must not be acted on (None: it verifies). `raw` is its wire bytes when known."""
        cache_key: object = raw if raw else id(envelope)
        if self._envelopes.get(cache_key) is envelope or (raw and cache_key in self._envelopes):
            return None  # these exact bytes (or this very object) verified before
        why = self._check(envelope)
        if why is None:
            if len(self._envelopes) >= _CACHE_LIMIT:
                self._envelopes.clear()
            self._envelopes[cache_key] = envelope  # keeps the object alive, so its id is not reused meanwhile
        return why

    def _check(self, envelope: Envelope) -> str | None:
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
        stamp = _parse(envelope.signature)
        if stamp is None:
            return f"envelope {envelope.id} from {source} has a malformed signature"
        root = _root(_leaf(encode(envelope, unsigned=True)), stamp.index, stamp.size, stamp.path)
        if root is None:
            return f"envelope {envelope.id} from {source} has a signature whose audit path does not fit"
        triple = (source, root, stamp.signature)
        if triple in self._roots:
            return None
        if not verify_signature(key, stamp.signature, _ROOT_DOMAIN + root):
            return f"envelope {envelope.id} does not verify against {source}'s key (forged or altered)"
        if len(self._roots) >= _CACHE_LIMIT:
            self._roots.clear()
        self._roots.add(triple)
        return None

    def checked(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The deliveries with every envelope that fails turned into a rejected Delivery carrying the reason."""
        out = deliveries
        for i, delivery in enumerate(deliveries):
            envelope = delivery.envelope
            if envelope is None:
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


class SignedBus:
    """A `Bus` that signs what this process publishes and verifies everything it reads (see module doc)."""

    def __init__(self, inner: Bus, keyring: Keyring, verifier: Verifier) -> None:
        self.inner = inner
        self.keyring = keyring
        self.verifier = verifier

    def __repr__(self) -> str:
        return f"SignedBus({self.inner!r})"

    def sign(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """Sign envelopes, one batch per producer; raises KeyStoreError for a producer this process holds no key for."""
        by_source: dict[str, list[int]] = {}
        for i, envelope in enumerate(envelopes):
            by_source.setdefault(envelope.source, []).append(i)
        signed: list[Envelope] = list(envelopes)
        for source, indices in by_source.items():
            key = self.keyring.private(source)
            for i, envelope in zip(indices, sign_batch([envelopes[i] for i in indices], key), strict=True):
                signed[i] = envelope
        return signed

    def publish(self, topic: str, envelope: Envelope) -> str:
        return self.publish_many([(topic, envelope)])[0]

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        signed = self.sign([envelope for _, envelope in items])
        return self.inner.publish_many([(topic, envelope) for (topic, _), envelope in zip(items, signed, strict=True)])

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
