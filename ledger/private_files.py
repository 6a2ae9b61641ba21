"""Data files readable by their owner only: ledgers, the console's users file and its access log hold decisions,
password hashes and session hashes, so they are created 0600 (SQLite gives a WAL/SHM file the mode of its database).
"""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_MODE = 0o600


def create_private(path: Path | str) -> None:
    """Create `path` empty with mode 0600 if it does not exist yet (an existing file keeps its mode and content).

    An existing file is not opened at all: closing a descriptor of a file releases every POSIX lock this process
    holds on it, SQLite's for another open connection included (sqlite.org/howtocorrupt.html §2.2)."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), PRIVATE_MODE)
    except FileExistsError:
        return
    os.close(fd)
