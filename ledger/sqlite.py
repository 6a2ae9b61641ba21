"""The SQLite ledger: one file any process can append to (WAL, BEGIN IMMEDIATE), guarded by append-only triggers.

Each row stores the canonical JSON of the entry (every field but `hash`, exactly the bytes that were hashed);
the columns the CLI and console filter on are generated from that JSON by SQLite. `verify` hashes the stored
bytes directly, without parsing them; `derived_data_problem` checks that every reader reads one value from them:
each body exactly the canonical JSON of what it parses to (bytes that hash right but repeat a key read one way in
SQLite's columns and another in Python), then the generated columns and the full-text index.

Durability: `synchronous=FULL` by default. The ledger is the only copy of human approvals and the recorder
acks the bus after commit, so a committed entry must survive a power cut, not just a process crash; FULL
costs one fsync per transaction, which the recorder amortises by writing a whole superstep per transaction.
`synchronous="NORMAL"` (safe against process crashes, not power loss) is there for benchmarks and tests.
`deferred_sync()` makes the commits of one block NORMAL and syncs the write-ahead log once when the block ends:
for a writer that can redo its block, a sweep's run, whose job is acknowledged only after the block. A signed
checkpoint is committed without an fsync in the writers' turn and the log synced once the turn is handed on,
before `add_checkpoint` returns: as durable when the notary hands it on, and no other writer waits for the disk.
A block whose last commit is such a checkpoint (a sweep run's ends with one) is on disk already: its end does not
sync the log a second time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

import orjson
from pydantic import ValidationError

from coalition.bus.clock import Clock, WallClock
from coalition.ledger.base import CommitListeners, LedgerQuery, RunInfo, VerifyResult
from coalition.ledger.entry import GENESIS_HASH, EntryDraft, LedgerEntry, noncanonical_body_problem
from coalition.ledger.errors import (
    AppendOnlyViolation,
    LedgerError,
    LedgerUnavailable,
    LedgerWriteFailed,
    MalformedEntry,
)
from coalition.ledger.prepared import PreparedDraft, chain, prepare_all, prepare_items, wall_time_json
from coalition.ledger.private_files import create_private
from coalition.ledger.tree import STORED_LEVEL, OpenBlock, StoredTree, TreeBuilder
from coalition.ledger.writer_lock import WriterLock

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

# The indexed columns are STORED generated columns computed by SQLite from the entry's JSON, so they cannot
# disagree with it (an UPDATE of the body recomputes them; they cannot be written directly). `verify` checks
# that the table still has exactly this definition, then checks the chain row by row over the stored bytes.
INDEXED_COLUMNS: tuple[str, ...] = (
    "run_id",
    "actor",
    "agent",
    "kind",
    "gate",
    "outcome",
    "subject",
    "correlation_id",
    "causation_id",
    "message_id",
    "sim_time",
    "wall_time",
)

_ENTRIES_TABLE = """CREATE TABLE entries (
    seq INTEGER PRIMARY KEY,
    hash TEXT NOT NULL,
    body TEXT NOT NULL,
    body_seq INTEGER GENERATED ALWAYS AS (json_extract(body, '$.seq')) STORED,
    prev_hash TEXT GENERATED ALWAYS AS (json_extract(body, '$.prev_hash')) STORED,
    run_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.run_id')) STORED,
    actor TEXT GENERATED ALWAYS AS (json_extract(body, '$.actor')) STORED,
    agent TEXT GENERATED ALWAYS AS (CASE
        WHEN json_extract(body, '$.actor') LIKE 'agent:%' THEN substr(json_extract(body, '$.actor'), 7)
        WHEN json_type(body, '$.payload.agent') = 'text' THEN json_extract(body, '$.payload.agent')
    END) STORED,
    kind TEXT GENERATED ALWAYS AS (json_extract(body, '$.kind')) STORED,
    gate TEXT GENERATED ALWAYS AS (json_extract(body, '$.gate')) STORED,
    outcome TEXT GENERATED ALWAYS AS (json_extract(body, '$.outcome')) STORED,
    subject TEXT GENERATED ALWAYS AS (json_extract(body, '$.subject')) STORED,
    correlation_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.correlation_id')) STORED,
    causation_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.causation_id')) STORED,
    message_id TEXT GENERATED ALWAYS AS (json_extract(body, '$.message_id')) STORED,
    sim_time TEXT GENERATED ALWAYS AS (json_extract(body, '$.sim_time')) STORED,
    wall_time TEXT GENERATED ALWAYS AS (json_extract(body, '$.wall_time')) STORED
)"""

_SCHEMA = (
    _ENTRIES_TABLE.replace("CREATE TABLE entries", "CREATE TABLE IF NOT EXISTS entries")
    + """;
