"""The approvers' signing keys while they are logged in: opened with the login password, held in this process's
memory for the session (never written anywhere), dropped at logout. A decision in the console is signed with
it, exactly as `coalition approvals approve --as NAME` signs with the same key opened by the same password."""

from __future__ import annotations

import hashlib
import threading

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coalition.bus.errors import KeyStoreError
from coalition.bus.keys import ApproverKeys


def _slot(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class SigningKeys:
    """Session token → the logged-in approver's unlocked key."""

    def __init__(self, store: ApproverKeys) -> None:
        self.store = store
        self._keys: dict[str, Ed25519PrivateKey] = {}
        self._lock = threading.Lock()

    def unlock(self, token: str, name: str, password: str) -> bool:
        """At login: open the user's approver key with their password (False: they have none, or it did not open)."""
        if self.store.public(name) is None:
            return False
        try:
            key = self.store.unlock(name, password)
        except KeyStoreError:
            return False
        with self._lock:
            self._keys[_slot(token)] = key
        return True

    def directory(self) -> dict[str, str]:
        """Every approver's public key (name → `ed25519:…`): what checks review marks (governance/reviews.py)."""
        try:
            return self.store.directory_for(self.store.names())
        except KeyStoreError:
            return {}

    def key(self, token: str) -> Ed25519PrivateKey | None:
        with self._lock:
            return self._keys.get(_slot(token))

    def forget(self, token: str) -> None:
        with self._lock:
            self._keys.pop(_slot(token), None)
