"""A run.started entry altered in the ledger (a superuser's SQL, the chain rewritten so that it still links) is one
line naming the run and what is wrong, from every reader that shares it: drift, approvals and review behind the
run's policy, replay and replay --verify from the CLI (exit 2), and the console's pages (a 4xx page, never a 500)."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from ledger_attacks import rewrite_chain
from typer.testing import CliRunner

from coalition.bus.clock import SimulatedClock
from coalition.cli import app
from coalition.web.app import create_app
from coalition.web.passwords import hash_password

pytestmark = pytest.mark.e2e

GOLDEN = Path(__file__).parents[1] / "golden" / "price-spike-lean.db"
RUN = "golden"
STARTED_SEQ = 1  # the golden run's run.started
PASSWORD = "correct horse battery"


def _inject(fields: dict[str, Any]) -> None:
    fields["payload"]["injected"] = True  # a field run.started never had


def _retype(fields: dict[str, Any]) -> None:
    fields["payload"]["seed"] = "forty-two"  # a field of another type


def _renumber_policy(fields: dict[str, Any]) -> None:
    fields["payload"]["policy_version"] = 7  # a field the report prints, of another type


ALTERATIONS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "a key it never had": (_inject, "injected: Extra inputs are not permitted"),
    "a field of another type": (_retype, "seed: Input should be a valid integer, unable to parse string as an integer"),
    "the policy version a number": (_renumber_policy, "policy_version: Input should be a valid string"),
}


@pytest.fixture(params=list(ALTERATIONS))
def altered(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    """A copy of the golden ledger whose run.started was altered and the chain rewritten after it; the line every
    reader must say."""
    change, problem = ALTERATIONS[request.param]
    path = tmp_path / "ledger.db"
    shutil.copy(GOLDEN, path)
    rewrite_chain(path, STARTED_SEQ, change)
    return (
        path,
        f"ledger entry {STARTED_SEQ} is malformed (run {RUN!r}: its recorded run.started does not validate: {problem})",
    )


@pytest.mark.parametrize(
    "command",
    [
        ["drift", RUN, RUN],
        ["approvals", "list", "--run", RUN],
        ["approvals", "show", "anything", "--run", RUN],
        ["approvals", "review", "list", "--run", RUN],
        ["replay", RUN],
        ["replay", RUN, "--verify"],
        ["report", RUN, "--format", "md"],
    ],
    ids=lambda command: " ".join(command[:3]),
)
def test_each_cli_reader_says_it_in_one_line(altered: tuple[Path, str], command: list[str]) -> None:
    path, line = altered
    done = CliRunner().invoke(app, [*command, "--ledger", str(path)])
    assert "Traceback" not in done.output
    assert done.exception is None or isinstance(done.exception, SystemExit), repr(done.exception)
    assert done.exit_code == 2, done.output
    assert line in done.output
    assert len(done.output.strip().splitlines()) == 1, done.output


@pytest.fixture
def console(altered: tuple[Path, str], tmp_path: Path) -> Iterator[tuple[TestClient, str]]:
    path, line = altered
    web = create_app(path, tmp_path / "users.db", clock=SimulatedClock(datetime(2026, 1, 1, 12, tzinfo=UTC)))
    web.state.console.users.add("carol", ["approver"], hash_password(PASSWORD), now=datetime(2026, 1, 1, tzinfo=UTC))
    with TestClient(web, base_url="http://127.0.0.1", raise_server_exceptions=False) as client:
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        login = {"name": "carol", "password": PASSWORD, "csrf_token": token.group(1), "next": "/"}
        assert client.post("/login", data=login, follow_redirects=False).status_code == 303
        yield client, line
    web.state.console.close()


def _unescaped(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#x27;", "'")


def test_the_inbox_names_it_among_its_problems(console: tuple[TestClient, str]) -> None:
    """The home page and the inbox read every run's policy: the altered run is named, the pages still serve."""
    client, line = console
    home, inbox = client.get("/"), client.get("/approvals")
    assert (home.status_code, inbox.status_code) == (200, 200)
    assert line in _unescaped(inbox.text)


@pytest.mark.parametrize(
    ("action", "form"),
    [("decide", {"decision": "approve"}), ("review", {"mark": "right"})],
)
def test_a_decision_or_review_mark_on_the_run_is_a_409_page_naming_it(
    console: tuple[TestClient, str], action: str, form: dict[str, str]
) -> None:
    """Deciding or marking reads the run's policy from its run.started: refused with the line, never a 500."""
    client, line = console
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/approvals").text)
    assert token is not None
    fields = {"run_id": RUN, "proposal_id": "anything", "reason": "looked at it", "csrf_token": token.group(1), **form}
    response = client.post(f"/approvals/{action}", data=fields, headers={"Sec-Fetch-Site": "same-origin"})
    assert response.status_code == 409, response.text[-500:]
    assert line in _unescaped(response.text)


@pytest.mark.parametrize("fmt", ["html", "md", "json"])
def test_the_run_report_download_is_a_409_page_naming_it(console: tuple[TestClient, str], fmt: str) -> None:
    """The console's report of the run reads its run.started as the CLI's does: refused with the line, never a 500."""
    client, line = console
    response = client.get(f"/runs/{RUN}/report.{fmt}")
    assert response.status_code == 409, response.text[-500:]
    assert line in _unescaped(response.text)