CREATE INDEX IF NOT EXISTS entries_run ON entries (run_id, seq);
CREATE INDEX IF NOT EXISTS entries_agent ON entries (agent, seq);
CREATE INDEX IF NOT EXISTS entries_kind ON entries (kind, seq);
CREATE INDEX IF NOT EXISTS entries_gate ON entries (gate, seq) WHERE gate IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_outcome ON entries (outcome, seq) WHERE outcome IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_subject ON entries (subject, seq);
CREATE INDEX IF NOT EXISTS entries_correlation ON entries (correlation_id, seq) WHERE correlation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_causation ON entries (causation_id) WHERE causation_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_message ON entries (message_id) WHERE message_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_sim_time ON entries (sim_time, seq);
CREATE TABLE IF NOT EXISTS dedupe (
    consumer TEXT NOT NULL,
    message_id TEXT NOT NULL,
    first_seq INTEGER,
    PRIMARY KEY (consumer, message_id)
) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS entries_no_update BEFORE UPDATE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries
BEGIN SELECT RAISE(ABORT, 'ledger entries are append-only: DELETE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS dedupe_no_update BEFORE UPDATE ON dedupe
BEGIN SELECT RAISE(ABORT, 'ledger dedupe rows are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS dedupe_no_delete BEFORE DELETE ON dedupe
BEGIN SELECT RAISE(ABORT, 'ledger dedupe rows are append-only: DELETE is not allowed'); END;
"""
)

# The Merkle tree's stored nodes (coalition.ledger.tree), the signed checkpoints (a convenience copy: the witness
# outside the ledger is what is trusted) and the ledger's id (the checkpoints' origin). Added to older ledgers when
# they are opened for writing; append-only like the entries.
_TREE_SCHEMA = """CREATE TABLE IF NOT EXISTS tree_nodes (
    level INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    hash BLOB NOT NULL,
    PRIMARY KEY (level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER NOT NULL,
    note TEXT NOT NULL,
    PRIMARY KEY (size, note)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TRIGGER IF NOT EXISTS tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'ledger tree nodes are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN SELECT RAISE(ABORT, 'ledger tree nodes are append-only: DELETE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN SELECT RAISE(ABORT, 'ledger checkpoints are append-only: DELETE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS ledger_meta_no_update BEFORE UPDATE ON ledger_meta
BEGIN SELECT RAISE(ABORT, 'ledger meta rows are append-only: UPDATE is not allowed'); END;
CREATE TRIGGER IF NOT EXISTS ledger_meta_no_delete BEFORE DELETE ON ledger_meta
BEGIN SELECT RAISE(ABORT, 'ledger meta rows are append-only: DELETE is not allowed'); END;
"""

# Each generated column and the expression it must equal (verify recomputes them from the stored JSON).
GENERATED_COLUMNS: dict[str, str] = {
    name: " ".join(expr.split())
    for name, expr in re.findall(r"(\w+) (?:INTEGER|TEXT) GENERATED ALWAYS AS \((.*?)\) STORED", _ENTRIES_TABLE, re.S)
}

# Indexes for browsing and explaining a kept ledger (the explorer's facets, a causal chain, a time range). A
# re-execution's scratch ledger is queried by run, kind, subject and message id only, and goes without them.
BROWSING_INDEXES = frozenset(
    {"entries_agent", "entries_gate", "entries_outcome", "entries_correlation", "entries_causation", "entries_sim_time"}
)


def _creates_browsing_index(statement: str) -> bool:
    words = statement.split()
    return words[:2] == ["CREATE", "INDEX"] and any(name in words for name in BROWSING_INDEXES)


_FTS_SCHEMA = "CREATE VIRTUAL TABLE IF NOT EXISTS entries_fts USING fts5(rationale, subject, content='')"

# The payload's action, matched without an index (an explorer facet; the other filters bound the rows read).
_ACTION_CLAUSE = "json_extract({table}.body, '$.payload.action') = ?"

_INSERT = "INSERT INTO entries (seq, hash, body) VALUES (?, ?, ?)"
_INSERT_FTS = "INSERT INTO entries_fts (rowid, rationale, subject) VALUES (?, ?, ?)"
_INSERT_NODE = "INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)"
_INSERT_DEDUPE = "INSERT INTO dedupe (consumer, message_id, first_seq) VALUES (?, ?, ?)"
_SEEN_CHUNK = 500  # message ids looked up in one statement (SQLite's default limit is 32,766 parameters)

_EQUALITY_FILTERS: tuple[str, ...] = (
    "run_id",
    "agent",
    "actor",
    "kind",
    "gate",
    "outcome",
    "subject",
    "correlation_id",
    "causation_id",
    "message_id",
)

# The index of each equality filter; each ends in seq (the rowid), so a filter's first and last seq, and its
# rows within a seq span, cost one index seek. `actor` has no index.
_FILTER_INDEXES: dict[str, str] = {
    "run_id": "entries_run",
    "agent": "entries_agent",
    "kind": "entries_kind",
    "gate": "entries_gate",
    "outcome": "entries_outcome",
    "subject": "entries_subject",
    "correlation_id": "entries_correlation",
    "causation_id": "entries_causation",
    "message_id": "entries_message",
}
_MIN_SEQ, _MAX_SEQ = -(2**63), 2**63 - 1

# Searching with FTS5 has two plans (see `_search_sql`). Checking one rowid against the FTS5 index costs
# about as much as walking this many matches in rowid order and looking each up by seq (measured at 1M
# entries: ~37 µs against ~1.4 µs); below `_PROBE_ROWS_MAX` filter rows the probing plan is considered.
_PROBE_COST_IN_MATCHES = 25
_PROBE_ROWS_MAX = 2000

Row = tuple[Any, ...]


def seal_with_body(
    draft: EntryDraft, *, seq: int, wall_time: datetime, prev_hash: str, wall_json: str | None = None
) -> tuple[LedgerEntry, bytes]:
    """`entry.seal` without its second validation round: the same hash, plus the canonical bytes that were hashed
    (`prepare_all` then `chain`: a writer prepares its drafts before its write turn and chains them in it)."""
    return chain(prepare_all([draft])[0], seq=seq, wall_time=wall_time, prev_hash=prev_hash, wall_json=wall_json)


def _body_fields(body: str | bytes) -> dict[str, Any]:
    """A stored body as its JSON object; one that no longer parses (someone edited the file) is a MalformedEntry."""
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise MalformedEntry("?", f"not JSON: {exc}") from None
    if not isinstance(fields, dict):
        raise MalformedEntry("?", "not a JSON object")
    return fields


def _entry_from_row(body: str | bytes, hash_: str) -> LedgerEntry:
    """A stored row as an entry; a row that no longer parses (someone edited the file) is a MalformedEntry."""
    fields = _body_fields(body)
    fields["hash"] = hash_
    return _validated_entry(fields)


def entry_of_fields(body: dict[str, Any], hash_: str) -> LedgerEntry:
    """A stored body read already (every field but `hash`) as the entry its row holds with `hash_`, as a query builds
    it (one that does not validate is a MalformedEntry); `body` is not changed."""
    return _validated_entry({**body, "hash": hash_})


def _validated_entry(fields: dict[str, Any]) -> LedgerEntry:
    try:
        return LedgerEntry.model_validate(fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise MalformedEntry(fields.get("seq", "?"), f"{where}: {first['msg']}") from None


def search_words(text: str) -> list[str]:
    """The words of a free-text search, without control characters (a NUL would end FTS5's string early)."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text)
    return cleaned.split()


def _fts_phrases(text: str) -> str:
    """Each word of a free-text search as a quoted FTS5 phrase (implicit AND), so no input is a syntax error."""
    return " ".join('"' + word.replace('"', '""') + '"' for word in search_words(text))


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _create_tree_tables(conn: sqlite3.Connection) -> None:
    """The tree's tables and the ledger's id (kept if it has one), inside the caller's write transaction."""
    for statement in _split_sql(_TREE_SCHEMA):
        conn.execute(statement)
    conn.execute("INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('ledger_id', ?)", (secrets.token_hex(8),))


def _connect(target: str) -> sqlite3.Connection:
    return sqlite3.connect(target, isolation_level=None, check_same_thread=False, timeout=30.0)


def _connect_read_only(file: Path) -> sqlite3.Connection:
    """Open without ever writing: an empty or foreign file stays as it is, and a ledger on a read-only disk can
    still be listed and verified. SQLite needs the WAL index (-shm) beside a WAL database; where it is absent and
    cannot be created (read-only media) and no WAL content is waiting, the file alone is the whole database."""
    base = f"file:{quote(str(file.absolute()))}?mode=ro"
    conn = sqlite3.connect(base, uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = file.with_name(file.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
    return sqlite3.connect(f"{base}&immutable=1", uri=True, isolation_level=None, check_same_thread=False, timeout=30.0)


class SqliteLedger(CommitListeners):
    """The `Ledger` port over one SQLite file (or ":memory:"); safe for several processes appending at once.

    `create=False` refuses to create a missing ledger; `read_only=True` (read-only tools) never writes to the
    file, not even to switch its journal mode; `fts=False` makes `search` use LIKE
    even where FTS5 exists (the fallback for SQLite builds without it); `tree=False` appends without keeping the
    Merkle tree's nodes (the benchmarks' "append as before the tree"; the next writer that opens it fills them in);
    `text_index=False` creates a new ledger without the full-text index (`scratch`: search then uses LIKE), and
    without the indexes only browsing a kept ledger uses (BROWSING_INDEXES: a filter on them then scans the run).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        wall_clock: Clock | None = None,
        create: bool = True,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        fts: bool = True,
        tree: bool = True,
        read_only: bool = False,
        text_index: bool = True,
    ) -> None:
        self._path = str(path)
        self._synchronous = synchronous
        self._deferred = False  # inside deferred_sync(): commits are NORMAL until the block ends
        # whether the write-ahead log may hold commits not yet synced: set by each write turn, cleared by each sync of
        # the log; set when a deferred_sync() block starts (what the log holds then, a dead writer's commits among
        # it, is not known to be on disk), so the block's end syncs unless a sync in the block came after them all
        self._unsynced = False
        self._wall_clock: Clock = wall_clock or WallClock()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[list[LedgerEntry]], None]] = []
        self._ledger_id: str | None = None
        self._open_block = OpenBlock(-1, GENESIS_HASH, [])  # the tree's last block as this writer left it
        # a scratch ledger's bodies already parsed, per run: (last seq read, bodies); None: not kept (see run_bodies)
        self._parsed_bodies: dict[str, tuple[int, list[dict[str, Any]]]] | None = None
        memory = self._path == ":memory:"
        new_file = False  # nothing written to the file yet: this opener may be one of several setting it up at once
        if not memory:
            file = Path(self._path)
            if not create and not file.is_file():
                raise LedgerUnavailable(self._path, "no such file")
            if create:
                try:
                    file.parent.mkdir(parents=True, exist_ok=True)
                    create_private(file)  # before SQLite creates it 0644; its WAL and SHM take the same mode
                    new_file = not file.exists() or file.stat().st_size == 0  # (a link to a file SQLite will make)
                except OSError as exc:
                    raise LedgerUnavailable(self._path, str(exc)) from None
        read_only = read_only and not memory
        try:
            conn = _connect_read_only(Path(self._path)) if read_only else _connect(self._path)
        except sqlite3.Error as exc:
            raise LedgerUnavailable(self._path, str(exc)) from None
        self._conn = conn
        self._identity: tuple[int, int] | None = None
        # beside the file the path resolves to, as SQLite's own files: one lock whichever link a writer opened by
        self._writer = (
            None if memory or read_only else WriterLock(os.path.realpath(self._path), timeout_s=BUSY_TIMEOUT_MS / 1000)
        )
        # a new file is set up (WAL, schema, tree) in the writers' turn: processes opening one new ledger at once
        # would otherwise race to switch it to WAL, where SQLite answers "database is locked" without waiting (once
        # the file has its header it is in WAL mode already, and switching again takes no lock)
        if new_file and self._writer is not None and not self._writer.acquire():
            self._abandon()
            raise LedgerUnavailable(
                self._path, f"another process held the writers' turn for {BUSY_TIMEOUT_MS // 1000} s"
            )
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not memory and not read_only:
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise LedgerUnavailable(self._path, f"cannot switch to WAL journal mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            # the full-text index is maintained on every append when present
            self._fts_index = self._prepare_schema(create=create, text_index=text_index)
            self._use_fts = self._fts_index and fts
            self._has_tree = self._prepare_tree(writable=create) and tree
            if not memory:
                stat = Path(self._path).stat()
                self._identity = (stat.st_dev, stat.st_ino)
        except sqlite3.Error as exc:
            self._abandon()
            raise LedgerUnavailable(self._path, str(exc)) from None
        except LedgerError:
            self._abandon()
            raise
        finally:
            if self._writer is not None:
                self._writer.release()

    def _abandon(self) -> None:
        """Let go of what a ledger that failed to open holds: its connection and its writer lock's file."""
        self._conn.close()
        if self._writer is not None:
            self._writer.close()

    @classmethod
    def scratch(cls) -> SqliteLedger:
        """An in-memory ledger for a re-execution that is read back once and thrown away (a replay, replay --verify,
        a what-if): the same chained entries, columns and dedupe rows, without the full-text index and the Merkle
        tree's nodes, which only searching and proving a kept ledger use (a third of an append's SQLite time), nor
        the indexes only browsing uses (BROWSING_INDEXES; another ~30% of an insert). Its `search` falls back to
        LIKE; a filter on agent, gate, outcome, correlation, causation or time scans the run's rows. `run_bodies`
        parses each body once (the end of the run reads them all, and so does the replay that compares them)."""
        ledger = cls(":memory:", text_index=False, tree=False)
        ledger._parsed_bodies = {}
        return ledger

    # -- schema ---------------------------------------------------------------------------------------------

    def _prepare_schema(self, *, create: bool, text_index: bool = True) -> bool:
        """Create the tables if needed (the full-text index too, unless `text_index` is False); decide once whether
        full-text search uses FTS5 or falls back to LIKE."""
        conn = self._conn
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'entries'").fetchone()
        if not exists:
            if not create:
                raise LedgerUnavailable(self._path, "not a Coalition ledger (no entries table)")
            conn.execute("BEGIN IMMEDIATE")
            try:
                for statement in _split_sql(_SCHEMA):
                    if text_index or not _creates_browsing_index(statement):
                        conn.execute(statement)
                if text_index and _fts5_available(conn):
                    conn.execute(_FTS_SCHEMA)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                _create_tree_tables(conn)  # in the same transaction: a new ledger costs one commit (one fsync)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        has_fts = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'entries_fts'").fetchone() is not None
        return has_fts and _fts5_available(conn)

    def _prepare_tree(self, *, writable: bool) -> bool:
        """Give the ledger its tree tables and id, and build the stored nodes a ledger from before the tree lacks.

        Opened without `create` (read-only tools) nothing is written: a missing node is then hashed from below.
        """
        conn = self._conn
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'tree_nodes'").fetchone()
        if not writable:
            return exists is not None
        size, _ = self._head_in_txn()
        (stored_blocks,) = (
            (0,)
            if not exists
            else conn.execute("SELECT count(*) FROM tree_nodes WHERE level = ?", (STORED_LEVEL,)).fetchone()
        )
        has_id = exists is not None and conn.execute("SELECT 1 FROM ledger_meta WHERE key = 'ledger_id'").fetchone()
        if exists and has_id and stored_blocks >= size >> STORED_LEVEL:
            return True
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # a read-only file: serve the tree from the entries, write nothing
            return exists is not None
        try:
            _create_tree_tables(conn)
            builder = TreeBuilder()
            cursor = conn.execute("SELECT CAST(body AS BLOB) FROM entries ORDER BY seq")
            while rows := cursor.fetchmany(10_000):
                builder.extend(row[0] for row in rows)
                if builder.completed:
                    conn.executemany(
                        "INSERT OR IGNORE INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", builder.completed
                    )
                    builder.completed.clear()
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            self._rollback()
            if "readonly" not in str(exc):
                raise
            return exists is not None  # a read-only file: serve the tree from the entries, write nothing
        except BaseException:
            self._rollback()
            raise
        return True

    @property
    def path(self) -> str:
        return self._path

    @property
    def uses_fts(self) -> bool:
        """True when `search` uses the FTS5 index, False when it falls back to LIKE."""
        return self._use_fts

    # -- writing ----------------------------------------------------------------------------------------------

    def append(self, drafts: Sequence[EntryDraft]) -> list[LedgerEntry]:
        """Append drafts in order, in one transaction; all or nothing."""
        prepared = prepare_all(drafts)  # before the write turn: nothing here needs the head
        with self._lock:
            with self._write_turn():  # handed on at the commit: listeners run after it
                entries = self._write(prepared)
                self._conn.execute("COMMIT")
            self._committed(entries)
            return entries

    def append_once(self, consumer: str, message_id: str, drafts: Sequence[EntryDraft]) -> list[LedgerEntry] | None:
        """Append together with a dedupe row (consumer, message_id) in one transaction; None if already done."""
        prepared = prepare_all(drafts)  # before the write turn: nothing here needs the head
        with self._lock:
            with self._write_turn():  # handed on at the commit: listeners run after it
                if self._seen_in_txn(consumer, message_id):
                    self._conn.execute("ROLLBACK")
                    return None
                entries = self._write(prepared)
                self._remember(consumer, message_id, entries)
                self._conn.execute("COMMIT")
            self._committed(entries)
            return entries

    def append_batch_once(self, consumer: str, items: Sequence[tuple[str, Sequence[EntryDraft]]]) -> list[LedgerEntry]:
        """Like append_once for many messages in ONE transaction; message ids already recorded are skipped."""
        # before the write turn: nothing here needs the head (a message found recorded in it is then left out)
        prepared = prepare_items(items)
        with self._lock:
            with self._write_turn():  # handed on at the commit: listeners run after it
                # one write for the whole batch (one head read, one insert of its rows), then its dedupe rows
                fresh: dict[str, list[PreparedDraft]] = {}
                seen = self._seen_among_in_txn(consumer, [message_id for message_id, _ in prepared])
                for message_id, drafts in prepared:
                    if message_id not in fresh and message_id not in seen:
                        fresh[message_id] = drafts
                written = self._write([draft for drafts in fresh.values() for draft in drafts])
                dedupe: list[tuple[str, str, int | None]] = []
                offset = 0
                for message_id, drafts in fresh.items():
                    dedupe.append((consumer, message_id, written[offset].seq if drafts else None))
                    offset += len(drafts)
                self._conn.executemany(_INSERT_DEDUPE, dedupe)
                self._conn.execute("COMMIT")
            self._committed(written)
            return written

    def append_checked(
        self, consumer: str, prepare: Callable[[], tuple[str, Sequence[EntryDraft]]]
    ) -> list[LedgerEntry] | None:
        """prepare() and the append in ONE write transaction (BEGIN IMMEDIATE holds every other writer off), so
        a check made by prepare() cannot be overtaken by a racing writer; prepare() raising rolls back."""
        with self._lock:
            with self._write_turn():  # handed on at the commit: listeners run after it
                message_id, drafts = prepare()
                if self._seen_in_txn(consumer, message_id):
                    self._conn.execute("ROLLBACK")
                    return None
                entries = self._write(prepare_all(drafts))
                self._remember(consumer, message_id, entries)
                self._conn.execute("COMMIT")
            self._committed(entries)
            return entries

    def seen(self, consumer: str, message_id: str) -> bool:
        """Whether (consumer, message_id) has been recorded by append_once / append_batch_once."""
        with self._lock:
            return self._seen_in_txn(consumer, message_id)

    @contextmanager
    def deferred_sync(self) -> Iterator[None]:
        """Commits in this block skip their own fsync (synchronous=NORMAL: durable against a process crash at once,
        against a power cut when the block ends); the block ends with one fsync of the write-ahead log, which holds
        every frame committed before it. For a writer that can redo the block after a power cut: a sweep worker
        acknowledges its job only after the block, so an unacknowledged job is taken again and resumes its run
        from what the ledger kept. A checkpoint is still synced before add_checkpoint returns, so the witness
        never holds a checkpoint of entries that a power cut could take back; when such a sync in the block came
        after this ledger's last commit (a sweep run ends with its checkpoint), the log holds nothing of the block
        that is not on disk and the block's end does not sync it again."""
        if self._deferred or self._synchronous != "FULL" or self._writer is None:  # nested, NORMAL or in memory
            yield
            return
        with self._lock:
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._deferred = True
            self._unsynced = True  # what the log holds now (a dead writer's last commits) may not be on disk
        try:
            yield
        finally:
            with self._lock:
                self._deferred = False
                self._conn.execute(f"PRAGMA synchronous = {self._synchronous}")
                if self._unsynced:
                    self._sync_log()

    def _sync_log(self) -> None:
        """fsync the write-ahead log: every frame committed so far, by any connection, is then on disk (frames a
        checkpoint moved into the database file were synced there by the checkpoint)."""
        # SQLite keeps the log beside the file the path resolves to (a symlinked ledger's log is not beside the link)
        log = f"{os.path.realpath(self._path)}-wal"
        try:
            descriptor = os.open(log, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            self._unsynced = False
            return  # no log: every commit is in the database file, synced by the checkpoint that emptied the log
        except OSError as exc:
            raise LedgerWriteFailed(self._path, f"cannot sync the write-ahead log: {exc.strerror or exc}") from None
        try:
            os.fsync(descriptor)
        except OSError as exc:
            raise LedgerWriteFailed(self._path, f"cannot sync the write-ahead log: {exc.strerror or exc}") from None
        finally:
            os.close(descriptor)
        self._unsynced = False

    @contextmanager
    def _synced_after_the_turn(self) -> Iterator[None]:
        """Around a write turn: its commit is durable when the block returns, but its fsync is not made while every
        other writer waits. The commit runs NORMAL (no fsync), and once the turn is handed on the write-ahead log
        is synced, which holds the commit's frames (or a checkpoint of the log already synced them into the
        database file), inside deferred_sync() too. A NORMAL or in-memory ledger commits as it always does."""
        if self._synchronous != "FULL" or self._writer is None:
            yield
            return
        if not self._deferred:
            self._conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            if not self._deferred:
                self._conn.execute(f"PRAGMA synchronous = {self._synchronous}")
        self._sync_log()  # the block committed (it raised otherwise): synced before the caller goes on

    @contextmanager
    def _write_turn(self) -> Iterator[None]:
        """This process's turn to write (the writer lock, coalition.ledger.writer_lock), then BEGIN IMMEDIATE around
        the block, which ends it with COMMIT (or ROLLBACK). A block that raises is rolled back — nothing
        half-written; a full disk, a read-only file or an I/O error is a LedgerWriteFailed — and the turn is handed
        on however the block ends."""
        if self._writer is not None and not self._writer.acquire():
            raise LedgerWriteFailed(
                self._path,
                f"cannot start a write transaction: another process held its turn for {BUSY_TIMEOUT_MS // 1000} s",
            )
        try:
            self._begin()
            try:
                yield
            except sqlite3.OperationalError as exc:  # full, read-only, I/O: rolled back, nothing half-written
                self._rollback()
                raise LedgerWriteFailed(self._path, str(exc)) from None
            except BaseException:
                self._rollback()
                raise
            self._unsynced = True  # committed (or rolled back: a sync then is merely not needed)
        finally:
            if self._writer is not None:
                self._writer.release()

    def _begin(self) -> None:
        self._check_file()
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise LedgerWriteFailed(self._path, f"cannot start a write transaction: {exc}") from None

    def _check_file(self) -> None:
        """The file opened is still the file at the path: appends to a deleted or replaced ledger would go into an
        inode nobody can read again (a lost database), so they are refused instead."""
        if self._identity is None:
            return
        try:
            stat = Path(self._path).stat()
        except OSError as exc:
            raise LedgerWriteFailed(self._path, f"the database file is gone ({exc.strerror or exc})") from None
        if (stat.st_dev, stat.st_ino) != self._identity:
            raise LedgerWriteFailed(self._path, "the database file was replaced while the ledger was open")

    def _rollback(self) -> None:
        with contextlib.suppress(sqlite3.Error):  # a rollback on a failing disk must not hide the first error
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")

    def _seen_in_txn(self, consumer: str, message_id: str) -> bool:
        row = self._conn.execute(
            "SELECT 1 FROM dedupe WHERE consumer = ? AND message_id = ?", (consumer, message_id)
        ).fetchone()
        return row is not None

    def _seen_among_in_txn(self, consumer: str, message_ids: Sequence[str]) -> set[str]:
        """Which of `message_ids` (consumer, message_id) has recorded: one statement for up to _SEEN_CHUNK ids, not
        one each (a write turn's statements are what the other writers of the file wait for)."""
        seen: set[str] = set()
        unique = list(dict.fromkeys(message_ids))
        for start in range(0, len(unique), _SEEN_CHUNK):
            chunk = unique[start : start + _SEEN_CHUNK]
            marks = ", ".join("?" * len(chunk))
            rows = self._conn.execute(
                f"SELECT message_id FROM dedupe WHERE consumer = ? AND message_id IN ({marks})",  # noqa: S608
                (consumer, *chunk),
            ).fetchall()
            seen.update(str(row[0]) for row in rows)
        return seen

    def _remember(self, consumer: str, message_id: str, entries: list[LedgerEntry]) -> None:
        first_seq = entries[0].seq if entries else None
        self._conn.execute(_INSERT_DEDUPE, (consumer, message_id, first_seq))

    def _write(self, drafts: Sequence[PreparedDraft]) -> list[LedgerEntry]:
        """Chain and insert prepared drafts after the current head; the caller holds the write transaction."""
        if not drafts:
            return []
        seq, prev = self._head_in_txn()
        wall_time = self._wall_clock.now()
        wall_json = wall_time_json(wall_time)
        size_before, head_before = seq, prev
        entries: list[LedgerEntry] = []
        rows: list[Row] = []
        fts_rows: list[tuple[int, str, str]] = []
        for draft in drafts:
            seq += 1
            entry, body = chain(draft, seq=seq, wall_time=wall_time, prev_hash=prev, wall_json=wall_json)
            rows.append((seq, entry.hash, body.decode()))
            fts_rows.append((seq, entry.rationale, entry.subject))
            entries.append(entry)
            prev = entry.hash
        try:
            self._conn.executemany(_INSERT, rows)
            if self._fts_index:
                self._conn.executemany(_INSERT_FTS, fts_rows)
            if self._has_tree:
                new = [row[2].encode() for row in rows]  # encoded again: kept through the loop, they cost more
                nodes = self._open_block.extend(self, size_before, head_before, new, prev)
                if nodes:
                    self._conn.executemany(_INSERT_NODE, nodes)
        except sqlite3.IntegrityError as exc:
            raise AppendOnlyViolation(f"ledger at {self._path} refused the append: {exc}") from None
        return entries

    def _head_in_txn(self) -> tuple[int, str]:
        row = self._conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return 0, GENESIS_HASH
        return int(row[0]), str(row[1])

    # -- reading ----------------------------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """(last sequence, last hash); (0, GENESIS_HASH) when empty."""
        with self._lock:
            return self._head_in_txn()

    # -- the Merkle tree and checkpoints (coalition.ledger.tree / notary / integrity) ---------------------------

    @property
    def ledger_id(self) -> str:
        """This ledger's id (the origin of its checkpoints); a ledger from before the tree, opened read-only, has
        none yet and is named by its head-less path-free placeholder "unassigned"."""
        if self._ledger_id is None:
            with self._lock:
                row = None
                if self._has_tree:
                    row = self._conn.execute("SELECT value FROM ledger_meta WHERE key = 'ledger_id'").fetchone()
            self._ledger_id = "unassigned" if row is None else str(row[0])
        return self._ledger_id

    def leaf_data(self, lo: int, hi: int) -> list[bytes]:
        """The stored bytes of leaves lo … hi - 1 (entries seq lo + 1 … hi)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, CAST(body AS BLOB) FROM entries WHERE seq > ? AND seq <= ? ORDER BY seq", (lo, hi)
            ).fetchall()
        if len(rows) != hi - lo or (rows and (rows[0][0] != lo + 1 or rows[-1][0] != hi)):
            raise LookupError(f"entries {lo + 1}..{hi} are not all in the ledger")
        return [bytes(row[1]) for row in rows]

    def tree_node(self, level: int, index: int) -> bytes | None:
        if not self._has_tree:
            return None
        with self._lock:
            row = self._conn.execute(
                "SELECT hash FROM tree_nodes WHERE level = ? AND idx = ?", (level, index)
            ).fetchone()
        return None if row is None else bytes(row[0])

    def tree_node_rows(self) -> list[tuple[int, int, bytes]]:
        """Every stored node (level, index, hash)."""
        if not self._has_tree:
            return []
        with self._lock:
            return [
                (int(a), int(b), bytes(c)) for a, b, c in self._conn.execute("SELECT level, idx, hash FROM tree_nodes")
            ]

    @contextmanager
    def tree(self) -> Iterator[StoredTree]:
        """The tree at the current head, inside one read snapshot (proofs and roots agree with each other)."""
        with self._snapshot():
            size, _ = self._head_in_txn()
            yield StoredTree(self, size)

    def stored_checkpoints(self) -> list[str]:
        """The signed checkpoint notes kept in the ledger (untrusted: each is verified by whoever reads it)."""
        if not self._has_tree:
            return []
        with self._lock:
            return [str(row[0]) for row in self._conn.execute("SELECT note FROM checkpoints ORDER BY size")]

    def add_checkpoint(self, size: int, note: str) -> None:
        # synced before the notary hands the checkpoint to the witness, which must never hold one of lost entries;
        # the sync is made once the writers' turn is handed on (two checkpoints in each sweep run: no other worker
        # waits for the disk)
        with self._lock, self._synced_after_the_turn(), self._write_turn():
            self._conn.execute("INSERT OR IGNORE INTO checkpoints (size, note) VALUES (?, ?)", (size, note))
            self._conn.execute("COMMIT")

    def derived_data_problem(self) -> str | None:
        """Whether every reader reads one value from the stored JSON, and the filter columns and the full-text index
        still derive from it; None if so.

        In one read snapshot: each body must be exactly the canonical JSON of its value (a repeated key is the first
        value to the generated columns, the last to Python); each generated column is compared with its expression
        over the stored body; the FTS5 index is rebuilt from the bodies in a temporary table and compared by document
        (which rows, how many tokens) and by term.
        """
        mismatch = " OR ".join(f"{name} IS NOT ({expr})" for name, expr in GENERATED_COLUMNS.items())
        with self._snapshot():
            bodies = self._conn.execute("SELECT seq, CAST(body AS BLOB) FROM entries ORDER BY seq")
            try:
                problem = noncanonical_body_problem(bodies)
            finally:
                bodies.close()
            if problem is not None:
                return problem
            row = self._conn.execute(
                f"SELECT seq, {', '.join(f'{name} IS NOT ({expr})' for name, expr in GENERATED_COLUMNS.items())}"  # noqa: S608
                f" FROM entries WHERE {mismatch} ORDER BY seq LIMIT 1"
            ).fetchone()
            if row is not None:
                columns = [name for name, bad in zip(GENERATED_COLUMNS, row[1:], strict=True) if bad]
                return f"derived data: column {', '.join(columns)} of seq {row[0]} does not match the entry's JSON"
            if self._fts_index:
                return self._fts_problem()
        return None

    def _fts_problem(self) -> str | None:
        conn = self._conn
        conn.execute("DROP TABLE IF EXISTS temp.verify_fts")
        conn.execute("CREATE VIRTUAL TABLE temp.verify_fts USING fts5(rationale, subject, content='')")
        try:
            conn.execute(
                "INSERT INTO temp.verify_fts (rowid, rationale, subject)"
                " SELECT seq, json_extract(body, '$.rationale'), json_extract(body, '$.subject') FROM entries"
            )
            row = conn.execute(
                "SELECT min(id) FROM (SELECT * FROM (SELECT id, sz FROM main.entries_fts_docsize"
                " EXCEPT SELECT id, sz FROM temp.verify_fts_docsize) UNION ALL SELECT * FROM"
                " (SELECT id, sz FROM temp.verify_fts_docsize EXCEPT SELECT id, sz FROM main.entries_fts_docsize))"
            ).fetchone()
            if row[0] is not None:
                return f"derived data: the full-text index does not match the entries at seq {row[0]}"
            conn.execute("CREATE VIRTUAL TABLE temp.verify_vocab_a USING fts5vocab(main, 'entries_fts', 'col')")
            conn.execute("CREATE VIRTUAL TABLE temp.verify_vocab_b USING fts5vocab(temp, 'verify_fts', 'col')")
            try:
                row = conn.execute(
                    "SELECT term FROM (SELECT * FROM (SELECT term, col, doc, cnt FROM temp.verify_vocab_a"
                    " EXCEPT SELECT term, col, doc, cnt FROM temp.verify_vocab_b) UNION ALL SELECT * FROM"
                    " (SELECT term, col, doc, cnt FROM temp.verify_vocab_b EXCEPT"
                    " SELECT term, col, doc, cnt FROM temp.verify_vocab_a)) LIMIT 1"
                ).fetchone()
            finally:
                conn.execute("DROP TABLE temp.verify_vocab_a")
                conn.execute("DROP TABLE temp.verify_vocab_b")
            if row is not None:
                return f"derived data: the full-text index does not match the entries (the word {row[0]!r})"
        finally:
            conn.execute("DROP TABLE IF EXISTS temp.verify_fts")
        return None

    def get(self, seq: int) -> LedgerEntry | None:
        with self._lock:
            row = self._conn.execute("SELECT body, hash FROM entries WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else _entry_from_row(row[0], row[1])

    def _where(self, q: LedgerQuery) -> tuple[str, list[Any]]:
        """WHERE for the filters, with search as LIKE per word (FTS5 searches go through `_search_sql`)."""
        clauses: list[str] = []
        params: list[Any] = []
        for name in _EQUALITY_FILTERS:
            value = getattr(q, name)
            if value is not None:
                clauses.append(f"{name} = ?")
                params.append(value)
        if q.action is not None:
            clauses.append(_ACTION_CLAUSE.format(table="entries"))
            params.append(q.action)
        if q.after_seq is not None:
            clauses.append("seq > ?")
            params.append(q.after_seq)
        if q.before_seq is not None:
            clauses.append("seq < ?")
            params.append(q.before_seq)
        if q.search is not None and q.search.strip():
            for word in search_words(q.search):
                clauses.append("(json_extract(body, '$.rationale') LIKE ? ESCAPE '\\' OR subject LIKE ? ESCAPE '\\')")
                params.extend((_like_pattern(word), _like_pattern(word)))
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        return where, params

    def _fts_search(self, q: LedgerQuery) -> bool:
        return self._use_fts and q.search is not None and bool(search_words(q.search))

    def _search_sql(self, q: LedgerQuery, columns: str) -> tuple[str, list[Any]] | None:
        """SELECT `columns` of the entries matching q (with an FTS5 search) in q's order; None when none can match.

        Each indexed filter bounds the seq span (its first and last seq), so a run's search only reads the
        FTS5 matches inside that run. Then one of two plans, whichever should read fewer rows:
        walk the FTS5 matches in seq order (FTS5 reads its doclists in rowid order, so ORDER BY + LIMIT stop
        early) and keep those passing the filters; or, when a filter is rare in the span, walk that filter's
        index and probe FTS5 for each of its rows. Both return exactly the same rows in the same order.
        The caller holds one read transaction, so the bounds and the query see the same snapshot.
        """
        search = q.search or ""
        filters = [(name, getattr(q, name)) for name in _EQUALITY_FILTERS if getattr(q, name) is not None]
        span = self._seq_span(q, filters)
        if span is None:
            return None
        lo, hi = span
        match = _fts_phrases(search)
        order = "DESC" if q.newest_first else "ASC"
        counting = columns == "count(*)"
        limit = None if q.limit is None or counting else max(q.limit, 0)
        filter_sql = "".join(f" AND e.{name} = ?" for name, _ in filters)
        filter_params = [value for _, value in filters]
        if q.action is not None:  # not indexed: checked on the rows the plan below reads
            filter_sql += " AND " + _ACTION_CLAUSE.format(table="e")
            filter_params.append(q.action)
        rarest = self._rarest_filter(filters, lo, hi)
        if rarest is not None and rarest[1] == 0:
            return None
        if rarest is not None and self._probing_is_cheaper(match, lo, hi, rarest[1], limit):
            sql = (
                f"SELECT {columns} FROM entries AS e INDEXED BY {_FILTER_INDEXES[rarest[0]]}"  # noqa: S608
                f" WHERE e.seq BETWEEN ? AND ?{filter_sql}"
                " AND EXISTS (SELECT 1 FROM entries_fts WHERE entries_fts MATCH ? AND rowid = e.seq)"
                f" ORDER BY e.seq {order}"
            )
            params: list[Any] = [lo, hi, *filter_params, match]
        elif not filters and q.action is None and counting:
            sql = "SELECT count(*) FROM entries_fts AS f WHERE f.entries_fts MATCH ? AND f.rowid BETWEEN ? AND ?"
            params = [match, lo, hi]
        else:
            # CROSS JOIN keeps FTS5 as the outer loop: it yields matches in rowid order, each looked up by seq.
            sql = (
                f"SELECT {columns} FROM entries_fts AS f CROSS JOIN entries AS e ON e.seq = f.rowid"  # noqa: S608
                f" WHERE f.entries_fts MATCH ? AND f.rowid BETWEEN ? AND ?{filter_sql} ORDER BY f.rowid {order}"
            )
            params = [match, lo, hi, *filter_params]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return sql, params

    def _seq_span(self, q: LedgerQuery, filters: list[tuple[str, Any]]) -> tuple[int, int] | None:
        """The narrowest [lo, hi] of seq that can hold a match: after/before and each indexed filter's first/last."""
        lo = _MIN_SEQ if q.after_seq is None else max(_MIN_SEQ, q.after_seq + 1)
        hi = _MAX_SEQ if q.before_seq is None else min(_MAX_SEQ, q.before_seq - 1)
        for name, value in filters:
            index = _FILTER_INDEXES.get(name)
            if index is None:
                continue
            first, last = self._conn.execute(
                f"SELECT (SELECT seq FROM entries INDEXED BY {index} WHERE {name} = ?1 ORDER BY seq LIMIT 1),"  # noqa: S608
                f" (SELECT seq FROM entries INDEXED BY {index} WHERE {name} = ?1 ORDER BY seq DESC LIMIT 1)",
                (value,),
            ).fetchone()
            if first is None:
                return None
            lo, hi = max(lo, int(first)), min(hi, int(last))
        return (lo, hi) if lo <= hi else None

    def _rarest_filter(self, filters: list[tuple[str, Any]], lo: int, hi: int) -> tuple[str, int] | None:
        """The indexed filter with the fewest rows within [lo, hi] and that count, if under _PROBE_ROWS_MAX."""
        rarest: tuple[str, int] | None = None
        for name, value in filters:
            index = _FILTER_INDEXES.get(name)
            if index is None:
                continue
            cap = _PROBE_ROWS_MAX if rarest is None else rarest[1]
            (rows,) = self._conn.execute(
                f"SELECT count(*) FROM (SELECT 1 FROM entries INDEXED BY {index}"  # noqa: S608
                f" WHERE {name} = ? AND seq BETWEEN ? AND ? LIMIT ?)",
                (value, lo, hi, cap),
            ).fetchone()
            if rows < cap:
                rarest = (name, int(rows))
        return rarest

    def _probing_is_cheaper(self, match: str, lo: int, hi: int, rows: int, limit: int | None) -> bool:
        """Whether probing FTS5 for each of `rows` filter rows beats walking the FTS5 matches in [lo, hi]."""
        budget = rows * _PROBE_COST_IN_MATCHES
        if limit is not None and limit * (hi - lo + 1) <= budget * rows:
            return False  # if the filter's rows are spread evenly, `limit` results come within `budget` matches
        (matches,) = self._conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM entries_fts WHERE entries_fts MATCH ? AND rowid BETWEEN ? AND ?"
            " LIMIT ?)",
            (match, lo, hi, budget),
        ).fetchone()
        return int(matches) >= budget

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        """One read transaction (under the lock) for statements that must agree with each other."""
        with self._lock:
            if self._conn.in_transaction:  # already inside one (e.g. while iter_raw is being consumed)
                yield
                return
            self._conn.execute("BEGIN")
            try:
                yield
            finally:
                self._conn.execute("COMMIT")

    def query(self, q: LedgerQuery) -> list[LedgerEntry]:
        if self._fts_search(q):
            with self._snapshot():
                planned = self._search_sql(q, "e.body, e.hash")
                rows = [] if planned is None else self._conn.execute(*planned).fetchall()
        else:
            where, params = self._where(q)
            sql = f"SELECT body, hash FROM entries{where} ORDER BY seq {'DESC' if q.newest_first else 'ASC'}"  # noqa: S608
            if q.limit is not None:
                sql += " LIMIT ?"
                params.append(max(q.limit, 0))
            with self._lock:
                rows = self._conn.execute(sql, params).fetchall()
        return [_entry_from_row(body, hash_) for body, hash_ in rows]

    def count(self, q: LedgerQuery | None = None) -> int:
        q = q or LedgerQuery()
        if self._fts_search(q):
            with self._snapshot():
                planned = self._search_sql(q, "count(*)")
                row = (0,) if planned is None else self._conn.execute(*planned).fetchone()
        else:
            where, params = self._where(q)
            with self._lock:
                row = self._conn.execute(f"SELECT count(*) FROM entries{where}", params).fetchone()  # noqa: S608
        return int(row[0])

    def iter_entries(self, *, run_id: str | None = None, batch: int = 5000) -> Iterator[LedgerEntry]:
        after = 0
        while True:
            page = self.query(LedgerQuery(run_id=run_id, after_seq=after, limit=batch))
            yield from page
            if len(page) < batch:
                return
            after = page[-1].seq

    def runs(self) -> list[RunInfo]:
        """Every run in order of its first entry, with scenario and status taken from its `run` entries."""
        with self._lock:
            spans = self._conn.execute(
                "SELECT run_id, min(seq), max(seq), count(*) FROM entries GROUP BY run_id ORDER BY min(seq)"
            ).fetchall()
            run_rows = self._conn.execute(
                "SELECT run_id, subject, outcome, body FROM entries WHERE kind = 'run' ORDER BY seq"
            ).fetchall()
        scenario: dict[str, str] = {}
        status: dict[str, str] = {}
        extra: dict[str, dict[str, object]] = {}
        for run_id, subject, outcome, body in run_rows:
            if subject and run_id not in scenario:
                scenario[run_id] = subject
            if outcome:
                status[run_id] = outcome
            fields = orjson.loads(body)
            if fields.get("message_type") == "run.started":
                payload = fields.get("payload") or {}
                extra[run_id] = {k: payload[k] for k in ("seed", "policy_version", "days", "start") if k in payload}
        return [
            RunInfo(
                run_id=run_id,
                first_seq=first,
                last_seq=last,
                entries=n,
                scenario=scenario.get(run_id),
                status=status.get(run_id),
                extra=extra.get(run_id, {}),
            )
            for run_id, first, last, n in spans
        ]

    # -- verification -----------------------------------------------------------------------------------------

    def run_bodies(self, run_id: str) -> list[dict[str, Any]]:
        """A run's entries as stored (every hashed field, `hash` aside), as JSON objects in sequence order: for
        readers that compare or digest content and need no model (a replay's comparison, a run's digest)."""
        if self._parsed_bodies is None:
            with self._lock:
                rows = self._conn.execute(
                    "SELECT body FROM entries WHERE run_id = ? ORDER BY seq", (run_id,)
                ).fetchall()
            return [_body_fields(body) for (body,) in rows]
        # A scratch ledger is read back whole by the end of its run and again by the replay comparing it: entries
        # are append-only, so the bodies parsed the first time stand, and only those appended since are read.
        with self._lock:
            after, parsed = self._parsed_bodies.get(run_id, (0, []))
            rows = self._conn.execute(
                "SELECT seq, body FROM entries WHERE run_id = ? AND seq > ? ORDER BY seq", (run_id, after)
            ).fetchall()
            if rows:
                parsed = [*parsed, *(_body_fields(body) for _, body in rows)]
                self._parsed_bodies[run_id] = (int(rows[-1][0]), parsed)
        return list(parsed)

    def iter_raw(self, *, batch: int = 10_000) -> Generator[Row, None, None]:
        """Rows as stored, in seq order: (seq, body's own seq, body's prev_hash, hash, body bytes)."""
        with self._lock:
            # One read transaction: verify sees one consistent snapshot even while other processes append.
            self._conn.execute("BEGIN")
            try:
                cur = self._conn.execute(
                    "SELECT seq, body_seq, prev_hash, hash, CAST(body AS BLOB) FROM entries ORDER BY seq"
                )
                while rows := cur.fetchmany(batch):
                    yield from rows
            finally:
                self._conn.execute("COMMIT")

    def schema_problem(self) -> str | None:
        """Why the entries table is not the one this code creates (its columns derive from the JSON), or None."""
        with self._lock:
            row = self._conn.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'entries'"
            ).fetchone()
        if row is None:
            return "the entries table is missing"
        if " ".join(str(row[0]).split()) != " ".join(_ENTRIES_TABLE.split()):
            return "the entries table definition was altered (indexed columns may no longer derive from the entries)"
        return None

    def verify(self) -> VerifyResult:
        """Recompute the chain from the stored bytes: seq 1..n without gaps, prev_hash links, hashes."""
        problem = self.schema_problem()
        if problem is not None:
            return VerifyResult(ok=False, entries=0, first_bad_seq=1, reason=problem)
        rows = self.iter_raw()
        try:
            return verify_rows(rows)
        finally:
            rows.close()

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self._writer is not None:
                self._writer.close()

    def __enter__(self) -> SqliteLedger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def verify_rows(rows: Iterator[Row], *, linked: bool = True) -> VerifyResult:
    """The chain check over raw rows (seq, body's seq, body's prev_hash, hash, body bytes); no parsing per row
    (whether each body is canonical JSON is the derived-data check's).

    `linked`: each prev_hash is the hash of the seq before (one chain per ledger); otherwise each hash is checked
    against the row's own prev_hash and the links are checked elsewhere (coalition.ledger.run_chains)."""
    sha256 = hashlib.sha256
    expected = 1
    last_hash = GENESIS_HASH
    last_hash_bytes = last_hash.encode("ascii")
    for seq, body_seq, prev_hash, hash_, body in rows:
        if seq != expected:
            return _bad(expected, f"seq {expected} is missing (the next stored seq is {seq})")
        if not linked:
            last_hash_bytes = (prev_hash or "").encode()
        elif prev_hash != last_hash:
            return _bad(seq, f"prev_hash does not link to the hash of seq {seq - 1}")
        h = sha256(last_hash_bytes)
        h.update(body)
        if h.hexdigest() != hash_:
            return _bad(seq, "hash does not match the entry's content (altered)")
        if body_seq != seq:
            return _bad(seq, f"the entry says it is seq {body_seq} (moved)")
        last_hash = hash_
        last_hash_bytes = hash_.encode("ascii")
        expected += 1
    return VerifyResult(ok=True, entries=expected - 1, head_hash=last_hash)


def _bad(seq: int, reason: str) -> VerifyResult:
    return VerifyResult(ok=False, entries=seq - 1, first_bad_seq=seq, reason=reason)


def _split_sql(script: str) -> list[str]:
    """Split the schema script into statements (triggers contain ';' inside BEGIN … END)."""
    statements: list[str] = []
    buffer = ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


def _fts5_available(conn: sqlite3.Connection) -> bool:
    try:
        conn.execute("CREATE VIRTUAL TABLE temp.coalition_fts5_probe USING fts5(x)")
        conn.execute("DROP TABLE temp.coalition_fts5_probe")
    except sqlite3.OperationalError:
        return False
    return True
