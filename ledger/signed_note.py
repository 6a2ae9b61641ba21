"""C2SP signed notes (https://c2sp.org/signed-note) with Ed25519 keys, and C2SP tlog checkpoints as their text.

A note is UTF-8 text ending in a newline, a blank line, then one line per signature:
"— <key name> <base64(4-byte key id ‖ 64-byte signature)>". The key id is the first 4 bytes of
SHA-256(name ‖ 0x0A ‖ 0x01 ‖ public key). Verifier keys are written "<name>+<key id hex>+<base64(0x01 ‖ public
key)>", signer keys "PRIVATE+KEY+<name>+<key id hex>+<base64(0x01 ‖ private seed)>" (the Go sumdb/note forms).
Tested against the known answer from golang.org/x/mod/sumdb/note (`../shared/testvectors/signed-note`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ALG_ED25519 = 0x01
SIGNATURE_PREFIX = "\u2014 "  # em dash and a space


class NoteError(ValueError):
    """A note, key or signature that cannot be used."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + bytes([ALG_ED25519]) + public_key).digest()[:4]


def _check_name(name: str) -> None:
    if not name or "+" in name or any(ch.isspace() for ch in name):
        raise NoteError(f"bad key name {name!r}: it must be non-empty, without '+' or whitespace")


@dataclass(frozen=True)
class Verifier:
    name: str
    key_id: bytes
    public_key: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> Verifier:
        """A verifier key string; anything malformed, of another algorithm or with a wrong key id is refused."""
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError("a verifier key is <name>+<key id hex>+<base64 key>")
        name, hex_id, encoded = parts
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
            wanted = bytes.fromhex(hex_id)
        except (binascii.Error, ValueError):
            raise NoteError("a verifier key's id or key is not valid hex / base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("a verifier key must be an Ed25519 key (algorithm 0x01 and 32 bytes)")
        if len(wanted) != 4 or key_id(name, raw[1:]) != wanted:
            raise NoteError("a verifier key's id does not match its name and key")
        return cls(name, wanted, Ed25519PublicKey.from_public_bytes(raw[1:]))

    @classmethod
    def of(cls, name: str, public_key: Ed25519PublicKey) -> Verifier:
        _check_name(name)
        raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return cls(name, key_id(name, raw), public_key)

    def encode(self) -> str:
        raw = self.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(bytes([ALG_ED25519]) + raw).decode()}"


@dataclass(frozen=True)
class Signer:
    name: str
    private_key: Ed25519PrivateKey

    @classmethod
    def parse(cls, text: str) -> Signer:
        parts = text.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a signer key is PRIVATE+KEY+<name>+<key id hex>+<base64 key>")
        name, hex_id, encoded = parts[2:]
        _check_name(name)
        try:
            raw = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            raise NoteError("a signer key is not valid base64") from None
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise NoteError("a signer key must be an Ed25519 seed (algorithm 0x01 and 32 bytes)")
        signer = cls(name, Ed25519PrivateKey.from_private_bytes(raw[1:]))
        if signer.verifier.key_id.hex() != hex_id.lower():
            raise NoteError("a signer key's id does not match its key")
        return signer

    @property
    def verifier(self) -> Verifier:
        return Verifier.of(self.name, self.private_key.public_key())

    def sign(self, text: str) -> str:
        """The signed note: the text, a blank line and this key's signature line."""
        _check_text(text)
        signature = self.private_key.sign(text.encode())
        blob = base64.b64encode(self.verifier.key_id + signature).decode()
        return f"{text}\n{SIGNATURE_PREFIX}{self.name} {blob}\n"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end with a newline")
    if "\n\n" in text:
        raise NoteError("a note's text must not contain a blank line")


@dataclass(frozen=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def label(self) -> str:
        return f"{self.name}+{self.key_id.hex()}"


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """(text, signature lines) of a signed note; a note not in the C2SP form is a NoteError."""
    text, sep, tail = note.rpartition("\n\n")
    if not sep or not text:
        raise NoteError("not a signed note (no blank line before the signatures)")
    text += "\n"
    _check_text(text)
    if not tail.endswith("\n"):
        raise NoteError("a signed note must end with a newline")
    signatures: list[NoteSignature] = []
    for line in tail[:-1].split("\n"):
        if not line.startswith(SIGNATURE_PREFIX):
            raise NoteError("a signature line must start with an em dash and a space")
        name, _, blob = line[len(SIGNATURE_PREFIX) :].partition(" ")
        _check_name(name)
        try:
            raw = base64.b64decode(blob, validate=True)
        except binascii.Error:
            raise NoteError(f"signature by {name} is not valid base64") from None
        if len(raw) < 5:
            raise NoteError(f"signature by {name} is too short")
        signatures.append(NoteSignature(name, raw[:4], raw[4:]))
    if not signatures:
        raise NoteError("a signed note needs at least one signature")
    return text, signatures


def open_note(note: str, verifiers: list[Verifier]) -> tuple[str, Verifier]:
    """The note's text and the known key that signed it; NoteError names an unknown key or a bad signature."""
    text, signatures = split_note(note)
    unknown: list[str] = []
    for sig in signatures:
        for verifier in verifiers:
            if verifier.name == sig.name and verifier.key_id == sig.key_id:
                try:
                    verifier.public_key.verify(sig.signature, text.encode())
                except InvalidSignature:
                    raise NoteError(f"the signature by {sig.label()} does not verify (altered note)") from None
                return text, verifier
        unknown.append(sig.label())
    raise NoteError(f"signed by an unknown key ({', '.join(unknown)})")
