"""Schemathesis over the console's OpenAPI schema (the /api JSON endpoints): no input gives a 5xx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from coalition.bus.memory import MemoryBus
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import RunnerOptions
from coalition.scenarios.spec import load_scenario
from coalition.web.app import create_app

pytestmark = pytest.mark.e2e

_DIR = Path(__import__("tempfile").mkdtemp(prefix="coalition-web-schema-"))
_LEDGER = _DIR / "ledger.db"
with SqliteLedger(_LEDGER) as _ledger:
    _bus = MemoryBus(namespace="schema")
    _opts = RunnerOptions(interactive=True, approval_wait_seconds=0, poll_seconds=0.01)
    assemble_run(
        load_scenario("helios-launch").model_copy(update={"days": 2}),
        bus=_bus,
        ledger=_ledger,
        run_id="s",
        options=_opts,
    ).run()
    _bus.close()
APP = create_app(_LEDGER, _DIR / "users.db", allowed_hosts=("testserver",))  # schemathesis's ASGI client
_USER = APP.state.console.users.add("vera", ["viewer"], "unused-hash", now=datetime.now(UTC))
TOKEN, _ = APP.state.console.users.open_session(
    _USER, now=datetime.now(UTC), ttl=timedelta(hours=1), instance="testserver"
)

schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_answers_5xx(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    """Any generated request to a documented endpoint gets a non-5xx answer."""
    response = case.call(headers={"Cookie": f"coalition_session={TOKEN}"})
    assert response.status_code < 500, (case.path, case.query, response.text[:300])
