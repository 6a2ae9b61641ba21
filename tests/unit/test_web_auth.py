"""Console identity pieces: the users/sessions store, argon2 passwords, CSRF checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from coalition.web.csrf import check_token
from coalition.web.errors import Refused, UserError
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
