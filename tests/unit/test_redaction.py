"""The one redaction every writer applies: configured secrets and URL passwords never reach the record, and text
without a secret is left byte for byte as it was (so ledgers without secrets keep their content and digests)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st

from coalition.bus.redaction import Redactor, install, redactor, secrets_in
from coalition.ledger.entry import EntryDraft, seal
from coalition.ledger.sqlite import SqliteLedger
from coalition.logs import redact_secrets
from coalition.scenarios.audit import write_audit

CANARY = "sk-canary-0123456789abcdef"
SECRETS = {"OPENAI_API_KEY": CANARY}
SHORT = {"DB_PASSWORD": "admin", "PIN_SECRET": "4711", "ODD_TOKEN": "p@s$"}


@pytest.fixture
def installed() -> Iterator[Redactor]:
    yield install(SECRETS)
    install({})


def _draft(text: str) -> EntryDraft:
    return EntryDraft(
        run_id="r",
        sim_time=datetime(2025, 1, 1, tzinfo=UTC),
        actor="agent:ops",
        actor_kind="agent",
        kind="model_call",
        subject="call-1",
        payload={"error": f"AuthenticationError: Incorrect API key provided: {text}", "nested": [{"k": text}]},
        rationale=f"the provider refused {text}",
    )


class TestRedactor:
    """What counts as a secret, and what the mask looks like."""

    def test_secret_named_variables_and_url_passwords(self) -> None:
        """API keys, tokens and passwords by name; the password (and its decoded form) of any URL value."""
        found = secrets_in(
            {
                "OPENAI_API_KEY": "sk-1",
                "GITHUB_TOKEN": "ghp",
                "REDIS_URL": "redis://:p%40ss-word-1@h:6379/0",
                "OPENAI_BASE_URL": "https://u:topsecret9@proxy/v1",
                "HOME": "/home/x",
                "EMPTY_API_KEY": "",
            }
        )
        assert found == {
            "OPENAI_API_KEY": "sk-1",
            "GITHUB_TOKEN": "ghp",
            "REDIS_URL:password": "p%40ss-word-1",
            "REDIS_URL:password-decoded": "p@ss-word-1",
            "OPENAI_BASE_URL:password": "topsecret9",
        }

    def test_masks_name_the_variable_never_the_value(self) -> None:
        r = Redactor({"OPENAI_API_KEY": CANARY, "SHORT_TOKEN": "abc"})
        assert r.text(f"key {CANARY}!") == "key [redacted:OPENAI_API_KEY]!"
        assert r.text("abc is short, abcd is another word") == "[redacted:SHORT_TOKEN] is short, abcd is another word"
        assert r.names == ("OPENAI_API_KEY", "SHORT_TOKEN")


class TestShortSecrets:
    """A secret shorter than 8 characters is still a secret: it goes wherever it stands as a whole token (not
    touching a letter, digit or '_'), and stays inside a longer word, which it would otherwise tear apart."""

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("login admin failed", "login [redacted:DB_PASSWORD] failed"),
            ("password=admin;", "password=[redacted:DB_PASSWORD];"),
            ('{"pw": "admin"}', '{"pw": "[redacted:DB_PASSWORD]"}'),
            ("(admin)\nadmin", "([redacted:DB_PASSWORD])\n[redacted:DB_PASSWORD]"),
            ("pin 4711, not 47110", "pin [redacted:PIN_SECRET], not 47110"),
            ("odd p@s$ echoed", "odd [redacted:ODD_TOKEN] echoed"),
            ("administrator admin_x xadmin ädmin", "administrator admin_x xadmin ädmin"),
        ],
    )
    def test_whole_tokens_go_and_longer_words_stay(self, text: str, expected: str) -> None:
        assert Redactor(SHORT).text(text) == expected

    @given(st.sampled_from(["", " ", ":", "=", '"', "(", "\n", "/", "-", "."]), st.text(max_size=30))
    def test_a_short_secret_never_survives_as_a_token(self, edge: str, rest: str) -> None:
        r = Redactor(SHORT)
        redacted = r.text(f"{rest} {edge}admin{edge} {rest}")
        assert redacted == f"{r.text(rest)} {edge}[redacted:DB_PASSWORD]{edge} {r.text(rest)}"

    def test_a_provider_error_echoing_a_short_key_is_sealed_without_it(self, tmp_path: Path) -> None:
        install({"TINY_API_KEY": "k-42"})
        try:
            assert redactor().needed(b'{"error": "Incorrect API key provided: k-42"}')
            with SqliteLedger(tmp_path / "l.db", create=True) as ledger:
                (entry,) = ledger.append([_draft("k-42")])
                assert "k-42" not in json.dumps(entry.model_dump(mode="json"))
                assert entry.rationale == "the provider refused [redacted:TINY_API_KEY]"
                assert ledger.verify().ok
        finally:
            install({})

    def test_any_url_password_is_masked_configured_or_not(self) -> None:
        r = Redactor({})
        assert r.text("dial redis://:hunter2@10.0.0.1:6379/0 now") == "dial redis://:[redacted]@10.0.0.1:6379/0 now"
        assert r.text("https://bob:pw@x/y and mailto:bob@x") == "https://bob:[redacted]@x/y and mailto:bob@x"
        assert r.needed(b'{"u": "postgres://a:b@h/db"}')
        assert not r.needed(b'{"u": "https://example.org/a@b"}')

    @given(st.text(max_size=200))
    def test_text_without_secrets_is_unchanged(self, text: str) -> None:
        r = Redactor(SECRETS)
        if CANARY not in text and "://" not in text:
            assert r.text(text) == text

    @given(st.text(max_size=50), st.text(max_size=50))
    def test_a_secret_never_survives_whatever_surrounds_it(self, before: str, after: str) -> None:
        assert CANARY not in Redactor(SECRETS).text(before + CANARY + after)


class TestPasswordsInAQuery:
    """A password can stand in a URL's query too: libpq reads `postgresql://app@db/x?password=…` (and
    `sslpassword=`), redis-py `redis://host/0?password=…`. It is a URL password like the one before the `@`."""

    LEDGER = "postgresql://app@db.example:5432/x?password=q-canary-5e1f77&schema=main"

    def test_a_configured_urls_query_password_is_a_secret(self) -> None:
        found = secrets_in(
            {
                "COALITION_LEDGER": self.LEDGER,
                "REDIS_URL": "redis://10.0.0.1:6379/0?sslpassword=x&password=r%2Fcanary-9",
                "HOME": "/home/x?password=",
            }
        )
        assert found == {
            "COALITION_LEDGER:query-password": "q-canary-5e1f77",
            "REDIS_URL:query-sslpassword": "x",
            "REDIS_URL:query-password": "r/canary-9",
            "REDIS_URL:query-password-raw": "r%2Fcanary-9",
        }
        r = Redactor(found)
        echoed = 'FATAL: password authentication failed: "q-canary-5e1f77" (r/canary-9)'
        assert "canary" not in r.text(echoed)

    def test_a_configured_urls_query_key_or_token_is_a_secret(self) -> None:
        """OPENAI_BASE_URL=https://proxy/v1?api-key=… (an Azure-style gateway): doctor printed the key."""
        found = secrets_in(
            {
                "OPENAI_BASE_URL": "https://proxy.example/v1?api-version=2024-06-01&api-key=az-canary-77d1",
                "ANTHROPIC_BASE_URL": "https://gw.example/?key=g-canary-1&access_token=t-canary-2&region=eu",
            }
        )
        assert found == {
            "OPENAI_BASE_URL:query-api-key": "az-canary-77d1",
            "ANTHROPIC_BASE_URL:query-key": "g-canary-1",
            "ANTHROPIC_BASE_URL:query-access_token": "t-canary-2",
        }

    def test_any_urls_query_password_is_masked_configured_or_not(self) -> None:
        r = Redactor({})
        assert r.text(f"ledger: {self.LEDGER}") == (
            "ledger: postgresql://app@db.example:5432/x?password=[redacted]&schema=main"
        )
        assert r.text("redis://h/0?db=1&sslpassword=k3y now") == "redis://h/0?db=1&sslpassword=[redacted] now"
        assert r.needed(orjson.dumps({"u": self.LEDGER}))
        assert not r.needed(b'{"u": "postgresql://app@db/x?schema=main", "note": "password reset"}')

    def test_urls_shown_to_people_leave_it_out(self) -> None:
        """What the CLI prints for a ledger or a bus, and the URL pg-setup hands the application."""
        from coalition.bootstrap import describe_ledger, memory_key, without_credentials
        from coalition.ledger.postgres import app_url, display_url

        for shown in (
            display_url(self.LEDGER),
            describe_ledger(self.LEDGER),
            memory_key(self.LEDGER),
            without_credentials("redis://:a@h:6379/0?password=q-canary-5e1f77"),
            app_url("postgresql://postgres@db/x?password=q-canary-5e1f77&sslmode=require", app_role="app", schema="s"),
        ):
            assert "canary" not in shown, shown
            assert "password" not in shown, shown
        assert display_url(self.LEDGER) == "postgresql://app@db.example:5432/x?schema=main"
        assert app_url("postgresql://postgres:pw@db/x?sslpassword=k&sslmode=require", app_role="app", schema="s") == (
            "postgresql://app@db/x?sslmode=require&schema=s"
        )

    def test_a_password_parameter_spelled_with_percent_escapes_is_left_out_too(self) -> None:
        """libpq and redis-py decode a query parameter's name before reading it: `?pass%77ord=` is `?password=`.
        pg-setup handed the administrator's password to the application in such a URL (as `password=`, decoded),
        and `ledger verify`, doctor and every connection error printed it as written."""
        from coalition.bootstrap import without_credentials
        from coalition.ledger.postgres import app_url, display_url

        for spelled in ("pass%77ord", "%70assword", "ssl%70assword"):
            url = f"postgresql://postgres@db/x?sslmode=require&{spelled}=q-canary-5e1f77"
            for shown in (
                display_url(url),
                app_url(url, app_role="app", schema="s"),
                without_credentials(url.replace("postgresql", "redis")),
            ):
                assert "canary" not in shown, shown
        assert app_url("postgresql://postgres@db/x?pass%77ord=k&sslmode=require", app_role="app", schema="s") == (
            "postgresql://app@db/x?sslmode=require&schema=s"
        )


