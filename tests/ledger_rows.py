"""Read a finished run's recorded payloads straight from a SQLite ledger file, as an auditor's script would."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


def payloads(ledger: Path, run_id: str, kind: str) -> list[dict[str, Any]]:
    """The payloads of one run's entries of one kind, in ledger order."""
    conn = sqlite3.connect(ledger)
    try:
        rows = conn.execute(
            "SELECT json_extract(body, '$.payload') FROM entries WHERE run_id = ? AND kind = ? ORDER BY seq",
            (run_id, kind),
        ).fetchall()
    finally:
        conn.close()
    return [json.loads(r[0]) for r in rows]
