"""A configured secret never reaches the record: a provider that echoes the API key in its 401 body, a password
in the LLM base URL and in REDIS_URL — the canaries are found 0 times in the ledger file, the logs, every
report format, the audit package and `coalition doctor`, all driven through the CLI as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import PostgresServer
from llm_wire_server import WireServer

from coalition.ledger import EntryDraft, SqliteLedger

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
KEY_CANARY = "sk-canary-7f3a9c1e5b2d4e6f8a0b"
URL_CANARY = "pw-canary-31d7c0ffee"
REDIS_CANARY = "redis-canary-8e2f11aa"
QUERY_KEY_CANARY = "az-canary-5d0c9e"  # a gateway's key in the base URL's query


def _env(tmp_path: Path, server: WireServer) -> dict[str, str]:
    drop = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("COALITION_")}
    env.update(
        OPENAI_API_KEY=KEY_CANARY,
        OPENAI_BASE_URL=server.openai_base_url,
        COALITION_LLM="openai:gpt-4o-mini",
        COALITION_DATA_DIR=str(tmp_path / "data"),
        COALITION_LOG_LEVEL="debug",
        COALITION_LOG_FORMAT="json",
    )
    return env


def _cli(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([COALITION, *args], capture_output=True, timeout=300, env=env, cwd=cwd, check=False)


def _every_byte_under(root: Path) -> bytes:
    """The files' raw bytes, and for a zip also each member's uncompressed bytes."""
    out = b""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        out += data
        if path.suffix == ".zip":
            with zipfile.ZipFile(path) as zf:
                out += b"".join(zf.read(name) for name in zf.namelist())
    return out


def test_echoed_key_and_url_passwords_are_found_nowhere(tmp_path: Path) -> None:
    """Every model call gets a 401 whose body quotes the key; the run still completes on the engine's wording
    (the failures are recorded, redacted); then reports, audit and doctor (with passwords in URLs)."""
    with WireServer() as server:
        server.fail_next(401, times=100_000)
        env = _env(tmp_path, server)
        ledger = tmp_path / "data" / "ledger.db"
        ran = _cli(env, tmp_path, "run", "meter-outage", "--bus", "memory", "--ledger", str(ledger))
        assert ran.returncode == 0, ran.stderr.decode()[-2000:]
        echoed = [r for r in server.requests if KEY_CANARY in str(r["headers"])]
        assert echoed, "the provider was asked (and refused the key) at least once"
        outputs = [ran]
        out = tmp_path / "out"
        out.mkdir()
        for fmt in ("html", "md", "json", "csv"):
            done = _cli(env, tmp_path, "report", "--format", fmt, "--out", str(out / f"report.{fmt}"))
            assert done.returncode == 0, done.stderr.decode()
            outputs.append(done)
        packaged = _cli(env, tmp_path, "audit", "--out", str(out / "audit.zip"))
        assert packaged.returncode == 0, packaged.stderr.decode()
        outputs.append(packaged)
        listed = _cli(env, tmp_path, "ledger", "list", "--kind", "model_call", "--json", "--limit", "0")
        assert listed.returncode == 0
        assert b"authentication_error" in listed.stdout or b"AuthenticationError" in listed.stdout
        assert b"[redacted:OPENAI_API_KEY]" in listed.stdout  # recorded, and recorded without the key
        outputs.append(listed)
        doctor_env = {
            **env,
            "OPENAI_BASE_URL": server.openai_base_url.replace("http://", f"http://proxy:{URL_CANARY}@")
            + f"?api-version=1&api-key={QUERY_KEY_CANARY}",
            "REDIS_URL": f"redis://:{REDIS_CANARY}@127.0.0.1:1/0",
        }
        for flags in ((), ("--json",)):
            doctor = _cli(doctor_env, tmp_path, "doctor", "--bus", "redis", *flags)
            assert doctor.returncode in (0, 1), doctor.stderr.decode()
            outputs.append(doctor)
        assert b"proxy:[redacted]@127.0.0.1" in doctor.stdout  # where the URL points, without its password
    assert b"model_call" in ledger.read_bytes() or ledger.stat().st_size > 0
    record = _every_byte_under(tmp_path / "data") + _every_byte_under(out)
    printed = b"".join(o.stdout + o.stderr for o in outputs)
    for canary in (KEY_CANARY, URL_CANARY, REDIS_CANARY, QUERY_KEY_CANARY):
        assert record.count(canary.encode()) == 0, canary
        assert printed.count(canary.encode()) == 0, canary


def test_an_echoed_key_holding_a_quote_and_a_backslash_is_found_nowhere(tmp_path: Path) -> None:
    """JSON writes such a key escaped: neither its raw nor its escaped form is in the ledger file or the audit."""
    key = 'sk-canary-"quoted\\9d1e'
    with WireServer() as server:
        server.fail_next(401, times=100_000)
        env = {**_env(tmp_path, server), "OPENAI_API_KEY": key}
        ledger = tmp_path / "data" / "ledger.db"
        ran = _cli(env, tmp_path, "run", "meter-outage", "--bus", "memory", "--ledger", str(ledger))
        assert ran.returncode == 0, ran.stderr.decode()[-2000:]
        sent = [v for r in server.requests for v in r["headers"].values()]
        assert any(key in v for v in sent), "the provider refused the key at least once"
        packaged = _cli(env, tmp_path, "audit", "--out", str(tmp_path / "out" / "audit.zip"))
        assert packaged.returncode == 0, packaged.stderr.decode()
        listed = _cli(env, tmp_path, "ledger", "list", "--kind", "model_call", "--json", "--limit", "0")
        assert b"[redacted:OPENAI_API_KEY]" in listed.stdout  # recorded, and recorded without the key
    record = _every_byte_under(tmp_path / "data") + _every_byte_under(tmp_path / "out")
    printed = b"".join(o.stdout + o.stderr for o in (ran, packaged, listed))
    for form in (key.encode(), json.dumps(key)[1:-1].encode()):
        assert form not in record
        assert form not in printed


def test_a_package_of_an_old_ledger_holding_the_key_leaves_it_out_in_every_escaping(tmp_path: Path) -> None:
    """A ledger recorded before the key was configured holds it as it was written. Its audit package, made once the
    key is configured, holds it in none of its forms: raw, JSON-escaped in ledger.jsonl, and escaped twice in
    proofs.jsonl, where each entry's stored bytes (JSON) are a JSON string (the proofs then no longer verify: an
    entry that held a secret is no longer the entry its hash covers)."""
    key = 'sk-canary-"quoted\\9d1e-old'
    data = tmp_path / "data"
    ledger_path = data / "ledger.db"
    with SqliteLedger(ledger_path) as ledger:  # recorded when nothing knew the key: kept as written
        ledger.append(
            [
                EntryDraft(
                    run_id="old-run",
                    sim_time=datetime(2025, 3, 1, tzinfo=UTC),
                    actor="agent:finance",
                    actor_kind="agent",
                    kind="model_call",
                    subject="call-1",
                    payload={"error": f"401: invalid key {key}"},
                    rationale=f"the provider refused {key}",
                )
            ]
        )
    assert json.dumps(key)[1:-1].encode() in ledger_path.read_bytes()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_")}
    env.update(COALITION_DATA_DIR=str(data), COALITION_STATE_DIR=str(tmp_path / "state"))
    signed = _cli(env, tmp_path, "ledger", "checkpoint", "--ledger", str(ledger_path))
    assert signed.returncode == 0, signed.stderr.decode()
    out = tmp_path / "out"
    packaged = _cli({**env, "OPENAI_API_KEY": key}, tmp_path, "audit", "--ledger", str(ledger_path), "--out", str(out))
    assert packaged.returncode in (0, 1), packaged.stderr.decode()
    assert (out / "proofs.jsonl").is_file()
    once = json.dumps(key)[1:-1]
    for name in sorted(p.name for p in out.iterdir()):
        content = (out / name).read_bytes()
        for form in (key, once, json.dumps(once)[1:-1]):
            assert form.encode() not in content, (name, form)
    assert b"[redacted:OPENAI_API_KEY]" in (out / "proofs.jsonl").read_bytes()


def test_a_password_in_the_ledger_urls_query_is_found_nowhere(tmp_path: Path, postgres: PostgresServer) -> None:
    """libpq takes a password from the URL's query (`postgresql://app@db/x?password=…`) as well as before the `@`.
    Such a password was printed by `coalition run` ("ledger: …"), `doctor` and the connection errors, and
    `pg-setup` copied the administrator's into the URL it hands the application. Now: found 0 times in what any
    command prints or writes — pg-setup, a run, doctor (table and JSON), verify, reports, audit, a refused
    connection."""
    admin_canary, app_canary = "pg-admin-canary-0b7e51", "pg-app-canary-4c9d23"
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
    env.update(
        COALITION_DATA_DIR=str(tmp_path / "data"),
        COALITION_STATE_DIR=str(tmp_path / "state"),
        COALITION_LOG_LEVEL="debug",
        COALITION_LOG_FORMAT="json",
    )
    schema = postgres.new_schema_name()
    admin = f"{postgres.admin_url}{'&' if '?' in postgres.admin_url else '?'}password={admin_canary}"
    setup = _cli(
        env,
        tmp_path,
        *("ledger", "pg-setup", admin, "--schema", schema),
        *("--owner-role", postgres.owner_role, "--app-role", postgres.app_role),
    )
    assert setup.returncode == 0, setup.stderr.decode()
    handed = setup.stdout.decode().split("COALITION_LEDGER=", 1)[1].split()[0]
    assert f"schema={schema}" in handed
    assert postgres.app_role in handed
    env["COALITION_LEDGER"] = f"{handed}&password={app_canary}"  # the local server trusts: any password connects
    ran = _cli(env, tmp_path, "run", "price-spike", "--bus", "memory")
    assert ran.returncode == 0, ran.stderr.decode()[-2000:]
    outputs = [setup, ran]
    out = tmp_path / "out"
    out.mkdir()
    for args in (
        ("doctor", "--bus", "memory"),
        ("doctor", "--bus", "memory", "--json"),
        ("ledger", "verify"),
        ("report", "--format", "md", "--out", str(out / "report.md")),
        ("report", "--format", "json", "--out", str(out / "report.json")),
        ("audit", "--out", str(out / "audit.zip")),
    ):
        done = _cli(env, tmp_path, *args)
        assert done.returncode == 0, (args, done.stdout.decode()[-2000:], done.stderr.decode()[-2000:])
        outputs.append(done)
    unreachable = {**env, "COALITION_LEDGER": f"postgresql://app@127.0.0.1:1/x?password={app_canary}"}
    refused = _cli(unreachable, tmp_path, "ledger", "verify")
    assert refused.returncode != 0
    assert b"127.0.0.1:1" in refused.stdout + refused.stderr
    outputs.append(refused)
    record = _every_byte_under(tmp_path / "data") + _every_byte_under(out)
    printed = b"".join(o.stdout + o.stderr for o in outputs)
    for canary in (admin_canary, app_canary):
        assert record.count(canary.encode()) == 0, canary
        assert printed.count(canary.encode()) == 0, [
            o.args[1:3] for o in outputs if canary.encode() in o.stdout + o.stderr
        ]
