"""Ledger throughput: SqliteLedger appends vs bare sqlite3 inserts of the same bytes; full-text search latency
combined with filters (run, agent, kind, rare facets) over a 1M-entry ledger; PostgresLedger batched appends vs
bare psycopg COPY of the same rows into the same schema (when a PostgreSQL answers at COALITION_BENCH_POSTGRES_URL,
default postgres@127.0.0.1:5432/test). The Merkle tree, proofs and verify are measured in bench_merkle.py.

The bare baselines use the same file, schema (generated filter columns, indexes, FTS5) and pragmas, and the
exact rows the ledger wrote (taken from a ledger built with the same drafts), so the ratio is the cost of
the ledger's own work: validating, sealing, hashing, canonical JSON. Entries are about 1 KB of JSON.
"""

from __future__ import annotations

import hashlib
import sqlite3
import tempfile
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from statistics import median
from typing import Any, Literal

from benchmarks.harness import Measurement, percentile
from coalition.ledger import EntryDraft, LedgerQuery, SqliteLedger
from coalition.ledger.entry import EntryKind

SECTION = "ledger"
BATCH = 100
Sync = Literal["FULL", "NORMAL"]


def drafts(n: int) -> list[EntryDraft]:
    """n distinct proposal-like drafts, about 1 KB each once sealed."""
    start = datetime(2025, 3, 1, tzinfo=UTC)
    return [
        EntryDraft(
            run_id="bench-run",
            sim_time=start + timedelta(minutes=i),
            actor="agent:finance",
            actor_kind="agent",
            kind="proposal",
            subject=f"proposal-{i:07d}",
            payload={
                "proposal_id": f"proposal-{i:07d}",
                "agent": "finance",
                "action": "set_price",
                "args": {"region": "TX", "price": "41.50"},
                "rationale": "supply fell 12% in TX after the heat wave; price follows within the surge cap",
                "evidence": [hashlib.sha256(f"ev-{i}".encode()).hexdigest()],
            },
            rationale="supply fell 12% in TX after the heat wave; the price follows within the surge cap of 25%",
            evidence=[hashlib.sha256(f"ev-{i}".encode()).hexdigest()],
            message_id=f"msg-{i:07d}",
            message_type="action.proposed",
            correlation_id=f"corr-{i // 10:06d}",
            causation_id=f"msg-{i - 1:07d}",
            superstep=i // 50,
        )
        for i in range(n)
    ]


def stored_rows(items: list[EntryDraft], folder: Path) -> tuple[list[tuple[int, str, str]], list[tuple[int, str, str]]]:
    """The (seq, hash, body) and FTS rows the ledger writes for these drafts."""
    with SqliteLedger(folder / "source.db", synchronous="NORMAL") as ledger:
        for start in range(0, len(items), 1000):
            ledger.append(items[start : start + 1000])
        with sqlite3.connect(folder / "source.db") as conn:
            rows = conn.execute("SELECT seq, hash, body FROM entries ORDER BY seq").fetchall()
    fts = [(seq, d.rationale, d.subject) for (seq, _, _), d in zip(rows, items, strict=True)]
    return rows, fts


def _fresh(folder: Path, name: str, sync: Sync) -> Path:
    path = folder / f"{name}-{time.perf_counter_ns()}.db"
    SqliteLedger(path, synchronous=sync).close()  # the same schema for the ledger and for the bare inserts
    return path


def ledger_appends(items: list[EntryDraft], folder: Path, sync: Sync, batch: int, *, tree: bool = True) -> float:
    path = _fresh(folder, "ledger", sync)
    with SqliteLedger(path, synchronous=sync, tree=tree) as ledger:
        start = time.perf_counter()
        for first in range(0, len(items), batch):
            ledger.append(items[first : first + batch])
        elapsed = time.perf_counter() - start
    _remove(path)
    return len(items) / elapsed


def _remove(path: Path) -> None:
    """A measured ledger is not needed again (dozens of 80 MB files otherwise fill a small temp disk)."""
    for file in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        file.unlink(missing_ok=True)


