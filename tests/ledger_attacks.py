"""What a thorough attacker with write access to a SQLite ledger file does: drop the append-only triggers, change
an entry, and rewrite the chain from it with recomputed hashes, tree nodes and full-text index."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from coalition.bus.canonical import canonical_json
from coalition.ledger.tree import TreeBuilder


def attacker(path: Path) -> sqlite3.Connection:
    """A connection to the ledger file with its append-only triggers dropped."""
    conn = sqlite3.connect(path, isolation_level=None)
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    return conn


def rewrite_chain(path: Path, start: int, change: Callable[[dict[str, Any]], None] | None) -> None:
    """Rewrite every entry from `start` with recomputed hashes: `change` edits entry `start`'s fields (None: nothing
    changed); the full-text index and the tree nodes are rebuilt and the ledger's own checkpoints (which the attacker
    cannot re-sign) deleted."""
    conn = attacker(path)
    prev = conn.execute("SELECT hash FROM entries WHERE seq = ?", (start - 1,)).fetchone()
    prev_hash = prev[0] if prev else "0" * 64
    rows = conn.execute("SELECT seq, body FROM entries WHERE seq >= ? ORDER BY seq", (start,)).fetchall()
    for seq, body in rows:
        fields = orjson.loads(body)
        fields["prev_hash"] = prev_hash
        if seq == start and change is not None:
            change(fields)
        new_body = canonical_json(fields)
        prev_hash = hashlib.sha256(prev_hash.encode() + new_body).hexdigest()
        conn.execute("UPDATE entries SET body = ?, hash = ? WHERE seq = ?", (new_body.decode(), prev_hash, seq))
    conn.execute("INSERT INTO entries_fts (entries_fts) VALUES ('delete-all')")
    conn.execute(
        "INSERT INTO entries_fts (rowid, rationale, subject)"
        " SELECT seq, json_extract(body, '$.rationale'), subject FROM entries"
    )
    conn.execute("DELETE FROM tree_nodes")
    builder = TreeBuilder()
    builder.extend(bytes(b) for (b,) in conn.execute("SELECT CAST(body AS BLOB) FROM entries ORDER BY seq"))
    conn.executemany("INSERT INTO tree_nodes (level, idx, hash) VALUES (?, ?, ?)", builder.completed)
    conn.execute("DELETE FROM checkpoints")
    conn.close()
