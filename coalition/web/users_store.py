"""Console users and their server-side sessions, in a small SQLite file next to (never inside) the ledger."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from coalition.ledger.private_files import create_private
from coalition.web.errors import UserError
from coalition.web.login_throttle import FailureRecord

ROLES: tuple[str, ...] = ("viewer", "approver", "policy-admin", "auditor")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    roles TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    user_name TEXT NOT NULL REFERENCES users(name),
    csrf_token TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_user ON sessions (user_name);
CREATE TABLE IF NOT EXISTS login_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_failure TEXT NOT NULL,
    locked_until TEXT
);
"""


@dataclass(frozen=True, slots=True)
class User:
    """A console user: a name (matched to the policy's approver directory) and console roles."""

    name: str
    roles: tuple[str, ...]
    password_hash: str


@dataclass(frozen=True, slots=True)
class Session:
    """A live login: who, the CSRF token bound to it, and when it stops being valid."""

    user: User
    csrf_token: str
    expires_at: datetime
    instance: str = ""


def _token_hash(token: str) -> str:
    # Only a hash of the cookie value is stored, so a copy of the users file cannot be replayed as a login.
    return hashlib.sha256(token.encode()).hexdigest()


def check_name(name: str) -> str:
    """A user name: 1–64 chars of letters, digits, '.', '_' or '-' (no 'agent:' names: agents never approve)."""
    name = name.strip()
    if not name or len(name) > 64 or not all(c.isalnum() or c in "._-" for c in name):
        raise UserError(f"user name {name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    return name


def check_roles(roles: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if not roles:
        raise UserError(f"a user needs at least one role ({', '.join(ROLES)})")
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise UserError(f"unknown role {unknown[0]!r}; roles are {', '.join(ROLES)}")
    return tuple(dict.fromkeys(roles))


class UserStore:
    """Users (argon2 hashes, set by the caller) and sessions (random token → row with expiry)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                create_private(self.path)  # password and session hashes: owner only
            self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30.0)
            self._conn.execute("PRAGMA busy_timeout = 30000")
            self._conn.executescript(_SCHEMA)
            columns = {row[1] for row in self._conn.execute("PRAGMA table_info(sessions)")}
            if "instance" not in columns:  # a users file from before sessions were bound to a console instance
                self._conn.execute("ALTER TABLE sessions ADD COLUMN instance TEXT NOT NULL DEFAULT ''")
        except (sqlite3.Error, OSError) as exc:
            raise UserError(f"cannot open the users file {self.path}: {exc}") from None

    # -- users --------------------------------------------------------------------------------------------

    def add(self, name: str, roles: tuple[str, ...] | list[str], password_hash: str, *, now: datetime) -> User:
        name, checked = check_name(name), check_roles(roles)
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO users (name, roles, password_hash, created_at) VALUES (?, ?, ?, ?)",
                    (name, ",".join(checked), password_hash, now.isoformat()),
                )
            except sqlite3.IntegrityError:
                raise UserError(f"user {name!r} already exists") from None
        return User(name, checked, password_hash)

    def set_password(self, name: str, password_hash: str) -> None:
        with self._lock:
            cur = self._conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (password_hash, name))
            if cur.rowcount == 0:
                raise UserError(f"no user {name!r}")
            self._conn.execute("DELETE FROM sessions WHERE user_name = ?", (name,))

    def remove(self, name: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE user_name = ?", (name,))
            if self._conn.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                raise UserError(f"no user {name!r}")

    def get(self, name: str) -> User | None:
        with self._lock:
            row = self._conn.execute("SELECT name, roles, password_hash FROM users WHERE name = ?", (name,)).fetchone()
        return None if row is None else User(row[0], tuple(row[1].split(",")), row[2])

    def list(self) -> list[User]:
        with self._lock:
            rows = self._conn.execute("SELECT name, roles, password_hash FROM users ORDER BY name").fetchall()
        return [User(r[0], tuple(r[1].split(",")), r[2]) for r in rows]

    # -- sessions -----------------------------------------------------------------------------------------

    def open_session(self, user: User, *, now: datetime, ttl: timedelta, instance: str = "") -> tuple[str, Session]:
        """A new session for `user` on one console `instance` (its host:port); returns the cookie token and session."""
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(32)
        expires = now + ttl
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE expires_at <= ?", (now.isoformat(),))
            self._conn.execute(
                "INSERT INTO sessions (token_hash, user_name, csrf_token, created_at, expires_at, instance) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (_token_hash(token), user.name, csrf, now.isoformat(), expires.isoformat(), instance),
            )
        return token, Session(user, csrf, expires, instance)

    def session(self, token: str, *, now: datetime, instance: str = "") -> Session | None:
        """The live session for a cookie token on this console `instance`, or None (unknown, expired, opened on
        another instance — a cookie replayed from another port — or its user was removed)."""
        with self._lock:
            row = self._conn.execute(
                "SELECT u.name, u.roles, u.password_hash, s.csrf_token, s.expires_at, s.instance "
                "FROM sessions s JOIN users u ON u.name = s.user_name WHERE s.token_hash = ?",
                (_token_hash(token),),
            ).fetchone()
        if row is None:
            return None
        expires = datetime.fromisoformat(row[4])
        if expires <= now or row[5] != instance:
            return None
        return Session(User(row[0], tuple(row[1].split(",")), row[2]), row[3], expires, row[5])

    def close_session(self, token: str) -> None:
        with self._lock:
            self._conn.execute("DELETE FROM sessions WHERE token_hash = ?", (_token_hash(token),))

    # -- failed logins (see login_throttle) ------------------------------------------------------------------

    def failures(self, key: str) -> FailureRecord | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT failures, last_failure, locked_until FROM login_failures WHERE key = ?", (key,)
            ).fetchone()
        if row is None:
            return None
        locked = datetime.fromisoformat(row[2]) if row[2] else None
        return FailureRecord(key, int(row[0]), datetime.fromisoformat(row[1]), locked)

    def save_failures(self, record: FailureRecord) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO login_failures (key, failures, last_failure, locked_until) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, "
                "last_failure = excluded.last_failure, locked_until = excluded.locked_until",
                (
                    record.key,
                    record.failures,
                    record.last_failure.isoformat(),
                    record.locked_until.isoformat() if record.locked_until else None,
                ),
            )

    def clear_failures(self, key: str) -> bool:
        """Forget a key's failed logins (a successful login, or `coalition users unlock`); True if there were any."""
        with self._lock:
            return self._conn.execute("DELETE FROM login_failures WHERE key = ?", (key,)).rowcount > 0

    def close(self) -> None:
        with self._lock:
            self._conn.close()
