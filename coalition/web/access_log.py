"""The console's access log: one JSON line per login, failed login, refused (throttled) login, lockout, logout,
refused session and refused `Host`, in a 0600 file beside the users file (`console-access.log`)."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path

import orjson
import structlog

from coalition.ledger.private_files import create_private

_log = structlog.get_logger("coalition.web.access")


class AccessLog:
    """Append-only JSON lines (`O_APPEND`, so two consoles sharing a users file can share the log too)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            create_private(path)

    def record(self, event: str, *, at: datetime, client: str, user: str | None = None, **detail: object) -> None:
        line = {"at": at.isoformat(), "event": event, "user": user, "client": client, **detail}
        _log.info(f"console {event}", **{k: v for k, v in line.items() if k != "event"})
        if self.path is None:
            return
        data = orjson.dumps(line) + b"\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)

    def lines(self) -> list[dict[str, object]]:
        """Every recorded line (for `coalition users log` and tests)."""
        if self.path is None or not self.path.exists():
            return []
        return [orjson.loads(raw) for raw in self.path.read_bytes().splitlines() if raw.strip()]
