"""Console identity pieces: the users/sessions store, argon2 passwords, CSRF checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coalition.web.csrf import check_token
from coalition.web.errors import Refused, UserError
from coalition.web.hosts import HostAllowlist, cookie_suffix, instance_of, split_host
from coalition.web.login_throttle import ThrottlePolicy
from coalition.web.passwords import hash_password, password_matches
from coalition.web.users_store import UserStore

pytestmark = pytest.mark.unit

NOW = datetime(2025, 3, 3, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> UserStore:
    return UserStore(tmp_path / "users.db")


class TestUserStore:
    """Users with roles and server-side sessions that expire."""

    def test_add_and_get(self, store: UserStore) -> None:
        """A user round-trips with its roles; the password is stored as an argon2 hash."""
        store.add("carol", ["approver", "auditor"], hash_password("correct horse"), now=NOW)
        user = store.get("carol")
        assert user is not None
        assert user.roles == ("approver", "auditor")
        assert user.password_hash.startswith("$argon2id$")
        assert password_matches(user, "correct horse")
        assert not password_matches(user, "wrong")

    def test_unknown_user_never_matches(self) -> None:
        """A missing user fails the password check (after the same argon2 work)."""
        assert not password_matches(None, "anything")

    @pytest.mark.parametrize(
        ("name", "roles", "message"),
        [("bad name!", ["viewer"], "user name"), ("ok", ["root"], "unknown role"), ("ok", [], "at least one role")],
    )
    def test_bad_input_is_one_clear_line(self, store: UserStore, name: str, roles: list[str], message: str) -> None:
        """Bad names and roles are refused with a message naming the problem."""
        with pytest.raises(UserError, match=message):
            store.add(name, roles, "h", now=NOW)

    def test_duplicate_user_refused(self, store: UserStore) -> None:
        """Adding the same name twice is an error, not an overwrite."""
        store.add("dave", ["viewer"], "h", now=NOW)
        with pytest.raises(UserError, match="already exists"):
            store.add("dave", ["approver"], "h", now=NOW)

    def test_session_expires(self, store: UserStore) -> None:
        """A session is valid until its expiry and unknown after it."""
        user = store.add("erin", ["viewer"], "h", now=NOW)
        token, session = store.open_session(user, now=NOW, ttl=timedelta(minutes=5))
        assert store.session(token, now=NOW + timedelta(minutes=4)) == session
        assert store.session(token, now=NOW + timedelta(minutes=5)) is None
        assert store.session("not-a-token", now=NOW) is None

    def test_only_a_hash_of_the_token_is_stored(self, store: UserStore, tmp_path: Path) -> None:
        """The cookie value itself is not in the users file."""
        user = store.add("frank", ["viewer"], "h", now=NOW)
        token, _ = store.open_session(user, now=NOW, ttl=timedelta(hours=1))
        store.close()
        assert token.encode() not in (tmp_path / "users.db").read_bytes()

    def test_password_change_and_removal_end_sessions(self, store: UserStore) -> None:
        """Changing a password or removing the user closes their sessions."""
        user = store.add("gina", ["viewer"], "h", now=NOW)
        token, _ = store.open_session(user, now=NOW, ttl=timedelta(hours=1))
        store.set_password("gina", "h2")
        assert store.session(token, now=NOW) is None
        token, _ = store.open_session(user, now=NOW, ttl=timedelta(hours=1))
        store.remove("gina")
        assert store.session(token, now=NOW) is None
        with pytest.raises(UserError, match="no user"):
            store.remove("gina")


class TestCsrf:
    """The CSRF token comparison."""

    def test_missing_and_bad_tokens_are_403(self) -> None:
        """No token and a wrong token are both refused with 403 and a reason."""
        for given, reason in ((None, "missing"), ("", "missing"), ("nope", "bad")):
            with pytest.raises(Refused, match=reason) as info:
                check_token("expected-token", given)
            assert info.value.status == 403

    def test_matching_token_passes(self) -> None:
        """The session's own token is accepted."""
        check_token("expected-token", "expected-token")