def bare_inserts(
    rows: list[tuple[int, str, str]], fts: list[tuple[int, str, str]], folder: Path, sync: Sync, batch: int
) -> float:
    path = _fresh(folder, "bare", sync)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA synchronous = {sync}")
    start = time.perf_counter()
    for first in range(0, len(rows), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("SELECT seq, hash FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        conn.executemany("INSERT INTO entries (seq, hash, body) VALUES (?, ?, ?)", rows[first : first + batch])
        conn.executemany(
            "INSERT INTO entries_fts (rowid, rationale, subject) VALUES (?, ?, ?)", fts[first : first + batch]
        )
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    _remove(path)
    return len(rows) / elapsed


WORDS = ("heatwave", "settlement", "campaign", "outage", "jurisdiction", "credit", "surge", "reserve")
AGENTS = ("finance", "legal", "marketing", "ops", "research")
KINDS: tuple[EntryKind, ...] = ("proposal", "verdict", "observation", "execution", "message")


def search_draft(i: int, start: datetime) -> EntryDraft:
    """Entry i of the search ledger: 100k-entry runs, five agents and kinds, a `run` entry every 10,007th."""
    kind: EntryKind = "run" if i % 10_007 == 0 else KINDS[i % len(KINDS)]
    agent = AGENTS[(i // 5) % len(AGENTS)]
    by_agent = kind in ("proposal", "message")
    return EntryDraft(
        run_id=f"bench-run-{i // 100_000:02d}",
        sim_time=start + timedelta(minutes=i),
        actor=f"agent:{agent}" if by_agent else "governance",
        actor_kind="agent" if by_agent else "governance",
        kind=kind,
        subject=f"p-{i:07d}",
        payload={"agent": agent, "action": "set_price", "args": {"region": "TX", "price": "41.50"}},
        rationale=f"entry {i}: {WORDS[i % 8]} in TX moved prices {WORDS[(i // 7) % 8]} #{i % 997}",
        outcome=("allow", "deny", "escalate")[i % 3] if kind == "verdict" else None,
    )


def search_latencies(
    path: Path | Callable[[], Any], n: int, requests: int, *, backend: str = "SqliteLedger"
) -> list[Measurement]:
    """p50/p99 of one console page (50 rows + 1, newest first) per query shape; each shape's queries vary.
    `path` is a SQLite file, or a callable opening another backend's ledger."""
    runs = max(1, n // 100_000)
    shapes: dict[str, Callable[[int], LedgerQuery]] = {
        "one word": lambda k: LedgerQuery(search=WORDS[k % 8]),
        "two words + run": lambda k: LedgerQuery(search=f"{WORDS[k % 8]} TX", run_id=f"bench-run-{k % runs:02d}"),
        "word + agent + kind": lambda k: LedgerQuery(search=WORDS[k % 8], agent=AGENTS[k % 5], kind="proposal"),
        "word + rare kind spread over the ledger": lambda k: LedgerQuery(search=WORDS[k % 8], kind="run"),
        "word + run, deep page": lambda k: LedgerQuery(
            search=WORDS[k % 8], run_id=f"bench-run-{k % runs:02d}", before_seq=(k % runs) * 100_000 + 20_000
        ),
    }
    results: list[Measurement] = []
    opened = SqliteLedger(path, create=False) if isinstance(path, Path) else path()
    with opened as ledger:
        ledger.query(LedgerQuery(search="surge", limit=51))  # warm the page cache
        for label, shape in shapes.items():
            samples = []
            for k in range(requests):
                page = replace(shape(k), limit=51, newest_first=True)
                start = time.perf_counter()
                ledger.query(page)
                samples.append((time.perf_counter() - start) * 1000)
            for pct in (50, 99):
                results.append(
                    Measurement(
                        SECTION,
                        f"search, {label}, p{pct} ({n:,} entries)"
                        + ("" if backend == "SqliteLedger" else f", {backend}"),
                        "ms",
                        percentile(samples, pct),
                        min(samples),
                        max(samples),
                        len(samples),
                        higher_is_better=False,
                        target="p99 ≤ 250 ms" if pct == 99 else None,
                        target_absolute=250.0 if pct == 99 else None,
                        notes=f"{backend}.query, 51 rows newest first"
                        + (f", FTS5={ledger.uses_fts}" if backend == "SqliteLedger" else ", tsvector + GIN"),
                    )
                )
    return results


def interleaved(
    baseline: Callable[[], float], subject: Callable[[], float], repeats: int
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """Run baseline and subject alternately, so that both see the same load on a shared machine."""
    pairs = [(baseline(), subject()) for _ in range(repeats)]
    base, mine = [a for a, _ in pairs], [b for _, b in pairs]
    return (median(base), min(base), max(base)), (median(mine), min(mine), max(mine))


def _rate(
    name: str, figures: tuple[float, float, float], repeats: int, *, section: str = SECTION, **extra: Any
) -> Measurement:
    median, low, high = figures
    return Measurement(section, name, "entries/s", median, low, high, repeats, **extra)


POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


class _PostgresBench:
    """Fresh ledger schemas on a PostgreSQL server, each set up like production (owner role, app role)."""

    def __init__(self, admin_url: str) -> None:
        import psycopg

        psycopg.connect(admin_url, connect_timeout=2).close()
        self.admin_url = admin_url
        self.tag = f"bench{time.perf_counter_ns() % 10**9}"
        self.schemas: list[str] = []

    def fresh(self) -> str:
        from coalition.ledger.postgres import app_url, setup_schema

        schema = f"{self.tag}_s{len(self.schemas)}"
        self.schemas.append(schema)
        owner, app = f"{self.tag}_owner", f"{self.tag}_app"
        setup_schema(self.admin_url, schema=schema, owner_role=owner, app_role=app)
        return app_url(self.admin_url, app_role=app, schema=schema)

    def cleanup(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for schema in self.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for role in (f"{self.tag}_app", f"{self.tag}_owner"):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    conn.execute(f'DROP OWNED BY "{role}"')
                    conn.execute(f'DROP ROLE "{role}"')


def postgres_appends(bench: _PostgresBench, items: list[EntryDraft], batch: int) -> float:
    from coalition.ledger.postgres import PostgresLedger

    with PostgresLedger(bench.fresh()) as ledger:
        start = time.perf_counter()
        for first in range(0, len(items), batch):
            ledger.append(items[first : first + batch])
        elapsed = time.perf_counter() - start
    return len(items) / elapsed


def bare_psycopg_inserts(bench: _PostgresBench, rows: list[tuple[int, str, str]], batch: int) -> float:
    """The same rows, the same schema and role, the same transaction size: read the heads, COPY the entries (one
    run: its chain_seq is the seq), insert the run's head row, commit."""
    import psycopg

    from coalition.ledger.postgres import split_ledger_url

    conninfo, schema = split_ledger_url(bench.fresh())
    with psycopg.connect(conninfo) as conn:
        start = time.perf_counter()
        for number, first in enumerate(range(0, len(rows), batch), 1):
            chunk = rows[first : first + batch]
            with conn.transaction(), conn.cursor() as cur:
                cur.execute(
                    f'(SELECT seq, hash FROM "{schema}".entries ORDER BY seq DESC LIMIT 1)'
                    f' UNION ALL (SELECT seq, hash FROM "{schema}".run_heads ORDER BY seq DESC LIMIT 1)'
                )
                heads = cur.fetchall()
                with cur.copy(f'COPY "{schema}".entries (seq, chain_seq, hash, body) FROM STDIN') as copy:
                    for seq, hash_, body in chunk:
                        copy.write_row((seq, seq, hash_, body))
                last_seq, last_hash = chunk[-1][0], chunk[-1][1]
                cur.execute(
                    f'INSERT INTO "{schema}".run_heads (seq, run_id, chain_seq, head_hash, entry_seq, prev_hash, hash)'
                    " VALUES (%s, 'bench-run', %s, %s, %s, %s, md5(%s) || md5(%s))",
                    (
                        number,
                        last_seq,
                        last_hash,
                        last_seq,
                        heads[-1][1] if len(heads) > 1 else "0" * 64,
                        last_hash,
                        str(number),
                    ),
                )
        elapsed = time.perf_counter() - start
    return len(rows) / elapsed


def postgres_measurements(
    items: list[EntryDraft], rows: list[tuple[int, str, str]], repeats: int, *, quick: bool
) -> list[Measurement]:
    import os

    import psycopg

    url = os.environ.get("COALITION_BENCH_POSTGRES_URL", POSTGRES_ADMIN_URL)
    try:
        bench = _PostgresBench(url)
    except psycopg.Error as exc:
        print(f"ledger: PostgreSQL skipped (no server at {url}: {str(exc).strip().splitlines()[0]})")
        return []
    try:
        postgres_appends(bench, items[:2000], BATCH)  # warm-up
        bare_name = f"bare psycopg COPY, {BATCH}/txn (same schema and rows)"
        bare, figures = interleaved(
            partial(bare_psycopg_inserts, bench, rows, BATCH), partial(postgres_appends, bench, items, BATCH), repeats
        )
        size = 20_000 if quick else 200_000
        from coalition.ledger.postgres import PostgresLedger

        url = bench.fresh()
        start = datetime(2025, 3, 1, tzinfo=UTC)
        with PostgresLedger(url) as ledger:
            for first in range(0, size, 5000):
                ledger.append([search_draft(i, start) for i in range(first, min(size, first + 5000))])
        searches = search_latencies(partial(PostgresLedger, url), size, 20 if quick else 100, backend="PostgresLedger")
        return [
            *searches,
            _rate(bare_name, bare, repeats),
            _rate(
                f"PostgresLedger.append, {BATCH}/txn",
                figures,
                repeats,
                baseline=bare_name,
                target="≥ 60% of bare inserts",
                target_ratio=0.6,
                notes="READ COMMITTED, advisory lock, heads read, seal + sha256 + canonical JSON in Python, COPY,"
                " the run's head row",
            ),
        ]
    finally:
        bench.cleanup()


def run(quick: bool) -> list[Measurement]:
    repeats = 5
    one_n, batched_n = (300, 10_000) if quick else (2_000, 50_000)
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        folder = Path(tmp)
        items = drafts(batched_n)
        rows, fts = stored_rows(items, folder)
        ledger_appends(items[:2000], folder, "FULL", BATCH)  # warm-up: page cache, imports, first fsyncs
        bare_inserts(rows[:2000], fts[:2000], folder, "FULL", BATCH)
        syncs: tuple[Sync, ...] = ("FULL", "NORMAL")
        for sync in syncs:
            bare_one = f"bare sqlite3 insert, 1/txn, synchronous={sync}"
            bare_batched = f"bare sqlite3 insert, {BATCH}/txn, synchronous={sync}"
            bare, figures = interleaved(
                partial(bare_inserts, rows[:one_n], fts[:one_n], folder, sync, 1),
                partial(ledger_appends, items[:one_n], folder, sync, 1),
                repeats,
            )
            results.append(_rate(bare_one, bare, repeats))
            results.append(
                _rate(
                    f"SqliteLedger.append, 1/txn, synchronous={sync}",
                    figures,
                    repeats,
                    baseline=bare_one,
                    notes="the commit (an fsync with FULL) dominates",
                )
            )
            bare, figures = interleaved(
                partial(bare_inserts, rows, fts, folder, sync, BATCH),
                partial(ledger_appends, items, folder, sync, BATCH),
                repeats,
            )
            results.append(_rate(bare_batched, bare, repeats))
            results.append(
                _rate(
                    f"SqliteLedger.append, {BATCH}/txn, synchronous={sync}",
                    figures,
                    repeats,
                    baseline=bare_batched,
                    target="≥ 60% of bare inserts",
                    target_ratio=0.6,
                )
            )
        results.extend(postgres_measurements(items, rows, repeats, quick=quick))
        size = 100_000 if quick else 1_000_000
        path = folder / "search.db"
        start = datetime(2025, 3, 1, tzinfo=UTC)
        with SqliteLedger(path, synchronous="NORMAL") as ledger:
            for first in range(0, size, 5000):
                ledger.append([search_draft(i, start) for i in range(first, min(size, first + 5000))])
        results.extend(search_latencies(path, size, 40 if quick else 100))
    return results


if __name__ == "__main__":
    for m in run(quick=True):
        print(f"{m.name:60s} {m.median:12,.1f} {m.unit}")
