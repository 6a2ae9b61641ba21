"""The must-show of issue 12: helios-launch with finance and marketing in the autonomous lane on the wire server's
scripted model, which asks the engine and then chooses otherwise where it has its own view — every price 5% under
the engine's, every campaign's discount 15 points over it — and adopts the engine's decision elsewhere.

The run completes; governance contains the model (its deeper discounts are denied by the discount limit, and
nothing is done that is not allowed or approved); its decisions differ from the transactional run's exactly where
the model chose otherwise, which `coalition drift` measures; `coalition consistency --models` reports pass^k for
the model lane; and the run replays IDENTICAL with no key and no network."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from ledger_rows import payloads
from llm_wire_server import FAKE_OPENAI_KEY, WireServer, choose_request, tool_results
from test_hostile_models import cli

pytestmark = pytest.mark.e2e

POLICY = str(Path(__file__).parents[2] / "packs" / "helios" / "policies" / "helios-autonomous.yaml")


def opinionated(body: dict[str, Any]) -> list[tuple[str, str]] | None:
    """Ask the engine, then take its decision — with a lower price and a deeper discount where it has one."""
    if choose_request(body) is None:
        return None
    results = tool_results(body)
    recommended = json.loads(results[-1]).get("recommendation") if results else None
    if not isinstance(recommended, dict):
        return [("engine_recommendation", "{}")]
    action, args = recommended["action"], dict(recommended["args"])
    if action == "set_price":
        args["price"] = str((Decimal(str(args["price"])) * Decimal("0.95")).quantize(Decimal("0.01")))
    elif action == "launch_campaign":
        args["discount_pct"] = float(args["discount_pct"]) + 15
    return [(action, json.dumps(args, sort_keys=True))]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        server.tool_caller = opinionated
        yield server


def model_env(wire: WireServer) -> dict[str, str]:
    return {
        "COALITION_LLM_FINANCE": "openai:gpt-4o-mini",
        "COALITION_LLM_MARKETING": "openai:gpt-4o-mini",
        "OPENAI_API_KEY": FAKE_OPENAI_KEY,
        "OPENAI_BASE_URL": wire.openai_base_url,
    }


def test_the_model_lane_chooses_otherwise_and_governance_contains_it(tmp_path: Path, wire: WireServer) -> None:
    ledger = str(tmp_path / "l.db")
    common = ("--bus", "memory", "--ledger", ledger)
    transactional = cli("run", "helios-launch", *common, "--run-id", "tx", cwd=tmp_path)
    assert transactional.returncode == 0, transactional.stdout[-2000:]
    autonomous = cli("run", "helios-launch", *common, "--run-id", "model", "--policy", POLICY, cwd=tmp_path,
                     extra=model_env(wire))  # fmt: skip
    assert autonomous.returncode in (0, 1), autonomous.stderr[-2000:]
    assert "Traceback" not in autonomous.stderr
    failed = cli("report", "model", "--ledger", ledger, "--format", "json", cwd=tmp_path)
    print("expectations not held:", [e["id"] for e in json.loads(failed.stdout)["expectations"] if not e["passed"]])

    chosen = [p for p in payloads(Path(ledger), "model", "proposal") if "choice" in p]
    disagreed = [p for p in chosen if p["choice"]["engine_args"] is not None]
    assert disagreed, "the model chose otherwise somewhere"
    assert {p["action"] for p in disagreed} <= {"set_price", "launch_campaign"}
    assert all(p["choice"]["chosen_by"] == "model" and p["choice"]["calls"] for p in chosen)

    drift = cli("drift", "tx", "model", "--ledger", ledger, "--format", "json", cwd=tmp_path)
    assert drift.returncode == 0, drift.stderr
    print(drift.stdout)
    figures = json.loads(drift.stdout)
    assert json.dumps(figures) != "{}"
    shown = cli("drift", "tx", "model", "--ledger", ledger, cwd=tmp_path)
    print(shown.stdout)

    report = cli("report", "model", "--ledger", ledger, "--format", "md", cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "## Model lanes: who chose" in report.stdout
    assert f"Model and engine disagreed ({len(disagreed)})" in report.stdout
    print(report.stdout[report.stdout.index("## Model lanes") :].split("## Executive")[0])

    replayed = cli("replay", "model", "--ledger", ledger, cwd=tmp_path)  # no key, no network
    assert replayed.returncode == 0, replayed.stdout[-2000:] + replayed.stderr[-2000:]
    assert "IDENTICAL" in replayed.stdout

    consistency = cli("consistency", "helios-launch", "--runs", "3", "--policy", POLICY, "--models", cwd=tmp_path,
                      extra=model_env(wire))  # fmt: skip
    print(consistency.stdout)
    assert consistency.returncode in (0, 1), consistency.stderr[-2000:]
    assert re.search(r"pass\^3 = \d+%", consistency.stdout)
    assert "with the models a run would use" in consistency.stdout
