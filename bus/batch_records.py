"""Batch records: the leaf hashes of a signed batch, kept beside the streams its envelopes went to.

A stamp (`coalition.bus.signing`) names its batch by the batch's signature and carries no audit path. A consumer that
holds every envelope of the batch has their leaves in hand; one that holds only part of it (another consumer of its
group got the rest, a redelivery, a trimmed stream) fetches the batch record: the 32-byte leaves of the batch
concatenated in order, stored under the batch's 64 signature bytes. A record is never trusted: the verifier checks
the batch's signature over its digest, so a record that was altered, swapped with another batch's or written by
anyone else proves nothing, and a missing record only ever refuses.

`RecordBook` keeps records in memory, each for as long as entries that hold it live (the in-process bus counts its
entries in and out; a bus that cannot keep records has the signing bus keep a bounded book of its own).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from coalition.bus.envelope import Envelope

Batch = tuple[bytes, bytes]  # (the batch's 64 signature bytes, its leaves concatenated)


@runtime_checkable
class BatchRecords(Protocol):
    """Where a consumer finds the records of signed batches."""

    def batch_records(self, signatures: Sequence[bytes]) -> list[bytes | None]:
        """The record of each batch signature, in order (None: no such record, or no longer kept)."""
        ...


@runtime_checkable
class BatchRecordBus(BatchRecords, Protocol):
    """A bus that keeps the records of the signed batches published on it beside their entries (Redis: a hash in
    the run's cluster slot; memory: a `RecordBook`), for at least as long as it keeps the entries."""

    def publish_batches(
        self, items: Sequence[tuple[str, Envelope | None, bytes]], batches: Sequence[Batch], batch_of: Sequence[int]
    ) -> list[str]:
        """Append signed envelopes (topic, the signed envelope or None where the bus keeps bytes alone, its wire
        bytes) and, in the same step, the records of their batches (`batch_of[i]`: the index in `batches` of item
        i's batch). Returns the broker ids in order."""
        ...


class RecordBook:
    """Batch records in memory, each kept while something holds it (`add` with a count, `release` one at a time);
    with `limit`, also forgets the oldest records beyond that many (a book that is told of no entry's end)."""

    def __init__(self, *, limit: int | None = None) -> None:
        self._leaves: dict[bytes, bytes] = {}  # signature → leaves, oldest first
        self._held: dict[bytes, int] = {}  # signature → how many holders it has
        self._limit = limit
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._leaves)

    def add(self, batches: Sequence[Batch], holders: Sequence[int]) -> None:
        """Keep each batch's record for `holders[i]` more holders (entries that carry it)."""
        with self._lock:
            for (signature, leaves), held in zip(batches, holders, strict=True):
                self._leaves.setdefault(signature, leaves)
                self._held[signature] = self._held.get(signature, 0) + held
            if self._limit is not None and len(self._leaves) > self._limit:
                for signature in list(self._leaves)[: len(self._leaves) - self._limit]:
                    del self._leaves[signature], self._held[signature]

    def release(self, signature: bytes) -> None:
        """One holder of the record went (its entry was trimmed or dropped): the record goes with the last one."""
        with self._lock:
            held = self._held.get(signature)
            if held is None:
                return
            if held > 1:
                self._held[signature] = held - 1
            else:
                del self._leaves[signature], self._held[signature]

    def batch_records(self, signatures: Sequence[bytes]) -> list[bytes | None]:
        with self._lock:
            return [self._leaves.get(signature) for signature in signatures]


def holders(batch_of: Sequence[int], count: int) -> list[int]:
    """How many of the items each of `count` batches holds (`batch_of[i]`: item i's batch)."""
    held = [0] * count
    for batch in batch_of:
        held[batch] += 1
    return held
