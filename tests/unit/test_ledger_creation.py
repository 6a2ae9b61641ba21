"""A new SQLite ledger is created in one transaction: its tables, full-text index, Merkle tree tables and id are
committed together, one commit (one fsync of the write-ahead log) rather than one for the entries' schema and
another for the tree's."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from coalition.ledger import SqliteLedger

pytestmark = pytest.mark.unit


def commits_in_wal(wal: Path) -> int:
    """Commit frames in a SQLite write-ahead log: frames whose header records the database size after a commit."""
    data = wal.read_bytes()
    if len(data) < 32:
        return 0  # no log yet, or one reset by a checkpoint
    page_size = struct.unpack(">I", data[8:12])[0]
    commits, offset = 0, 32  # the log's header, then frames of a 24-byte header and a page each
    while offset + 24 <= len(data):
        if struct.unpack(">I", data[offset + 4 : offset + 8])[0]:
            commits += 1
        offset += 24 + page_size
    return commits


def test_a_new_ledger_costs_one_commit(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path, create=True) as ledger:
        assert commits_in_wal(Path(f"{path}-wal")) == 1
        assert ledger.ledger_id  # the tree's tables and the id are in that one commit
        assert ledger.uses_fts


def test_reopening_keeps_the_id_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with SqliteLedger(path, create=True) as ledger:
        first = ledger.ledger_id
    with SqliteLedger(path, create=True) as again:
        assert again.ledger_id == first
        wal = Path(f"{path}-wal")
        assert not wal.exists() or commits_in_wal(wal) == 0
