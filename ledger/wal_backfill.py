"""When a SQLite ledger's writer copies its write-ahead log into the database file: after its write turn, not in it.

SQLite checkpoints the log by itself (`wal_autocheckpoint`, 1000 pages) at the end of the COMMIT that filled it,
while the committing process still holds its writers' turn (coalition.ledger.writer_lock, released after COMMIT
returns): the copy and its two fsyncs (a few milliseconds) then keep every other writer waiting, a sweep's second
worker above all. A ledger's writing connection turns that off and, once its turn is handed on, checkpoints the
log itself (PASSIVE: it waits for nobody, and another writer may commit meanwhile) when the log holds as many pages
not yet copied as SQLite's own threshold.

How many: the log's last frame (`mxFrame`) and the frames already copied (`nBackfill`), read from the header of the
log's index (`<ledger>-shm`), whose layout is SQLite's documented file format (sqlite.org/walformat.html, "The
WAL-Index Header"; version 3007000 since SQLite 3.7.0). A read that races a writer can only make one checkpoint
come a commit early or late. Where the index cannot be read or has another version, SQLite's own checkpoints are
left on, as before.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct

PAGES = 1000  # SQLite's default wal_autocheckpoint
_VERSION = 3007000
_HEADER = struct.Struct("=I12xI")  # iVersion, then mxFrame at offset 16 (native byte order, as SQLite writes it)
_BACKFILL = struct.Struct("=I")  # nBackfill: the first field of the checkpoint information at offset 96
_READ = 100


class WalBackfill:
    """The checkpoint schedule of one writing connection to a SQLite file in WAL mode."""

    def __init__(self, conn: sqlite3.Connection, database: str) -> None:
        self._conn = conn
        self._index = database + "-shm"
        self._fd: int | None = None
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        if self._pending() is None:  # no readable index: SQLite checkpoints as before
            conn.execute(f"PRAGMA wal_autocheckpoint = {PAGES}")
            self._index = ""

    def _pending(self) -> int | None:
        """Pages in the log not yet copied into the database file; None if the index cannot be read."""
        if not self._index:
            return None
        try:
            if self._fd is None:
                self._fd = os.open(self._index, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            data = os.pread(self._fd, _READ, 0)
        except OSError:
            return None
        if len(data) < _READ:
            return None
        version, last = _HEADER.unpack_from(data, 0)
        if version != _VERSION:
            return None
        (copied,) = _BACKFILL.unpack_from(data, 96)
        return max(int(last) - int(copied), 0)

    def after_turn(self) -> None:
        """Checkpoint if the log holds enough pages not yet copied; call with the writers' turn handed on."""
        pending = self._pending()
        if pending is not None and pending >= PAGES:
            # the turn's commit stands whatever happens here (a full disk fails the next write, as it would have)
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