class TestWriters:
    """The ledger's append path and the log processor apply it; so does the reference `seal`."""

    def test_ledger_seals_the_redacted_entry_and_still_verifies(self, tmp_path: Path, installed: Redactor) -> None:
        with SqliteLedger(tmp_path / "l.db", create=True) as ledger:
            (entry,) = ledger.append([_draft(CANARY)])
            assert CANARY not in entry.rationale
            assert entry.payload["nested"] == [{"k": "[redacted:OPENAI_API_KEY]"}]
            assert ledger.verify().ok
            assert ledger.get(1) == entry
        raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
        assert CANARY.encode() not in raw

    def test_reference_seal_agrees_with_the_ledger(self, tmp_path: Path, installed: Redactor) -> None:
        sealed = seal(_draft(CANARY), seq=1, wall_time=datetime(2025, 1, 1, tzinfo=UTC), prev_hash="0" * 64)
        assert CANARY not in json.dumps(sealed.model_dump(mode="json"))

    def test_an_entry_without_secrets_hashes_as_before(self, tmp_path: Path, installed: Redactor) -> None:
        """Redaction changes nothing where there is nothing to redact: same hash as with no secret configured."""
        draft = _draft("a key that is not the canary")
        when = datetime(2025, 1, 1, tzinfo=UTC)
        with_secret = seal(draft, seq=1, wall_time=when, prev_hash="0" * 64)
        install({})
        assert seal(draft, seq=1, wall_time=when, prev_hash="0" * 64).hash == with_secret.hash

    def test_log_lines_and_exception_text(self, installed: Redactor) -> None:
        event = redact_secrets(
            None, "error", {"event": f"call failed {CANARY}", "exc": ValueError(CANARY), "n": 3, "url": "x"}
        )
        assert event == {
            "event": "call failed [redacted:OPENAI_API_KEY]",
            "exc": "[redacted:OPENAI_API_KEY]",
            "n": 3,
            "url": "x",
        }
        assert redactor() is installed
        rendered = structlog.processors.JSONRenderer()(None, "error", event)
        assert CANARY not in str(rendered)


