"""The ledger that proves itself (issue 13), at 1M entries: append with the Merkle tree against the same append
without it; inclusion- and consistency-proof latency; `ledger verify` in full (chain, tree, stored nodes, a signed
checkpoint every 1,000 entries) and the chain-only verify, each against a bare sha256 hash-and-link pass over the
same file.

The 1M-entry fixture is built once per run, the way a run writes it (appends of 1,000 entries, the notary signing a
checkpoint after each into a witness directory), in a temporary directory, and shared by every measurement.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from benchmarks.bench_ledger import BATCH, Sync, _rate, drafts, interleaved, ledger_appends
from benchmarks.harness import Measurement, percentile
from coalition.ledger import GENESIS_HASH, EntryDraft, SqliteLedger, merkle
from coalition.ledger.checkpoint import Checkpoint
from coalition.ledger.integrity import check_ledger
from coalition.ledger.notary import origin_of
from coalition.ledger.signed_note import Signer, Verifier
from coalition.ledger.sqlite import seal_with_body
from coalition.ledger.tree import TreeBuilder
from coalition.ledger.witness import WitnessDir

SECTION = "merkle"


def bare_hash_pass(path: Path) -> float:
    """Seconds to read every (body, hash) in seq order and check sha256(prev ‖ body) == hash, linking as it goes."""
    conn = sqlite3.connect(path)
    start = time.perf_counter()
    cursor = conn.execute("SELECT CAST(body AS BLOB), hash FROM entries ORDER BY seq")
    previous = GENESIS_HASH.encode()
    while rows := cursor.fetchmany(10_000):
        for body, stored in rows:
            digest = hashlib.sha256(previous)
            digest.update(body)
            if digest.hexdigest() != stored:
                raise AssertionError("the bare pass found a broken chain")
            previous = stored.encode()
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def ledger_verify(path: Path, expected: int) -> float:
    with SqliteLedger(path, create=False) as ledger:
        start = time.perf_counter()
        result = ledger.verify()
        elapsed = time.perf_counter() - start
    if not result.ok or result.entries != expected:
        raise AssertionError(f"verify failed on the benchmark ledger: {result}")
    return elapsed


def build_checkpointed(path: Path, n: int, folder: Path) -> tuple[list[Verifier], WitnessDir]:
    """A ledger of n entries with a signed checkpoint every 1,000 (as a run leaves it), and its witness directory.

    Bulk-built for speed: the ledger's own schema (created by SqliteLedger, its indexes dropped and re-created
    after the rows), the ledger's own sealing (`seal_with_body`), the tree nodes from `TreeBuilder` (as a writer
    opening a ledger without them builds them), a checkpoint signed at each 1,000 — all in one transaction."""
    key = Ed25519PrivateKey.generate()
    witness = WitnessDir(folder / f"witness-{n}")
    with SqliteLedger(path, synchronous="NORMAL") as ledger:
        origin = origin_of(ledger)
    signer = Signer(origin, key)
    conn = sqlite3.connect(path, isolation_level=None)
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    conn.execute("PRAGMA synchronous = OFF")
    conn.execute("BEGIN IMMEDIATE")
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    builder, prev, block = TreeBuilder(), GENESIS_HASH, drafts(1000)
    wall_time = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, n, 1000):
        rows: list[tuple[int, str, str]] = []
        fts: list[tuple[int, str, str]] = []
        for seq, item in enumerate(block[: n - first], start=first + 1):
            entry, body = seal_with_body(item, seq=seq, wall_time=wall_time, prev_hash=prev)
            rows.append((seq, entry.hash, body.decode()))
            fts.append((seq, entry.rationale, entry.subject))
            builder.add(body)
            prev = entry.hash
        conn.executemany("INSERT INTO entries (seq, hash, body) VALUES (?, ?, ?)", rows)
        conn.executemany("INSERT INTO entries_fts (rowid, rationale, subject) VALUES (?, ?, ?)", fts)
        conn.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", builder.completed)
        builder.completed.clear()
        checkpoint = Checkpoint(origin, builder.size, builder.root())
        note = checkpoint.sign(signer)
        conn.execute("INSERT INTO checkpoints (size, note) VALUES (?, ?)", (builder.size, note))
        witness.add(origin, builder.size, checkpoint.root, note)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("COMMIT")
    conn.close()
    return [Verifier.of(origin, key.public_key())], witness


def full_verify(path: Path, verifiers: list[Verifier], witness: WitnessDir, expected: int) -> float:
    with SqliteLedger(path, create=False) as ledger:
        start = time.perf_counter()
        report = check_ledger(ledger, verifiers=verifiers, witness=witness, derived=False)
        elapsed = time.perf_counter() - start
    if not report.ok or report.entries != expected or report.newest is None:
        raise AssertionError(f"the full verify failed on the benchmark ledger: {report.line()}")
    return elapsed


def derived_check(path: Path) -> float:
    with SqliteLedger(path, create=False) as ledger:
        start = time.perf_counter()
        problem = ledger.derived_data_problem()
        elapsed = time.perf_counter() - start
    if problem is not None:
        raise AssertionError(problem)
    return elapsed


def proof_latencies(path: Path, n: int, requests: int) -> list[Measurement]:
    """p50/p99 of an inclusion proof (and a consistency proof) against the tree at its head, random leaves: the
    elapsed time (the target), and the generating thread's CPU time (what is left when waiting for a core on a
    loaded machine is taken out)."""
    rng = random.Random(7)
    results: list[Measurement] = []
    with SqliteLedger(path, create=False) as ledger, ledger.tree() as tree:
        root = tree.root()
        shapes: dict[str, Callable[[int], object]] = {
            "inclusion proof": tree.inclusion_proof,
            "consistency proof": lambda i: tree.consistency_proof(i + 1),
        }
        for label, make in shapes.items():
            samples: list[float] = []
            cpu: list[float] = []
            for _ in range(requests):
                index = rng.randrange(n)
                start, start_cpu = time.perf_counter(), time.thread_time()
                proof = make(index)
                cpu.append((time.thread_time() - start_cpu) * 1000)
                samples.append((time.perf_counter() - start) * 1000)
                if label == "inclusion proof":
                    leaf = merkle.leaf_hash(ledger.leaf_data(index, index + 1)[0])
                    merkle.verify_inclusion(index, n, leaf, proof, root)  # type: ignore[arg-type]
            for pct in (50, 99):
                target = pct == 99 and label == "inclusion proof"
                results.append(
                    Measurement(
                        SECTION,
                        f"{label} generation, p{pct} ({n:,} entries)",
                        "ms",
                        percentile(samples, pct),
                        min(samples),
                        max(samples),
                        len(samples),
                        higher_is_better=False,
                        target="p99 < 5 ms" if target else None,
                        target_absolute=5.0 if target else None,
                        notes="elapsed; stored nodes for subtrees of 64+ entries, at most one block of entries hashed",
                    )
                )
            results.append(
                Measurement(
                    SECTION,
                    f"{label} generation, p99 CPU time ({n:,} entries)",
                    "ms",
                    percentile(cpu, 99),
                    min(cpu),
                    max(cpu),
                    len(cpu),
                    higher_is_better=False,
                    notes="the generating thread's CPU time: the elapsed p99 minus the waits for a core and the disk",
                )
            )
    return results


def tree_appends(items: list[EntryDraft], folder: Path, repeats: int) -> list[Measurement]:
    results: list[Measurement] = []
    syncs: tuple[Sync, ...] = ("FULL", "NORMAL")
    ledger_appends(items[:2000], folder, "FULL", BATCH)  # warm-up: page cache, imports, first fsyncs
    for sync in syncs:
        without = f"SqliteLedger.append without the Merkle tree, {BATCH}/txn, synchronous={sync}"
        bare, figures = interleaved(
            partial(ledger_appends, items, folder, sync, BATCH, tree=False),
            partial(ledger_appends, items, folder, sync, BATCH),
            repeats,
        )
        results.append(_rate(without, bare, repeats, section=SECTION, notes="the same code, tree=False"))
        results.append(
            _rate(
                f"SqliteLedger.append with the Merkle tree, {BATCH}/txn, synchronous={sync}",
                figures,
                repeats,
                section=SECTION,
                baseline=without,
                target="≥ 0.8× the append without the tree",
                target_ratio=0.8,
                notes="nodes of completed 64-entry subtrees written in the append transaction",
            )
        )
    return results


def verify_measurements(
    path: Path, size: int, verifiers: list[Verifier], witness: WitnessDir, repeats: int
) -> list[Measurement]:
    results: list[Measurement] = []
    bare_name = f"bare sha256 hash-and-link pass, {size:,} entries"
    bare, (mid, low, high) = interleaved(partial(bare_hash_pass, path), partial(ledger_verify, path, size), repeats)
    results.append(Measurement(SECTION, bare_name, "s", *bare, repeats, higher_is_better=False))
    results.append(
        Measurement(
            SECTION,
            f"SqliteLedger.verify (the chain only), {size:,} entries",
            "s",
            mid,
            low,
            high,
            repeats,
            higher_is_better=False,
            baseline=bare_name,
            target="≤ 2× the bare pass",
            target_ratio=0.5,
            notes="seq continuity, prev_hash links, sha256 of the stored bytes, schema check",
        )
    )
    _, (mid, low, high) = interleaved(
        partial(bare_hash_pass, path), partial(full_verify, path, verifiers, witness, size), repeats
    )
    with SqliteLedger(path, create=False) as ledger:
        checkpoints = len(witness.notes(origin_of(ledger)))
    results.append(
        Measurement(
            SECTION,
            f"ledger verify with the tree and {checkpoints:,} checkpoints, {size:,} entries",
            "s",
            mid,
            low,
            high,
            repeats,
            higher_is_better=False,
            baseline=bare_name,
            target="≤ 2.5× the bare pass",
            target_ratio=0.4,
            notes="chain + leaf and node hashes + stored nodes compared + every checkpoint's signature and"
            " root (check_ledger, derived data apart)",
        )
    )
    seconds = derived_check(path)
    results.append(
        Measurement(
            SECTION,
            f"derived-data check (each body canonical JSON, filter columns, FTS index rebuilt and compared),"
            f" {size:,} entries",
            "s",
            seconds,
            seconds,
            seconds,
            1,
            higher_is_better=False,
            notes="part of `coalition ledger verify` unless --skip-derived",
        )
    )
    return results


def run(quick: bool) -> list[Measurement]:
    repeats = 3 if quick else 5
    size = 100_000 if quick else 1_000_000
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-merkle-") as tmp:
        folder = Path(tmp)
        results.extend(tree_appends(drafts(10_000 if quick else 50_000), folder, repeats))
        path = folder / f"checkpointed-{size}.db"
        started = time.perf_counter()
        verifiers, witness = build_checkpointed(path, size, folder)
        built = time.perf_counter() - started
        results.append(
            Measurement(
                SECTION,
                f"fixture: {size:,} entries bulk-built, a signed checkpoint every 1,000",
                "s",
                built,
                built,
                built,
                1,
                higher_is_better=False,
                notes="built once per run, shared by the measurements below",
            )
        )
        results.extend(verify_measurements(path, size, verifiers, witness, repeats))
        results.extend(proof_latencies(path, size, 200 if quick else 1000))
    return results


if __name__ == "__main__":
    for m in run(quick=True):
        print(f"{m.name:60s} {m.median:12,.1f} {m.unit}")
