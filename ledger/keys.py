"""The ledger's Ed25519 key: `<data_dir>/keys/ledger.key` (PEM, created 0600) and its public half `ledger.pub`.

The minimal loader the ledger needs; the project-wide key store (several identities, `coalition keys`) can absorb
it: the file names and formats are the shared convention (`<identity>.key` / `<identity>.pub`).
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from coalition.ledger.errors import LedgerError

LEDGER_IDENTITY = "ledger"


class KeyFileError(LedgerError):
    """A key file that cannot be read or written."""


def _private_path(keys_dir: Path, identity: str) -> Path:
    return keys_dir / f"{identity}.key"


def load_or_create_private_key(keys_dir: Path, identity: str = LEDGER_IDENTITY) -> Ed25519PrivateKey:
    """The identity's private key, created (0600, with its .pub) on first use."""
    path = _private_path(keys_dir, identity)
    if path.exists():
        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise KeyFileError(f"cannot read the {identity} key at {path}: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"the {identity} key at {path} is not an Ed25519 key")
        return key
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    try:
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        public = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        (keys_dir / f"{identity}.pub").write_bytes(public)
    except FileExistsError:  # another process created it first: use theirs
        return load_or_create_private_key(keys_dir, identity)
    except OSError as exc:
        raise KeyFileError(f"cannot create the {identity} key in {keys_dir}: {exc.strerror or exc}") from None
    return key


def load_public_key(keys_dir: Path, identity: str = LEDGER_IDENTITY) -> Ed25519PublicKey | None:
    """The identity's public key (from .pub, else derived from .key); None when neither exists."""
    pub = keys_dir / f"{identity}.pub"
    try:
        if pub.exists():
            key = load_pem_public_key(pub.read_bytes())
            if not isinstance(key, Ed25519PublicKey):
                raise KeyFileError(f"the {identity} public key at {pub} is not an Ed25519 key")
            return key
        if _private_path(keys_dir, identity).exists():
            return load_or_create_private_key(keys_dir, identity).public_key()
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read the {identity} public key in {keys_dir}: {exc}") from None
    return None