class TestSessionInstance:
    """A session is valid only on the console instance (host:port) where it was opened."""

    def test_session_from_another_instance_is_none(self, store: UserStore) -> None:
        user = store.add("frank", ["viewer"], "h", now=NOW)
        token, _ = store.open_session(user, now=NOW, ttl=timedelta(hours=1), instance="127.0.0.1:8000")
        assert store.session(token, now=NOW, instance="127.0.0.1:8000") is not None
        for other in ("127.0.0.1:8001", "localhost:8000", ""):
            assert store.session(token, now=NOW, instance=other) is None

    def test_users_file_from_before_instances_is_migrated(self, tmp_path: Path) -> None:
        """An old sessions table gains the column; its sessions (bound to no instance) no longer open anything."""
        import sqlite3

        path = tmp_path / "old.db"
        conn = sqlite3.connect(path)
        conn.executescript(
            "CREATE TABLE users (name TEXT PRIMARY KEY, roles TEXT NOT NULL, password_hash TEXT NOT NULL,"
            " created_at TEXT NOT NULL);"
            "CREATE TABLE sessions (token_hash TEXT PRIMARY KEY, user_name TEXT NOT NULL, csrf_token TEXT NOT NULL,"
            " created_at TEXT NOT NULL, expires_at TEXT NOT NULL);"
        )
        conn.close()
        store = UserStore(path)
        user = store.add("gina", ["viewer"], "h", now=NOW)
        token, _ = store.open_session(user, now=NOW, ttl=timedelta(hours=1), instance="127.0.0.1:9000")
        assert store.session(token, now=NOW, instance="127.0.0.1:9000") is not None
        store.close()


class TestHostAllowlist:
    """Host header parsing and the allowlist (DNS rebinding)."""

    @pytest.mark.parametrize(
        ("value", "parsed"),
        [
            ("127.0.0.1:8000", ("127.0.0.1", 8000)),
            ("LOCALHOST", ("localhost", None)),
            ("[::1]:80", ("[::1]", 80)),
            ("[::1]", ("[::1]", None)),
            ("a.example:0", None),
            ("a.example:99999", None),
            ("a.example:8000x", None),
            ("user@127.0.0.1", None),
            ("127.0.0.1 :8000", None),
            ("[::1", None),
            ("", None),
        ],
    )
    def test_split_host(self, value: str, parsed: tuple[str, int | None] | None) -> None:
        assert split_host(value) == parsed

    def test_loopback_with_the_port_and_configured_names(self) -> None:
        hosts = HostAllowlist.of(8000, ["console.example", "ops.example:9443"])
        for ok in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "console.example", "console.example:8000",
                   "ops.example:9443"):  # fmt: skip
            assert hosts.allows(ok), ok
        for bad in ("127.0.0.1:8001", "localhost", "evil.example:8000", "console.example:8001", "ops.example",
                    "127.0.0.1.evil.example:8000", None, ""):  # fmt: skip
            assert not hosts.allows(bad), bad

    def test_bad_configured_name_is_one_line(self) -> None:
        with pytest.raises(ValueError, match="--allow-host 'a b'"):
            HostAllowlist.of(8000, ["a b"])

    def test_cookie_names_differ_by_port(self) -> None:
        assert cookie_suffix("127.0.0.1:8000") != cookie_suffix("127.0.0.1:8001")
        assert instance_of("LocalHost:8000") == "localhost:8000"


class TestThrottlePolicy:
    """The delay grows after the free failures, caps, locks at N, and is forgotten after a quiet spell."""

    def test_delay_grows_and_caps(self) -> None:
        policy = ThrottlePolicy()
        delays = [policy.delay(n).total_seconds() for n in range(1, 12)]
        assert delays[: policy.free_failures - 1] == [0.0] * (policy.free_failures - 1)
        assert delays == sorted(delays)
        assert max(delays) == policy.max_delay.total_seconds()

    def test_lockout_after_n_failures_per_key_kind(self) -> None:
        policy = ThrottlePolicy()
        record = None
        for _ in range(policy.user_lockout):
            record = policy.after_failure(record, "user:x", NOW)
        assert record is not None
        assert record.locked_until == NOW + policy.lockout
        assert policy.wait(record, NOW + timedelta(minutes=1)) == policy.lockout - timedelta(minutes=1)
        client = None
        for _ in range(policy.user_lockout):
            client = policy.after_failure(client, "client:127.0.0.1", NOW)
        assert client is not None
        assert client.locked_until is None

    def test_quiet_spell_forgets(self) -> None:
        policy = ThrottlePolicy()
        record = policy.after_failure(None, "user:x", NOW)
        later = NOW + policy.forget_after
        assert policy.after_failure(record, "user:x", later).failures == 1
