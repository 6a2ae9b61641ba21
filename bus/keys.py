"""Ed25519 identities: one key per producer (each agent, governance, the executor, the runner, the world, the
recorder, the ledger) kept under `<data_dir>/keys/` as PEM files, private halves 0600.

A `Keyring` holds the private keys a process may sign with; a `KeyDirectory` the public keys it trusts. A run
that was given no key store signs with ephemeral keys (signatures never enter the ledger's content, so the
ledger is the same whatever keys signed the traffic). Scripted approvers sign with *test identities*: keys
derived from a public name, so anyone can compute them — a decision signed by one is marked `scripted`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from coalition.bus.errors import KeyStoreError

CORE_PRODUCERS: tuple[str, ...] = ("executor", "governance", "recorder", "runner", "world")
RUNNER = "runner"  # also signs what coordinators send their workers: sweep jobs, agent-worker run announcements
LEDGER_IDENTITY = "ledger"  # signs checkpoints (coalition.ledger.keys, same files and format); not a bus producer
APPROVERS_DIR = "approvers"  # <data_dir>/keys/approvers/: the humans' keys (see ApproverKeys)
KEY_SUFFIX = ".key"
PUB_SUFFIX = ".pub"
PUBLIC_PREFIX = "ed25519:"
_TEST_IDENTITY_DOMAIN = b"coalition test identity v1\n"


def producer_identities(agents: Iterable[str]) -> tuple[str, ...]:
    """Every identity a run signs with: the core producers and `agent:<name>` for each agent."""
    return tuple(sorted({*CORE_PRODUCERS, *(f"agent:{name}" for name in agents)}))


def file_stem(identity: str) -> str:
    """The file name of an identity (`agent:finance` → `agent-finance`): letters, digits, '.', '_', '-' only."""
    stem = identity.replace(":", "-")
    if not stem or len(stem) > 64 or not all(c.isalnum() or c in "._-" for c in stem) or stem.startswith("."):
        raise KeyStoreError(f"identity {identity!r} must be 1-64 letters, digits, ':', '.', '_' or '-'")
    return stem


def public_text(key: Ed25519PublicKey) -> str:
    """`ed25519:<base64 of the 32 raw bytes>`: how a public key is written in policies and ledger settings."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public(text: str) -> Ed25519PublicKey:
    """The public key written as `ed25519:<base64>`; KeyStoreError saying what is wrong otherwise."""
    if not isinstance(text, str) or not text.startswith(PUBLIC_PREFIX):
        raise KeyStoreError(f"public key {str(text)[:40]!r} must start with {PUBLIC_PREFIX!r}")
    try:
        raw = base64.b64decode(text[len(PUBLIC_PREFIX) :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as exc:
        raise KeyStoreError(f"public key {text[:40]!r} is not a base64 Ed25519 key: {exc}") from None


def fingerprint(key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 16 hex digits of sha256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def scripted_identity(name: str) -> Ed25519PrivateKey:
    """The well-known key of a declared test identity (scripted boards): derived from the name, so NOT secret."""
    seed = hashlib.sha256(_TEST_IDENTITY_DOMAIN + name.encode("utf-8")).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def verify_signature(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


class Keyring:
    """The private keys one process may sign with, by identity (a worker holds only its own)."""

    def __init__(self, keys: Mapping[str, Ed25519PrivateKey]) -> None:
        self._keys = dict(keys)
        self._public = {identity: key.public_key() for identity, key in self._keys.items()}

    @classmethod
    def ephemeral(cls, identities: Iterable[str]) -> Keyring:
        """Fresh keys that live as long as the process (a run given no key store)."""
        return cls({identity: Ed25519PrivateKey.generate() for identity in identities})

    def __contains__(self, identity: object) -> bool:
        return identity in self._keys

    def identities(self) -> list[str]:
        return sorted(self._keys)

    def private(self, identity: str) -> Ed25519PrivateKey:
        key = self._keys.get(identity)
        if key is None:
            raise KeyStoreError(f"this process holds no signing key for {identity!r}")
        return key

    def only(self, identities: Iterable[str]) -> Keyring:
        """A keyring with just these identities (what one worker may sign as)."""
        return Keyring({identity: self.private(identity) for identity in identities})

    def directory(self) -> KeyDirectory:
        return KeyDirectory(self._public)


class KeyDirectory:
    """The public keys a consumer trusts, by identity."""

    def __init__(self, keys: Mapping[str, Ed25519PublicKey]) -> None:
        self._keys = dict(keys)

    def __contains__(self, identity: object) -> bool:
        return identity in self._keys

    def get(self, identity: str) -> Ed25519PublicKey | None:
        return self._keys.get(identity)

    def identities(self) -> list[str]:
        return sorted(self._keys)


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """One identity in a key store, as `coalition keys list` shows it."""

    identity: str
    fingerprint: str
    public: str
    path: Path
    mode: int  # permission bits of the private key file


class KeyStore:
    """`<data_dir>/keys/`: `<identity>.key` (PKCS#8 PEM, 0600) and `<identity>.pub` (SubjectPublicKeyInfo PEM)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, identity: str) -> tuple[Path, Path]:
        stem = file_stem(identity)
        return self.directory / f"{stem}{KEY_SUFFIX}", self.directory / f"{stem}{PUB_SUFFIX}"

    def exists(self, identity: str) -> bool:
        return self._paths(identity)[0].exists()

    def init(self, identities: Iterable[str]) -> list[str]:
        """Create the keys that are missing (existing keys are kept); returns the identities created."""
        created = []
        for identity in identities:
            if not self.exists(identity):
                self._write(identity, Ed25519PrivateKey.generate(), replace=False)
                created.append(identity)
        return created

    def rotate(self, identity: str) -> tuple[str, str]:
        """Replace an identity's key with a new one; returns (old fingerprint, new fingerprint)."""
        old = fingerprint(self.private(identity).public_key())
        key = Ed25519PrivateKey.generate()
        self._write(identity, key, replace=True)
        return old, fingerprint(key.public_key())

    def private(self, identity: str) -> Ed25519PrivateKey:
        path, _ = self._paths(identity)
        try:
            mode = path.stat().st_mode & 0o777
            data = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"no key for {identity!r} at {path.name} (run `coalition keys init`)") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot read the key of {identity!r} ({path.name}): {exc.strerror}") from None
        if mode & 0o077:
            raise KeyStoreError(f"key file {path.name} is readable by others (mode {mode:o}); chmod 600 it")
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError) as exc:
            raise KeyStoreError(f"key file {path.name} is not an unencrypted PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyStoreError(f"key file {path.name} holds a {type(key).__name__}, not an Ed25519 key")
        return key

    def public(self, identity: str) -> Ed25519PublicKey:
        _, pub = self._paths(identity)
        try:
            key = serialization.load_pem_public_key(pub.read_bytes())
        except FileNotFoundError:
            return self.private(identity).public_key()
        except (OSError, ValueError) as exc:
            raise KeyStoreError(f"public key file {pub.name} cannot be read: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise KeyStoreError(f"public key file {pub.name} holds a {type(key).__name__}, not an Ed25519 key")
        return key

    def identities(self) -> list[str]:
        """Identities with a private key in the store, sorted (file stems mapped back: `agent-x` → `agent:x`)."""
        if not self.directory.is_dir():
            return []
        stems = sorted(p.name[: -len(KEY_SUFFIX)] for p in self.directory.glob(f"*{KEY_SUFFIX}"))
        return [f"agent:{stem[len('agent-') :]}" if stem.startswith("agent-") else stem for stem in stems]

    def list(self) -> list[KeyInfo]:
        infos = []
        for identity in self.identities():
            path, _ = self._paths(identity)
            key = self.public(identity)
            infos.append(KeyInfo(identity, fingerprint(key), public_text(key), path, path.stat().st_mode & 0o777))
        return infos

    def keyring(self, identities: Iterable[str]) -> Keyring:
        return Keyring({identity: self.private(identity) for identity in identities})

    def _write(self, identity: str, key: Ed25519PrivateKey, *, replace: bool) -> None:
        path, pub = self._paths(identity)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # written beside, then renamed over: a reader never sees half a key, and the file is 0600 from birth
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        if not replace and path.exists():
            tmp.unlink()
            raise KeyStoreError(f"a key for {identity!r} already exists")
        os.replace(tmp, path)
        pub.write_bytes(public)


# -- approvers: one identity per human, shared by the CLI and the console ----------------------------------

APPROVER_KEY_FORMAT = "coalition-approver-key-v1"
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**15, 8, 1  # ≈ 32 MiB and tens of milliseconds per try: guessing is slow


def _kek(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * 1024 * 1024, dklen=32)


class ApproverKeys:
    """`<data_dir>/keys/approvers/<name>.key`: an approver's Ed25519 key sealed with their console password
    (scrypt → AES-256-GCM, the name as associated data, so a file renamed to another approver does not open),
    0600; `<name>.pub` holds the public half as `ed25519:<base64>`.

    The password that logs a user into the console is the one that opens their signing key in the CLI: one
    identity per approver, and nobody who can merely run the CLI (or read the files) can decide in their name.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _paths(self, name: str) -> tuple[Path, Path]:
        stem = file_stem(name)
        return self.directory / f"{stem}{KEY_SUFFIX}", self.directory / f"{stem}{PUB_SUFFIX}"

    def create(self, name: str, password: str) -> str:
        """A new key for the approver (replacing any older one), sealed with password; returns its public text."""
        key = Ed25519PrivateKey.generate()
        raw, none = serialization.Encoding.Raw, serialization.NoEncryption()
        seed = key.private_bytes(raw, serialization.PrivateFormat.Raw, none)
        salt, nonce = os.urandom(16), os.urandom(12)
        sealed = AESGCM(_kek(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)).encrypt(nonce, seed, name.encode())
        public = public_text(key.public_key())
        document = {
            "format": APPROVER_KEY_FORMAT,
            "name": name,
            "kdf": {"name": "scrypt", "n": _SCRYPT_N, "r": _SCRYPT_R, "p": _SCRYPT_P, "salt": _b64(salt)},
            "nonce": _b64(nonce),
            "sealed": _b64(sealed),
            "public": public,
        }
        path, pub = self._paths(name)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(document, handle, sort_keys=True)
            handle.write("\n")
        os.replace(tmp, path)
        pub.write_text(public + "\n", encoding="ascii")
        return public

    def unlock(self, name: str, password: str) -> Ed25519PrivateKey:
        """The approver's private key, if password opens it; KeyStoreError saying why not otherwise."""
        path, _ = self._paths(name)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            kdf = document["kdf"]
            salt = base64.b64decode(kdf["salt"])
            nonce, sealed = base64.b64decode(document["nonce"]), base64.b64decode(document["sealed"])
            n, r, p = int(kdf["n"]), int(kdf["r"]), int(kdf["p"])
        except FileNotFoundError:
            raise KeyStoreError(f"{name!r} has no approver key (add the approver: coalition users add)") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyStoreError(f"the approver key of {name!r} cannot be read: {exc}") from None
        if document.get("format") != APPROVER_KEY_FORMAT or not (n <= 2**20 and r <= 16 and p <= 4):
            raise KeyStoreError(f"the approver key of {name!r} is not a {APPROVER_KEY_FORMAT} file")
        try:
            seed = AESGCM(_kek(password, salt, n, r, p)).decrypt(nonce, sealed, name.encode())
        except (InvalidTag, ValueError):
            raise KeyStoreError(f"the approver key of {name!r} did not open with that password") from None
        return Ed25519PrivateKey.from_private_bytes(seed)

    def public(self, name: str) -> str | None:
        """The approver's public key text, or None if they have no key."""
        _, pub = self._paths(name)
        try:
            text = pub.read_text(encoding="ascii").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return None
        parse_public(text)
        return text

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.name[: -len(PUB_SUFFIX)] for p in self.directory.glob(f"*{PUB_SUFFIX}"))

    def directory_for(self, names: Iterable[str]) -> dict[str, str]:
        """name → public key text for each of these names that has a key."""
        found = {name: self.public(name) for name in names}
        return {name: key for name, key in sorted(found.items()) if key is not None}

    def remove(self, name: str) -> None:
        for path in self._paths(name):
            path.unlink(missing_ok=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