class TestEscapedSecrets:
    """A secret holding a quote, a backslash or a control character is written escaped in JSON (an entry's canonical
    bytes, an audit package's files): it is found and redacted there too, long or short."""

    @pytest.mark.parametrize("secret", ['abc"def12345', "abc\\def12345", "abc\tdef12345", 'pw"1'])
    def test_an_escaped_secret_is_sealed_without_it(self, tmp_path: Path, secret: str) -> None:
        install({"DB_PASSWORD": secret})
        try:
            with SqliteLedger(tmp_path / "l.db", create=True) as ledger:
                (entry,) = ledger.append([_draft(secret)])
                assert secret not in entry.rationale
                assert "[redacted:DB_PASSWORD]" in entry.rationale
                assert ledger.verify().ok
            raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
            assert secret.encode() not in raw
            assert json.dumps(secret)[1:-1].encode() not in raw
        finally:
            install({})

    @pytest.mark.parametrize("before", [" ", "\n", "\t", "\x01", '"', "\\"])
    def test_a_short_secret_after_an_escape_is_needed(self, before: str) -> None:
        r = Redactor(SHORT)
        body = json.dumps({"rationale": f"refused{before}admin"}).encode()
        assert r.needed(body)
        assert "admin" not in r.value(json.loads(body))["rationale"]

    def test_json_with_an_escaped_secret_is_needed_and_its_values_redacted(self) -> None:
        r = Redactor({"DB_PASSWORD": 'abc"def12345', "PIN_SECRET": "p\\1"})
        for secret in ('abc"def12345', "p\\1"):
            body = json.dumps({"k": [f"key {secret} echoed"]}).encode()
            assert r.needed(body)
            assert secret not in json.dumps(r.value(json.loads(body)))
        assert not r.needed(json.dumps({"k": "abcdef12345 p1"}).encode())

    @pytest.mark.parametrize("secret", ['abc"def12345', 'pw"1'])
    def test_an_audit_package_never_holds_an_escaped_secret(self, tmp_path: Path, secret: str) -> None:
        """A ledger written before the secret was configured holds it; the package written now does not, in any
        file, and its JSON files still parse."""
        with SqliteLedger(tmp_path / "l.db", create=True) as ledger:
            ledger.append([_draft(secret)])
            install({"DB_PASSWORD": secret})
            try:
                write_audit(ledger, "r", tmp_path / "audit")
            finally:
                install({})
        files = {p.name: p.read_bytes() for p in (tmp_path / "audit").iterdir()}
        for data in files.values():
            assert secret.encode() not in data
            assert json.dumps(secret)[1:-1].encode() not in data
        (line,) = files["ledger.jsonl"].splitlines()
        assert json.loads(line)["rationale"] == "the provider refused [redacted:DB_PASSWORD]"

    @pytest.mark.parametrize("secret", ['abc"def12345', "abc\\def12345", 'pw"1', "p\\1"])
    def test_json_text_inside_a_json_string_is_needed_and_redacted(self, secret: str) -> None:
        """An entry's stored bytes as a JSON string (an audit package's proofs.jsonl line): the secret is escaped
        twice in the file and once in the string's value; both are found, and nothing of it is left."""
        r = Redactor({"DB_PASSWORD": secret})
        inner = json.dumps({"rationale": f"refused {secret} again"}, separators=(",", ":"))
        line = json.dumps({"entry": inner, "seq": 1}).encode()
        assert r.needed(line)
        redacted = json.dumps(r.value(json.loads(line)))
        for form in (secret, json.dumps(secret)[1:-1], json.dumps(json.dumps(secret)[1:-1])[1:-1]):
            assert form not in redacted
        assert json.loads(json.loads(redacted)["entry"]) == {"rationale": "refused [redacted:DB_PASSWORD] again"}
