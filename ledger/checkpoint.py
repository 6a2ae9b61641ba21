"""Ledger checkpoints: the C2SP tlog-checkpoint text (origin, tree size, base64 root hash) as a signed note."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from coalition.ledger.merkle import HASH_SIZE
from coalition.ledger.signed_note import NoteError, Signer, Verifier, open_note, split_note

ORIGIN_PREFIX = "coalition.ledger/"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        return f"{self.origin}\n{self.size}\n{base64.b64encode(self.root).decode()}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "":
            raise NoteError("a checkpoint is an origin line, a size line and a root hash line")
        origin, size_line, root_line = lines[0], lines[1], lines[2]
        if not origin:
            raise NoteError("a checkpoint's origin line is empty")
        if not size_line.isdigit() or (size_line != "0" and size_line.startswith("0")):
            raise NoteError(f"a checkpoint's size line is not a decimal number: {size_line[:40]!r}")
        try:
            root = base64.b64decode(root_line, validate=True)
        except binascii.Error:
            raise NoteError("a checkpoint's root hash is not base64") from None
        if len(root) != HASH_SIZE:
            raise NoteError(f"a checkpoint's root hash is {len(root)} bytes, not {HASH_SIZE}")
        return cls(origin, int(size_line), root)

    def sign(self, signer: Signer) -> str:
        return signer.sign(self.text())


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint whose signature was checked against a known key, with the note as it was stored."""

    checkpoint: Checkpoint
    note: str
    signer: str  # "<name>+<key id hex>"
    verifier_key: str  # the full verifier key that checked it

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root


def open_checkpoint(note: str, verifiers: list[Verifier]) -> SignedCheckpoint:
    """Parse and verify a signed checkpoint; NoteError says why it cannot be trusted."""
    text, verifier = open_note(note, verifiers)
    return SignedCheckpoint(Checkpoint.parse(text), note, f"{verifier.name}+{verifier.key_id.hex()}", verifier.encode())


def peek_size(note: str) -> int | None:
    """The tree size a note claims, without checking its signature (to order untrusted notes); None if unreadable."""
    try:
        text, _ = split_note(note)
        return Checkpoint.parse(text).size
    except NoteError:
        return None
