"""Password hashing with argon2id (argon2-cffi's defaults), and a check that costs the same for unknown users."""

from __future__ import annotations

from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from coalition.web.users_store import User

_HASHER = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Hashed on the first login check, not at import: importing the module costs no argon2 work."""
    return _HASHER.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def password_matches(user: User | None, password: str) -> bool:
    """Constant work whether or not the user exists (no user-name oracle through timing)."""
    try:
        return _HASHER.verify(user.password_hash if user is not None else _dummy_hash(), password) and user is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
