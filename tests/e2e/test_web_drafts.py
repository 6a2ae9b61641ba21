"""The console on an assistive draft: helios-launch with finance assistive, two days, stopped before its end; the
inbox offers Adopt / Amend / Drop on the drafts, an amendment is recorded with the signed decision, and a bad one
is refused (400) with nothing recorded."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from test_web_routes import PASSWORD_HASH, RUN, T0, Console, record_open_run

from coalition.bus.clock import SimulatedClock
from coalition.governance.policy import default_policy, parse_policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.sqlite import SqliteLedger
from coalition.web.app import create_app

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def drafts_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("drafts") / "ledger.db"
    lanes = {"finance": {"lane": "assistive"}}
    record_open_run(path, parse_policy({**default_policy().document, "lanes": lanes}, source="finance assistive"))
    return path


@pytest.fixture
def console(drafts_ledger: Path, tmp_path: Path) -> Iterator[Console]:
    ledger_path = tmp_path / "ledger.db"
    shutil.copy(drafts_ledger, ledger_path)
    shutil.copytree(drafts_ledger.parent / "keys", tmp_path / "keys")
    clock = SimulatedClock(T0)
    app = create_app(ledger_path, tmp_path / "users.db", clock=clock, session_ttl=timedelta(minutes=30))
    for name in ("carol", "dave"):
        app.state.console.users.add(name, ["approver"], PASSWORD_HASH, now=T0)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield Console(client, clock, ledger_path)


def test_the_inbox_offers_adopt_amend_drop_and_records_the_amendment(console: Console) -> None:
    drafts = console.pending()
    assert len(drafts) == 2  # the two market entries, drafted by finance's model
    csrf = console.login("carol")
    page = console.client.get("/approvals").text
    assert page.count('name="amend"') == 2
    assert "Adopt as carol" in page
    assert "draft_review" in page
    response = console.decide(csrf, drafts[0], reason="a smaller first step", amend='{"investment_usd": 200000}')
    assert response.status_code == 303, response.text
    with SqliteLedger(console.ledger_path, create=False) as ledger:
        approval = ledger.query(LedgerQuery(run_id=RUN, kind="approval"))[-1]
    assert approval.payload["args"]["investment_usd"] == 200000
    assert approval.payload["method"] == "web"
    assert "amended to" in console.client.get("/approvals").text


@pytest.mark.parametrize(
    ("amend", "says"),
    [("{not json", "amend: not JSON"), ('{"investment_usd": "lots"}', "cannot amend: ")],
)
def test_a_bad_amendment_is_refused_and_nothing_is_recorded(console: Console, amend: str, says: str) -> None:
    target = console.pending()[0]
    csrf = console.login("carol")
    response = console.decide(csrf, target, reason="r", amend=amend)
    assert response.status_code == 400
    assert says in response.text
    assert console.approvals() == []
