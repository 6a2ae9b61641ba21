"""Where checkpoints are kept outside the ledger: the witness store, and each client's memory of the newest one.

`WitnessDir` is append-only: one file per checkpoint, `<dir>/<origin>/<size, 20 digits>-<root hex prefix>.checkpoint`,
created exclusively and never rewritten. `SeenCheckpoint` is what one client (the CLI, the console, an auditor's
verifier) remembers about one ledger file: its origin, the key it pinned, the newest checkpoint it verified, when,
and against which witness. A ledger that is not provably consistent with that memory is refused.
"""

from __future__ import annotations

import hashlib
import heapq
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from coalition.ledger.checkpoint import peek_size
from coalition.ledger.errors import LedgerError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


class WitnessError(LedgerError):
    """The witness store or a client's memory cannot be read or written."""


def _slug(origin: str) -> str:
    return _UNSAFE.sub("_", origin)


class WitnessDir:
    """An append-only directory of signed checkpoints, by origin."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def describe(self) -> str:
        return f"witness directory {self.path}"

    def add(self, origin: str, size: int, root: bytes, note: str) -> bool:
        """Keep the note; False if this exact checkpoint was already there. Never overwrites a file."""
        folder = self.path / _slug(origin)
        target = folder / f"{size:020d}-{root.hex()[:16]}.checkpoint"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:
            raise WitnessError(f"cannot write to the {self.describe()}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(note)
            handle.flush()
            os.fsync(handle.fileno())
        return True

    def newest(self, origin: str) -> Iterator[tuple[str, str]]:
        """The (file name, note) of the largest checkpoints kept for `origin` (at most 8), largest first, each read
        when the caller comes to it: the caller takes the first whose signature it accepts, so the files after it
        are never read (the notary asks at every checkpoint, a sweep's twice a run). File names start with the
        zero-padded size."""
        folder = self.path / _slug(origin)
        try:
            names = heapq.nlargest(8, (name for name in os.listdir(folder) if name.endswith(".checkpoint")))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise WitnessError(f"cannot read the {self.describe()}: {exc.strerror or exc}") from None
        for name in names:
            try:
                note = (folder / name).read_text(encoding="utf-8", errors="replace")
            except OSError as exc:
                raise WitnessError(f"cannot read the {self.describe()}: {exc.strerror or exc}") from None
            yield name, note

    def notes(self, origin: str) -> list[tuple[str, str]]:
        """(file name, note) of every checkpoint kept for `origin`, smallest tree first."""
        folder = self.path / _slug(origin)
        if not folder.is_dir():
            return []
        found: list[tuple[int, str, str]] = []
        try:
            for file in folder.glob("*.checkpoint"):
                note = file.read_text(encoding="utf-8", errors="replace")
                found.append((peek_size(note) or -1, file.name, note))
        except OSError as exc:
            raise WitnessError(f"cannot read the {self.describe()}: {exc.strerror or exc}") from None
        return [(name, note) for _, name, note in sorted(found)]


@dataclass(frozen=True)
class Seen:
    ledger: str
    origin: str
    verifier_key: str
    note: str
    size: int
    verified_at: str
    witness: str


class SeenCheckpoint:
    """One client's memory of the newest checkpoint it verified, per ledger file (never moves backwards)."""

    def __init__(self, state_dir: Path, client: str, ledger_path: str) -> None:
        self.client = client
        self.ledger_path = ledger_path
        key = hashlib.sha256(ledger_path.encode()).hexdigest()[:24]
        self.file = state_dir / "seen" / client / f"{key}.json"

    def load(self) -> Seen | None:
        try:
            raw = self.file.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise WitnessError(f"cannot read {self.client}'s checkpoint memory {self.file}: {exc.strerror}") from None
        try:
            data = orjson.loads(raw)
            return Seen(**{name: data[name] for name in Seen.__dataclass_fields__})
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise WitnessError(f"{self.client}'s checkpoint memory {self.file} is unreadable") from None

    def remember(self, *, origin: str, verifier_key: str, note: str, size: int, at: datetime, witness: str) -> None:
        """Keep this checkpoint unless a larger one is already remembered for the same origin."""
        current = self.load()
        if current is not None and current.origin == origin and current.size > size:
            return
        seen = Seen(self.ledger_path, origin, verifier_key, note, size, at.isoformat(), witness)
        data = orjson.dumps(seen.__dict__, option=orjson.OPT_INDENT_2)
        try:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.file.with_suffix(f".{os.getpid()}.tmp")
            temporary.write_bytes(data)
            os.replace(temporary, self.file)
        except OSError as exc:
            raise WitnessError(f"cannot write {self.client}'s checkpoint memory {self.file}: {exc.strerror}") from None
