"""Secrets never reach the record: the one redaction every writer applies (ledger, logs, reports, audit, doctor).

A secret is a configured value — an API key, a token, a password, the password inside a URL (REDIS_URL,
OPENAI_BASE_URL, …) — wherever it turns up: in a provider's error body that echoes the key, in a URL a
message quotes, in a setting a report prints. It is replaced by `[redacted:<NAME>]` (the variable it came
from, never the value), and any `scheme://user:password@` in any text loses its password, configured or not.

The process has one redactor: built from the environment at first use, replaced by the command line once it
has read the settings (`.env` included) with `install`. Redacting never fails and never changes text that
holds no secret, so the ledger of a run without secrets is byte-identical with or without it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import orjson

# Variable names whose value is a secret as a whole.
SECRET_NAME = re.compile(r"(API_?KEY|TOKEN|SECRET|PASSWORD|PASSWD)$", re.IGNORECASE)
# The password part of any URL's user information: scheme://user:PASSWORD@host.
URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/@:\"'<>]*:)(?P<password>[^\s/@\"'<>]+)(?=@)")
URL_PASSWORD_BYTES = re.compile(URL_PASSWORD.pattern.encode())
# A password can stand in a URL's query too: libpq reads postgresql://app@db/x?password=… (and sslpassword=, the
# client key's), redis-py redis://host/0?password=…. Masked wherever such a parameter follows a '?' or '&'.
QUERY_SECRET_KEYS = frozenset({"password", "sslpassword"})
QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:ssl)?password=)(?P<password>[^\s&#\"'<>]+)")
QUERY_PASSWORD_BYTES = re.compile(QUERY_PASSWORD.pattern.encode())
# A secret at least this long is replaced wherever it appears, even inside a longer word. A shorter one is still a
# secret, but as a substring it would tear ordinary words apart (a password "admin" inside "administrator"):
# it is replaced wherever it stands as a whole token, i.e. not touching a letter, digit or "_" on either side
# ("admin", "admin:", "(admin)" go; "administrator" stays), and inside URLs by URL_PASSWORD as any password is.
MIN_SECRET_LENGTH = 8
# In JSON bytes (an entry's canonical bytes) a short secret may follow an escape ending in a letter or digit: "\nadmin"
# there is "admin" after a newline, a token's edge, though "n" precedes it in the bytes.
_BYTES_ESCAPE_BEFORE = rb"(?:\\[bfnrt]|\\u[0-9a-fA-F]{4})"
MASK = "[redacted:{name}]"
URL_MASK = "[redacted]"


def secrets_in(environ: Mapping[str, str | None]) -> dict[str, str]:
    """The secret values a set of variables holds, by variable name: secret-named variables as a whole, and the
    password of any URL-valued variable (REDIS_URL=redis://:pw@host → pw, and its URL-decoded form; one in its query,
    COALITION_LEDGER=postgresql://app@db/x?password=pw → pw, and its form as written), and any other secret its query
    holds (OPENAI_BASE_URL=https://proxy/v1?api-key=k → k)."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if not value:
            continue
        if SECRET_NAME.search(name):
            found[name] = value
        if "://" in value and "@" in value:
            try:
                password = urlsplit(value.strip()).password
            except ValueError:
                password = None
            if password:
                found[f"{name}:password"] = password
                decoded = unquote(password)
                if decoded != password:
                    found[f"{name}:password-decoded"] = decoded
        if "://" in value and "?" in value:
            found.update(_query_secrets(name, value))
    return found


def _secret_parameter(key: str) -> bool:
    """Whether a query parameter of a configured URL holds a secret: a password (libpq's, redis-py's) or one named
    as a secret variable is (`api-key`, `api_key`, `access_token`, `client_secret`), or Google's `key`."""
    return key in QUERY_SECRET_KEYS or key == "key" or SECRET_NAME.search(key.replace("-", "_")) is not None


def _query_secrets(name: str, url: str) -> dict[str, str]:
    """The secrets in a configured URL's query (decoded, and as written where that differs), by variable and
    parameter: OPENAI_BASE_URL=https://proxy/v1?api-key=… holds an API key as surely as OPENAI_API_KEY does."""
    try:
        query = urlsplit(url.strip()).query
    except ValueError:
        return {}
    found: dict[str, str] = {}
    for part in query.split("&"):
        key, _, raw = part.partition("=")
        if _secret_parameter(unquote(key)) and raw:
            decoded = unquote(raw)
            found[f"{name}:query-{unquote(key)}"] = decoded
            if raw != decoded:
                found[f"{name}:query-{unquote(key)}-raw"] = raw
    return found


def without_query_secrets(url: str) -> str:
    """The URL without the passwords its query may hold (`?password=`, `&sslpassword=`): for URLs shown to people
    or handed on, as the password before the `@` is left out of them."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    given = parts.query.split("&")
    # by the parameter's decoded name, as libpq and redis-py read it: `pass%77ord=` is a password too
    kept = [part for part in given if unquote(part.partition("=")[0]) not in QUERY_SECRET_KEYS]
    if len(kept) == len(given):
        return url
    return urlunsplit(parts._replace(query="&".join(kept)))


class Redactor:
    """Replaces every configured secret (longest first) and every URL password in text, bytes or JSON values."""

    def __init__(self, secrets: Mapping[str, str]) -> None:
        usable = {name: value for name, value in secrets.items() if value}
        ordered = sorted(usable.items(), key=lambda item: (-len(item[1]), item[0]))
        long = [(value, MASK.format(name=name)) for name, value in ordered if len(value) >= MIN_SECRET_LENGTH]
        # in JSON a secret holding '"', '\\' or a control character is written escaped, and escaped again where JSON
        # text is itself a JSON string (an entry's stored bytes in an audit package's proofs.jsonl): every form, in
        # text (a JSON string's value holds the once-escaped form) as in bytes
        self._secrets: tuple[tuple[str, str], ...] = tuple(
            (form.decode(), mask) for value, mask in long for form in _forms(value)
        )
        self._encoded = tuple(dict.fromkeys(form for value, _ in long for form in _forms(value)))
        short = [(value, MASK.format(name=name)) for name, value in ordered if len(value) < MIN_SECRET_LENGTH]
        short_forms = [(form.decode(), mask) for value, mask in short for form in _forms(value)]
        self._short_masks = dict(reversed(short_forms))  # a value two variables share is masked with the first name
        longest_first = sorted(short_forms, key=lambda item: -len(item[0]))
        alternatives = "|".join(re.escape(form) for form, _ in longest_first)
        self._short = re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)") if short else None
        # bytes hold UTF-8: only ASCII word characters count there, so this may say yes where `text` changes nothing
        self._short_encoded = tuple(dict.fromkeys(form for value, _ in short for form in _forms(value)))
        forms = b"|".join(re.escape(form) for form in self._short_encoded)
        # one regex for a token's ordinary edges and one for an escape before it: two literal-led searches, where one
        # regex with the edges as alternatives scans every byte (2.5 times slower on a 1 KB entry)
        self._short_bytes = (
            (
                re.compile(rb"(?<!\w)(?:" + forms + rb")(?!\w)", re.ASCII),
                re.compile(_BYTES_ESCAPE_BEFORE + rb"(?:" + forms + rb")(?!\w)", re.ASCII),
            )
            if short
            else None
        )
        self.names: tuple[str, ...] = tuple(sorted(usable))

    def text(self, text: str) -> str:
        for value, mask in self._secrets:
            if value in text:
                text = text.replace(value, mask)
        if self._short is not None:
            text = self._short.sub(lambda m: self._short_masks[m[0]], text)
        if "://" in text and "@" in text:
            text = URL_PASSWORD.sub(lambda m: m["head"] + URL_MASK, text)
        if "password=" in text:
            text = QUERY_PASSWORD.sub(lambda m: m["head"] + URL_MASK, text)
        return text

    def needed(self, data: bytes) -> bool:
        """Whether `data` (e.g. an entry's canonical bytes) holds anything to redact: the fast path of writers."""
        if self._encoded and any(value in data for value in self._encoded):
            return True
        # a substring search first (memchr-fast): the regexes only decide whether a short secret there is a token
        if (
            self._short_bytes is not None
            and any(form in data for form in self._short_encoded)
            and any(pattern.search(data) is not None for pattern in self._short_bytes)
        ):
            return True
        # "@" first: one memchr, where finding "://" in JSON full of ':' compares at every colon (~1 µs a 1 KB entry)
        if b"@" in data and b"://" in data and URL_PASSWORD_BYTES.search(data) is not None:
            return True
        return b"password=" in data and QUERY_PASSWORD_BYTES.search(data) is not None

    def value(self, value: Any) -> Any:
        """A JSON-like value with every string (keys included) redacted; other values unchanged."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def lines(self, lines: Iterable[str]) -> list[str]:
        return [self.text(line) for line in lines]


def _forms(secret: str) -> tuple[bytes, ...]:
    """The secret's UTF-8 bytes, and its JSON-escaped forms when they differ (a quote, a backslash, a control
    character): how it reads in canonical JSON bytes or a JSON file, and escaped twice in JSON text held in a JSON
    string."""
    raw = secret.encode()
    once = orjson.dumps(secret)[1:-1]
    twice = orjson.dumps(once.decode())[1:-1]
    return tuple(dict.fromkeys((raw, once, twice)))


_process: dict[str, Redactor] = {}  # the one redactor of this process, under "current"


def install(secrets: Mapping[str, str]) -> Redactor:
    """Make these secrets (with the environment's) the process's redactor; returns it."""
    _process["current"] = Redactor({**secrets_in(os.environ), **secrets})
    return _process["current"]


def redactor() -> Redactor:
    """The process's redactor (the environment's secrets until `install` adds the settings')."""
    current = _process.get("current")
    if current is None:
        current = _process["current"] = Redactor(secrets_in(os.environ))
    return current


def redact(text: str) -> str:
    """`text` with every known secret and URL password replaced."""
    return redactor().text(text)
