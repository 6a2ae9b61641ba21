"""A hash-chained ledger held in this process's memory, for a re-execution that is read back and thrown away
(replay --verify derives a run into one and compares it with the recorded run).

Each entry is sealed as a SQLite ledger seals it (`prepared.chain`: the same canonical bytes, redaction and hash)
and kept as those bytes, its hash and the JSON values they encode (the bytes parsed back once, when sealed: nothing
kept is shared with the caller's draft or the entry it is handed): what `run_bodies` hands out, equal as JSON to a
SQLite ledger's stored bodies read back. Dedupe rows are a set. What it leaves out is the SQL: no statement,
transaction or index per append (a third of what recording a derived run cost), and no JSON parse of the run when
its end and the comparison read it back.

Queries filter the entries in memory with the SQLite ledger's meaning of each filter (an agent is the actor's
`agent:` name, else the payload's proposing agent; a search matches every word in the rationale or subject,
ASCII letters in either case, as LIKE does) and build each entry found from its bytes, so a reader never shares
an object with the stored entry.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import orjson

from coalition.bus.clock import Clock, WallClock
from coalition.ledger.base import CommitListeners, LedgerQuery, RunInfo, VerifyResult
from coalition.ledger.entry import GENESIS_HASH, EntryDraft, LedgerEntry, noncanonical_body_problem
from coalition.ledger.prepared import PreparedDraft, chain, prepare_all, prepare_items, wall_time_json
from coalition.ledger.sqlite import search_words, verify_rows

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
# the filters that compare one stored field with the value asked for
_EQUALITY = ("run_id", "actor", "kind", "gate", "outcome", "subject", "correlation_id", "causation_id", "message_id")


@dataclass(frozen=True, slots=True)
class _Stored:
    """One sealed entry: its canonical bytes (what its hash covers), its hash and those bytes parsed."""

    body: bytes
    hash: str
    fields: dict[str, Any]


def _agent(fields: dict[str, Any]) -> str | None:
    """The entry's agent as the SQLite ledger's `agent` column computes it."""
    actor = fields.get("actor")
    if isinstance(actor, str) and actor[:6].translate(_ASCII_LOWER) == "agent:":
        return actor[6:]
    payload = fields.get("payload")
    agent = payload.get("agent") if isinstance(payload, dict) else None
    return agent if isinstance(agent, str) else None


def _matches(fields: dict[str, Any], q: LedgerQuery) -> bool:
    """Whether an entry passes every filter of `q` but its order and limit."""
    for name in _EQUALITY:
        wanted = getattr(q, name)
        if wanted is not None and fields.get(name) != wanted:
            return False
    if q.agent is not None and _agent(fields) != q.agent:
        return False
    if q.action is not None:
        payload = fields.get("payload")
        if not isinstance(payload, dict) or payload.get("action") != q.action:
            return False
    seq = fields["seq"]
    if (q.after_seq is not None and seq <= q.after_seq) or (q.before_seq is not None and seq >= q.before_seq):
        return False
    if q.search is not None and q.search.strip():
        rationale = str(fields.get("rationale", "")).translate(_ASCII_LOWER)
        subject = str(fields.get("subject", "")).translate(_ASCII_LOWER)
        for word in search_words(q.search):
            folded = word.translate(_ASCII_LOWER)
            if folded not in rationale and folded not in subject:
                return False
    return True


class MemoryLedger(CommitListeners):
    """A ledger in memory: append-only, hash-chained, deduplicated, queried like the SQLite ledger; gone when closed."""

    def __init__(self, *, wall_clock: Clock | None = None) -> None:
        self._wall_clock: Clock = wall_clock or WallClock()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[list[LedgerEntry]], None]] = []
        self._stored: list[_Stored] = []  # seq n at index n - 1
        self._seen: set[tuple[str, str]] = set()
        # the seqs of each value of the filters readers use most (a run, a kind, a subject): a query reads only those
        self._by_run: dict[str, list[int]] = {}
        self._by_kind: dict[str, list[int]] = {}
        self._by_subject: dict[str, list[int]] = {}

    # -- appending ----------------------------------------------------------------------------------------------

    def append(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        prepared = prepare_all(drafts)
        with self._lock:
            entries = self._write(prepared)
        self._committed(entries)
        return entries

    def append_once(self, consumer: str, message_id: str, drafts: Sequence[EntryDraft]) -> list[LedgerEntry] | None:
        prepared = prepare_all(drafts)
        with self._lock:
            if (consumer, message_id) in self._seen:
                return None
            entries = self._write(prepared)
            self._seen.add((consumer, message_id))
        self._committed(entries)
        return entries

    def append_batch_once(self, consumer: str, items: Sequence[tuple[str, Sequence[EntryDraft]]]) -> list[LedgerEntry]:
        prepared = prepare_items(items)
        with self._lock:
            fresh: dict[str, list[PreparedDraft]] = {}
            for message_id, drafts in prepared:
                if message_id not in fresh and (consumer, message_id) not in self._seen:
                    fresh[message_id] = drafts
            written = self._write([draft for drafts in fresh.values() for draft in drafts])
            self._seen.update((consumer, message_id) for message_id in fresh)
        self._committed(written)
        return written

    def append_checked(
        self, consumer: str, prepare: Callable[[], tuple[str, Sequence[EntryDraft]]]
    ) -> list[LedgerEntry] | None:
        with self._lock:  # no other writer between what prepare() reads and the append (prepare raising: nothing)
            message_id, drafts = prepare()
            if (consumer, message_id) in self._seen:
                return None
            entries = self._write(prepare_all(drafts))
            self._seen.add((consumer, message_id))
        self._committed(entries)
        return entries

    def seen(self, consumer: str, message_id: str) -> bool:
        with self._lock:
            return (consumer, message_id) in self._seen

    def deferred_sync(self) -> AbstractContextManager[None]:
        return nullcontext()  # nothing is synced to a disk

    def _write(self, prepared: Sequence[PreparedDraft]) -> list[LedgerEntry]:
        """Seal the drafts after the head and keep them; all or nothing (a draft that fails to seal keeps none)."""
        if not prepared:
            return []
        seq = len(self._stored)
        prev = self._stored[-1].hash if self._stored else GENESIS_HASH
        wall_time = self._wall_clock.now()
        wall_json = wall_time_json(wall_time)
        entries: list[LedgerEntry] = []
        sealed: list[_Stored] = []
        for draft in prepared:
            seq += 1
            # what is kept is the sealed bytes parsed back: the JSON values they encode (redacted if chain redacted
            # them), sharing no object with the draft (a message's payload is the caller's dict) or the entry returned
            # (chain builds it around the draft's dumped fields), so a caller changing either after the append
            # changes nothing kept
            entry, body = chain(draft, seq=seq, wall_time=wall_time, prev_hash=prev, wall_json=wall_json)
            sealed.append(_Stored(body, entry.hash, orjson.loads(body)))
            entries.append(entry)
            prev = entry.hash
        for stored in sealed:
            fields = stored.fields
            seq = fields["seq"]
            self._stored.append(stored)
            self._by_run.setdefault(fields["run_id"], []).append(seq)
            self._by_kind.setdefault(fields["kind"], []).append(seq)
            self._by_subject.setdefault(fields.get("subject", ""), []).append(seq)
        return entries

    # -- reading ------------------------------------------------------------------------------------------------

    def _candidates(self, q: LedgerQuery) -> Sequence[int]:
        """The seqs a query needs to look at, in order: the shortest index list its filters name, else all."""
        lists = [
            index.get(value, [])
            for index, value in ((self._by_run, q.run_id), (self._by_kind, q.kind), (self._by_subject, q.subject))
            if value is not None
        ]
        return min(lists, key=len) if lists else range(1, len(self._stored) + 1)

    def _found(self, q: LedgerQuery, *, limited: bool = True) -> list[_Stored]:
        """The entries matching q, in its order; up to its limit unless not `limited` (a count, as SQLite counts)."""
        with self._lock:
            candidates = self._candidates(q)
            ordered = reversed(candidates) if q.newest_first else iter(candidates)
            limit = None if q.limit is None or not limited else max(q.limit, 0)
            found: list[_Stored] = []
            for seq in ordered:
                if limit is not None and len(found) >= limit:
                    break
                stored = self._stored[seq - 1]
                if _matches(stored.fields, q):
                    found.append(stored)
            return found

    def query(self, q: LedgerQuery) -> list[LedgerEntry]:
        return [LedgerEntry.model_validate({**orjson.loads(s.body), "hash": s.hash}) for s in self._found(q)]

    def get(self, seq: int) -> LedgerEntry | None:
        found = self.query(LedgerQuery(after_seq=seq - 1, before_seq=seq + 1, limit=1))
        return found[0] if found else None

    def count(self, q: LedgerQuery | None = None) -> int:
        return len(self._found(q or LedgerQuery(), limited=False))

    def iter_entries(self, *, run_id: str | None = None, batch: int = 5000) -> Iterator[LedgerEntry]:
        yield from self.query(LedgerQuery(run_id=run_id))

    def run_bodies(self, run_id: str) -> list[dict[str, Any]]:
        """A run's entries as stored (every hashed field, `hash` aside), as JSON objects in sequence order: the JSON
        values their bytes encode, kept from when they were sealed (read them, never change them)."""
        with self._lock:
            return [self._stored[seq - 1].fields for seq in self._by_run.get(run_id, [])]

    def sealed(self, seq: int) -> bytes:
        """The canonical bytes of the entry at `seq` (what its hash covers: every field but `hash`)."""
        with self._lock:
            return self._stored[seq - 1].body

    def runs(self) -> list[RunInfo]:
        """Every run in order of its first entry, with scenario and status taken from its `run` entries."""
        with self._lock:
            infos: list[RunInfo] = []
            for run_id, seqs in sorted(self._by_run.items(), key=lambda item: item[1][0]):
                scenario: str | None = None
                status: str | None = None
                extra: dict[str, object] = {}
                for seq in seqs:
                    fields = self._stored[seq - 1].fields
                    if fields["kind"] != "run":
                        continue
                    if fields.get("subject") and scenario is None:
                        scenario = fields["subject"]
                    if fields.get("outcome"):
                        status = fields["outcome"]
                    if fields.get("message_type") == "run.started":
                        payload = fields.get("payload") or {}
                        extra = {k: payload[k] for k in ("seed", "policy_version", "days", "start") if k in payload}
                infos.append(RunInfo(run_id, seqs[0], seqs[-1], len(seqs), scenario, status, extra))
            return infos

    def head(self) -> tuple[int, str]:
        with self._lock:
            return (len(self._stored), self._stored[-1].hash) if self._stored else (0, GENESIS_HASH)

    def verify(self) -> VerifyResult:
        """Recompute the chain from the kept bytes, as the SQLite ledger does from its stored ones."""
        with self._lock:
            rows = [
                (seq, s.fields.get("seq"), s.fields.get("prev_hash"), s.hash, s.body)
                for seq, s in enumerate(self._stored, start=1)
            ]
        return verify_rows(iter(rows))

    def derived_data_problem(self) -> str | None:
        """What the stored ledgers' derived-data check proves first, on the kept bytes: each is exactly the canonical
        JSON of its value (readers could not disagree on it); None if so. Nothing else is derived here (queries read
        the fields the bytes parse to), so there is nothing more to compare."""
        with self._lock:
            rows = [(seq, s.body) for seq, s in enumerate(self._stored, start=1)]
        return noncanonical_body_problem(rows)

    def close(self) -> None:
        return None  # nothing to release: the entries go with the object

    def __enter__(self) -> MemoryLedger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
