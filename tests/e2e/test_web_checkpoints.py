"""The console remembers the newest checkpoint it verified, shows it on the overview with when and against which
witness, signs checkpoints after human decisions taken through it, and refuses a ledger rolled back behind it."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from coalition.bootstrap import attach_notary, ledger_trust
from coalition.bus.clock import SimulatedClock
from coalition.ledger import EntryDraft, LedgerError, SqliteLedger
from coalition.settings import Settings
from coalition.web.app import create_app
from coalition.web.passwords import hash_password

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
PASSWORD = "correct horse battery"


def draft(n: int, kind: str = "verdict") -> EntryDraft:
    return EntryDraft(
        run_id="run-w",
        sim_time=T0 + timedelta(minutes=n),
        actor="human:carol" if kind == "approval" else "governance",
        actor_kind="human" if kind == "approval" else "governance",
        kind=kind,  # type: ignore[arg-type]
        subject=f"p-{n}",
        rationale=f"entry {n}",
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", state_dir=tmp_path / "state")


def grow(settings: Settings, upto: int) -> None:
    with SqliteLedger(settings.ledger_path, synchronous="NORMAL") as ledger:
        notary = attach_notary(ledger, ledger_trust(settings, ledger, client="cli"))
        ledger.append([draft(n) for n in range(ledger.head()[0] + 1, upto + 1)])
        notary.checkpoint()


def console_client(settings: Settings, tmp_path: Path) -> TestClient:
    app = create_app(settings.ledger_path, tmp_path / "users.db", clock=SimulatedClock(T0), settings=settings)
    app.state.console.users.add("vera", ["viewer"], hash_password(PASSWORD), now=T0)
    return TestClient(app, base_url="http://127.0.0.1")


def login(client: TestClient) -> str:
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None
    done = client.post("/login", data={"name": "vera", "password": PASSWORD, "csrf_token": token.group(1), "next": "/"})
    assert done.status_code == 200, done.text
    csrf = re.search(r'"X-CSRF-Token": "([^"]+)"', done.text)
    assert csrf is not None
    return csrf.group(1)


@pytest.fixture
def client(settings: Settings, tmp_path: Path) -> Iterator[TestClient]:
    grow(settings, 300)
    with console_client(settings, tmp_path) as test_client:
        yield test_client
    test_client.app.state.console.close()  # type: ignore[attr-defined]


def test_overview_shows_the_newest_checkpoint_verified_and_its_witness(client: TestClient, settings: Settings) -> None:
    csrf = login(client)
    assert "No signed checkpoint verified by this console yet." in client.get("/").text
    assert client.post("/ledger/verify", data={"csrf_token": csrf}).status_code == 200
    page = client.get("/").text
    assert "Newest checkpoint: 300 entries, signed by the ledger key; verified 2026-01-01T12:00:00+00:00" in page
    assert f"against the witness directory {settings.witness_path}" in page
    verify = client.get("/ledger/verify").text
    assert "OK — 300 entries" in verify


def test_a_human_decision_through_the_console_is_checkpointed(client: TestClient, settings: Settings) -> None:
    ledger = client.app.state.console.ledger  # type: ignore[attr-defined]
    witness = next(settings.witness_path.iterdir())
    before = len(list(witness.iterdir()))
    ledger.append([draft(301, kind="approval")])
    assert len(list(witness.iterdir())) == before + 1
    assert sorted(witness.iterdir())[-1].name.startswith("00000000000000000301-")


def test_a_ledger_rolled_back_behind_the_console_is_refused(settings: Settings, tmp_path: Path) -> None:
    grow(settings, 300)
    backup = tmp_path / "backup.db"
    shutil.copy(settings.ledger_path, backup)
    grow(settings, 420)
    with console_client(settings, tmp_path) as seen:  # the console sees (and verifies) 420
        csrf = login(seen)
        seen.post("/ledger/verify", data={"csrf_token": csrf})
    seen.app.state.console.close()  # type: ignore[attr-defined]
    shutil.copy(backup, settings.ledger_path)
    shutil.rmtree(settings.witness_path)  # even with the witness gone, the console's memory remembers
    with pytest.raises(LedgerError, match=r"refusing the ledger at .*: rolled back to seq 300: the console's memory"):
        create_app(settings.ledger_path, tmp_path / "users.db", settings=settings)
