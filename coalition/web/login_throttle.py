"""Login throttling: a growing delay after a few wrong passwords, then a lockout, per user name and per client.

A refused attempt costs no argon2 hash, so 50 guesses (or 8 parallel guessers) cannot slow the console for the
people using it. The counts live in the users file (`login_failures`), so a restart does not reset them;
`coalition users unlock NAME` clears a user's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class FailureRecord:
    """Failed logins counted for one key ("user:NAME" or "client:ADDRESS")."""

    key: str
    failures: int
    last_failure: datetime
    locked_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class ThrottlePolicy:
    """How many wrong passwords are free, how the delay grows, and when a key is locked out."""

    free_failures: int = 3  # wrong passwords answered at once
    base_delay: timedelta = timedelta(seconds=1)  # then 1 s, 2 s, 4 s … between attempts
    max_delay: timedelta = timedelta(seconds=60)
    user_lockout: int = 10  # failures for one user name before it is locked
    client_lockout: int = 20  # failures from one client address (any names) before it is locked
    lockout: timedelta = timedelta(minutes=15)
    forget_after: timedelta = timedelta(minutes=15)  # a key with no failure for this long starts again at zero

    def lockout_after(self, key: str) -> int:
        return self.user_lockout if key.startswith("user:") else self.client_lockout

    def delay(self, failures: int) -> timedelta:
        """The wait required after `failures` consecutive wrong passwords (zero while they are free)."""
        if failures < self.free_failures:
            return timedelta(0)
        return min(self.base_delay * (1 << min(failures - self.free_failures, 20)), self.max_delay)

    def current(self, record: FailureRecord | None, now: datetime) -> FailureRecord | None:
        """The record still in force at `now` (None once forgotten and not locked)."""
        if record is None:
            return None
        if record.locked_until is not None and now < record.locked_until:
            return record
        if now - record.last_failure >= self.forget_after:
            return None
        return record if record.locked_until is None else None

    def wait(self, record: FailureRecord | None, now: datetime) -> timedelta:
        """How long this key must wait before its next attempt is even checked (zero: go ahead)."""
        live = self.current(record, now)
        if live is None:
            return timedelta(0)
        if live.locked_until is not None:
            return live.locked_until - now
        ready = live.last_failure + self.delay(live.failures)
        return max(ready - now, timedelta(0))

    def after_failure(self, record: FailureRecord | None, key: str, now: datetime) -> FailureRecord:
        """The record after one more wrong password (locked when it reaches the key's lockout count)."""
        live = self.current(record, now)
        failures = (live.failures if live is not None else 0) + 1
        locked = now + self.lockout if failures >= self.lockout_after(key) else None
        return FailureRecord(key, failures, now, locked)


def user_key(name: str) -> str:
    return f"user:{name}"


def client_key(address: str) -> str:
    return f"client:{address}"
