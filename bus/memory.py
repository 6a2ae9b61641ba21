"""In-process twin of the Redis Streams bus: same consumer-group semantics, no server, for single-process speed.

Typed envelopes are stored as the (frozen) objects that were published, so they are not re-encoded or
re-validated on the way through; `Delivery.raw` is then empty unless `wire=True` (which encodes on publish
and decodes on read, exactly like the Redis backend). Bytes published with `publish_raw` are always decoded
on read, so a malformed message behaves as it does on Redis.

A long run publishes thousands of messages a day; with `keep_acknowledged=False` (what a run uses, through
`MemoryBus.for_run`) an entry is dropped as soon as every group of its stream has read and acknowledged it, so
resident memory stays flat. The default keeps every entry, as a Redis stream does until it is trimmed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from coalition.bus.base import Delivery
from coalition.bus.batch_records import Batch, RecordBook, holders
from coalition.bus.codec import decode, encode
from coalition.bus.envelope import Envelope
from coalition.bus.errors import BusError, MessageRejected


@dataclass(slots=True)
class _Entry:
    seq: int
    broker_id: str
    envelope: Envelope | None
    raw: bytes
    batch: bytes | None = None  # the signature of its signed batch, whose record it holds in the bus's book


@dataclass(slots=True)
class _Pending:
    consumer: str
    deliveries: int
    delivered_at: float


@dataclass(slots=True)
class _Group:
    last_delivered: int
    pending: dict[int, _Pending] = field(default_factory=dict)  # seq -> state, kept in seq order


@dataclass(slots=True)
class _Stream:
    entries: dict[int, _Entry] = field(default_factory=dict)  # seq -> entry, insertion (= seq) order
    last_seq: int = 0
    groups: dict[str, _Group] = field(default_factory=dict)


def _seq_of(broker_id: str, *, default: int) -> int:
    """Parse '<n>-0' (or '-' / '+') into the sequence number used internally."""
    if broker_id == "-":
        return 0
    if broker_id == "+":
        return default
    head, _, _tail = broker_id.partition("-")
    try:
        return int(head)
    except ValueError:
        raise BusError(f"bad stream id {broker_id!r}: expected '<n>-0', '-' or '+'") from None


class MemoryBus:
    """A `Bus` held in a dict of append-only logs, with groups, pending entries lists and reclaim."""

    @classmethod
    def for_run(cls, namespace: str) -> MemoryBus:
        """The bus of one in-process run: an entry is dropped once every group acknowledged it (resident memory stays
        flat; everything of value is in the ledger by then). The one place a run's memory bus is configured."""
        return cls(namespace=namespace, keep_acknowledged=False)

    def __init__(
        self,
        namespace: str = "coalition",
        *,
        clock: Callable[[], float] = time.monotonic,
        maxlen: int | None = None,
        wire: bool = False,
        keep_acknowledged: bool = True,
    ) -> None:
        self.namespace = namespace
        self._clock = clock
        self._maxlen = maxlen
        self._wire = wire
        self._keep_acknowledged = keep_acknowledged
        self._streams: dict[str, _Stream] = {}
        self._records = RecordBook()  # signed batches' records, each while an entry of its batch is kept
        self._lock = threading.Condition(threading.Lock())
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryBus(namespace={self.namespace!r})"

    # -- producing ---------------------------------------------------------------------------------------

    def publish(self, topic: str, envelope: Envelope) -> str:
        return self.publish_many([(topic, envelope)])[0]

    def publish_many(self, items: Sequence[tuple[str, Envelope]]) -> list[str]:
        prepared: list[tuple[str, Envelope | None, bytes]]
        if self._wire:
            prepared = [(topic, None, encode(envelope)) for topic, envelope in items]
        else:
            prepared = [(topic, envelope, b"") for topic, envelope in items]
        return self._append(prepared)

    def publish_encoded(self, items: Sequence[tuple[str, Envelope, bytes]]) -> list[str]:
        if self._wire:
            return self._append([(topic, None, data) for topic, _, data in items])
        return self._append([(topic, envelope, b"") for topic, envelope, _ in items])

    def publish_raw(self, topic: str, data: bytes) -> str:
        return self._append([(topic, None, bytes(data))])[0]

    def publish_batches(
        self, items: Sequence[tuple[str, Envelope | None, bytes]], batches: Sequence[Batch], batch_of: Sequence[int]
    ) -> list[str]:
        """Append signed envelopes and keep their batches' records, each as long as an entry of its batch is kept."""
        prepared: list[tuple[str, Envelope | None, bytes]]
        if self._wire:
            prepared = [(topic, None, data) for topic, _, data in items]
        else:
            prepared = [(topic, envelope, b"") for topic, envelope, _ in items]
        with self._lock:
            self._check_open()
            self._records.add(batches, holders(batch_of, len(batches)))  # before the entries: never read without
        return self._append(prepared, [batches[b][0] for b in batch_of])

    def batch_records(self, signatures: Sequence[bytes]) -> list[bytes | None]:
        return self._records.batch_records(signatures)

    def _append(
        self, prepared: Sequence[tuple[str, Envelope | None, bytes]], batches: Sequence[bytes | None] = ()
    ) -> list[str]:
        ids: list[str] = []
        with self._lock:
            self._check_open()
            for n, (topic, envelope, raw) in enumerate(prepared):
                stream = self._stream(topic)
                stream.last_seq += 1
                seq = stream.last_seq
                broker_id = f"{seq}-0"
                stream.entries[seq] = _Entry(seq, broker_id, envelope, raw, batches[n] if batches else None)
                if self._maxlen is not None and len(stream.entries) > self._maxlen:
                    self._trim(stream, self._maxlen)
                ids.append(broker_id)
            self._lock.notify_all()
        return ids

    def _trim(self, stream: _Stream, maxlen: int) -> None:
        excess = len(stream.entries) - maxlen
        for seq in list(stream.entries)[:excess]:
            self._forget(stream, seq)

    def _forget(self, stream: _Stream, seq: int) -> None:
        """Drop an entry, and its batch's record with the batch's last entry."""
        entry = stream.entries.pop(seq, None)
        if entry is not None and entry.batch is not None:
            self._records.release(entry.batch)

    # -- groups and consuming ----------------------------------------------------------------------------

    def ensure_group(self, topic: str, group: str, *, from_start: bool = True) -> None:
        with self._lock:
            self._check_open()
            self._group(topic, group, from_start=from_start)

    def read(
        self, topics: Sequence[str], group: str, consumer: str, *, count: int = 100, block_ms: int = 0
    ) -> list[Delivery]:
        if count <= 0:
            raise ValueError(f"count must be positive, got {count}")
        deadline = time.monotonic() + block_ms / 1000
        with self._lock:
            while True:
                self._check_open()
                found = self._take_new(topics, group, consumer, count)
                if found or block_ms <= 0:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
        return [self._delivery(topic, entry, deliveries) for topic, entry, deliveries in found]

    def _take_new(self, topics: Sequence[str], group: str, consumer: str, count: int) -> list[tuple[str, _Entry, int]]:
        now = self._clock()
        found: list[tuple[str, _Entry, int]] = []
        streams = self._streams
        for topic in topics:
            # A consumer reads every topic after every superstep, most of them empty: one lookup each on the way.
            stream = streams.get(topic)
            state = stream.groups.get(group) if stream is not None else None
            if stream is None or state is None:
                state = self._group(topic, group, from_start=True)
                stream = streams[topic]
            if state.last_delivered >= stream.last_seq:
                continue
            taken = 0
            for seq in range(state.last_delivered + 1, stream.last_seq + 1):
                entry = stream.entries.get(seq)
                state.last_delivered = seq
                if entry is None:  # trimmed before anyone read it
                    continue
                state.pending[seq] = _Pending(consumer, 1, now)
                found.append((topic, entry, 1))
                taken += 1
                if taken >= count:
                    break
        return found

    def reclaim_stale(
        self, topics: Sequence[str], group: str, consumer: str, *, min_idle_ms: int, count: int = 100
    ) -> list[Delivery]:
        found: list[tuple[str, _Entry, int]] = []
        with self._lock:
            self._check_open()
            now = self._clock()
            min_idle = min_idle_ms / 1000
            streams = self._streams
            for topic in topics:
                stream = streams.get(topic)
                state = stream.groups.get(group) if stream is not None else None
                if stream is None or state is None:
                    state = self._group(topic, group, from_start=True)
                    stream = streams[topic]
                if not state.pending:
                    continue  # nothing pending: nothing to reclaim (the recorder acks every flush)
                taken = 0
                for seq, pending in list(state.pending.items()):
                    if taken >= count:
                        break
                    if now - pending.delivered_at < min_idle:
                        continue
                    entry = stream.entries.get(seq)
                    if entry is None:  # trimmed while pending: XAUTOCLAIM drops it from the PEL
                        del state.pending[seq]
                        continue
                    pending.consumer = consumer
                    pending.deliveries += 1
                    pending.delivered_at = now
                    found.append((topic, entry, pending.deliveries))
                    taken += 1
        return [self._delivery(topic, entry, deliveries) for topic, entry, deliveries in found]

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> int:
        acked = 0
        with self._lock:
            self._check_open()
            for delivery in deliveries:
                stream = self._streams.get(delivery.topic)
                state = stream.groups.get(group) if stream is not None else None
                if state is None:
                    continue
                seq = _seq_of(delivery.broker_id, default=0)
                if state.pending.pop(seq, None) is not None:
                    acked += 1
                    if not self._keep_acknowledged and stream is not None:
                        self._drop_if_done(stream, seq)
        return acked

    def _drop_if_done(self, stream: _Stream, seq: int) -> None:
        """Forget an entry once every group has read it and none holds it pending."""
        for state in stream.groups.values():
            if state.last_delivered < seq or seq in state.pending:
                return
        self._forget(stream, seq)

    # -- inspection --------------------------------------------------------------------------------------

    def pending_count(self, topic: str, group: str) -> int:
        with self._lock:
            stream = self._streams.get(topic)
            state = stream.groups.get(group) if stream is not None else None
            return 0 if state is None else len(state.pending)

    def pending_consumers(self, topic: str, group: str) -> dict[str, int]:
        """How many entries each consumer of the group holds unacknowledged (XPENDING summary)."""
        with self._lock:
            stream = self._streams.get(topic)
            state = stream.groups.get(group) if stream is not None else None
            counts: dict[str, int] = {}
            for pending in state.pending.values() if state is not None else ():
                counts[pending.consumer] = counts.get(pending.consumer, 0) + 1
            return counts

    def length(self, topic: str) -> int:
        with self._lock:
            stream = self._streams.get(topic)
            return 0 if stream is None else len(stream.entries)

    def range(self, topic: str, *, start: str = "-", end: str = "+", count: int | None = None) -> list[Delivery]:
        with self._lock:
            stream = self._streams.get(topic)
            if stream is None:
                return []
            low = _seq_of(start, default=stream.last_seq)
            high = _seq_of(end, default=stream.last_seq)
            selected = [entry for seq, entry in stream.entries.items() if low <= seq <= high]
        if count is not None:
            selected = selected[:count]
        return [self._delivery(topic, entry, 0) for entry in selected]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    # -- internals ---------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise BusError(f"{self!r} is closed")

    def _stream(self, topic: str) -> _Stream:
        stream = self._streams.get(topic)
        if stream is None:
            stream = self._streams[topic] = _Stream()
        return stream

    def _group(self, topic: str, group: str, *, from_start: bool) -> _Group:
        stream = self._stream(topic)
        state = stream.groups.get(group)
        if state is None:
            state = stream.groups[group] = _Group(last_delivered=0 if from_start else stream.last_seq)
        return state

    @staticmethod
    def _delivery(topic: str, entry: _Entry, deliveries: int) -> Delivery:
        if entry.envelope is not None:
            return Delivery(topic, entry.broker_id, deliveries, entry.envelope, entry.raw)
        try:
            envelope = decode(entry.raw)
        except MessageRejected as exc:
            return Delivery(topic, entry.broker_id, deliveries, None, entry.raw, exc.reason)
        except Exception as exc:  # read must never raise for one bad entry: the consumer dead-letters it
            reason = f"undecodable: {type(exc).__name__}: {exc}"
            return Delivery(topic, entry.broker_id, deliveries, None, entry.raw, reason)
        return Delivery(topic, entry.broker_id, deliveries, envelope, entry.raw)
