"""The docs' bring-your-own-agent example, run as a user would: docs/examples/byo-desk.yaml names the graph of
docs/examples/byo_desk_graph.py (a StateGraph with a ToolNode) as the billing desk's billing agent; its model is the
wire server's scripted one, which asks for a 900 USD credit on one case and a 40 USD credit on the other.

Real governance decides: the 900 USD credit is denied by the policy's maximum credit, comes back to the graph as its
tool's result, and nothing executes for it; the 40 USD credit is executed and its result comes back the same way;
the 120 USD credit escalates (the graph reads the escalation as the tool's result), the scenario's board approves
it, and its execution comes back to the graph as news.
The run replays IDENTICAL with no key and no network."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_rows import payloads
from llm_wire_server import FAKE_OPENAI_KEY, WireServer, tool_results
from test_hostile_models import cli

from coalition.agents.providers import ProviderAccess
from coalition.bus.memory import MemoryBus
from coalition.ledger.digest import run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios import parse_scenario
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import DayProgress, RunnerOptions

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
SCENARIO = str(EXAMPLES / "byo-desk.yaml")
AMOUNTS = {"C-1": 900, "C-2": 40, "C-3": 120}  # what the scripted model asks to credit per case


def scripted(body: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The graph's model: one credit per case, then a text answer once the tool has answered."""
    names = {t.get("function", {}).get("name") for t in body.get("tools") or []}
    if "credit_account" not in names:
        return None
    if tool_results(body):
        return []
    situation = json.loads(body["messages"][-1]["content"])["situation"]["data"]
    args = {
        "account_id": situation["account_id"],
        "case_id": situation["case_id"],
        "amount_usd": AMOUNTS[situation["case_id"]],
        "tier": "billing_error",
        "rule": "graph",
    }
    return [("credit_account", json.dumps(args, sort_keys=True))]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        server.tool_caller = scripted
        yield server


def run_example(example: Path, factory: str, run_id: str, tmp_path: Path, wire: WireServer) -> Path:
    """A docs example scenario run through the CLI, its agent's model the wire server's; the ledger it wrote."""
    ledger = tmp_path / "l.db"
    scenario = tmp_path / example.name
    graph = f'{{graph: "{factory}"}}'
    text = example.read_text(encoding="utf-8")
    assert graph in text
    scenario.write_text(text.replace(graph, f'{{graph: "{factory}", model: "openai:gpt-4o-mini"}}'))
    model = {"OPENAI_API_KEY": FAKE_OPENAI_KEY, "OPENAI_BASE_URL": wire.openai_base_url}
    ran = cli("run", str(scenario), "--bus", "memory", "--ledger", str(ledger), "--run-id", run_id, cwd=tmp_path,
              extra={"PYTHONPATH": str(EXAMPLES), **model})  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]
    assert "Traceback" not in ran.stderr
    return ledger


def test_the_example_graph_is_governed_and_replays_identical(tmp_path: Path, wire: WireServer) -> None:
    ledger = run_example(Path(SCENARIO), "byo_desk_graph:build", "byo", tmp_path, wire)
    path = {"PYTHONPATH": str(EXAMPLES)}

    proposals = {p["args"]["case_id"]: p for p in payloads(ledger, "byo", "proposal") if p["agent"] == "billing"}
    assert {case: p["args"]["amount_usd"] for case, p in proposals.items()} == AMOUNTS
    assert all(p["model"]["calls"] for p in proposals.values())  # each rests on a recorded model call
    verdicts = {v["proposal_id"]: v for v in payloads(ledger, "byo", "verdict")}
    denied, allowed = proposals["C-1"]["proposal_id"], proposals["C-2"]["proposal_id"]
    assert verdicts[denied]["outcome"] == "deny"
    assert verdicts[allowed]["outcome"] == "allow"
    executed = {e["proposal_id"]: e["status"] for e in payloads(ledger, "byo", "execution")}
    assert denied not in executed
    assert executed[allowed] == "applied"

    seen = [json.loads(r) for b in wire.requests for r in tool_results(b["body"])]
    assert {"proposal_id": denied, "verdict": "deny", "reasons": verdicts[denied]["reasons"]} in seen
    assert any(s.get("proposal_id") == allowed and s.get("executed") == "applied" for s in seen)
    escalated = proposals["C-3"]["proposal_id"]
    assert (verdicts[escalated]["outcome"], verdicts[escalated]["gate"]) == ("escalate", "refund_approval")
    assert any(s.get("proposal_id") == escalated and s.get("verdict") == "escalate" for s in seen)
    assert executed[escalated] == "applied"  # approved by the board
    news = [json.loads(b["body"]["messages"][-1]["content"]) for b in wire.requests if "updates" in str(b["body"])]
    assert news[0]["updates"][0]["proposal_id"] == escalated
    assert news[0]["updates"][0]["executed"] == "applied"

    replayed = cli("replay", "byo", "--ledger", str(ledger), cwd=tmp_path, extra=path)  # no key, no network
    assert replayed.returncode == 0, replayed.stdout[-2000:] + replayed.stderr[-2000:]
    assert "IDENTICAL" in replayed.stdout


class _Stop(Exception):
    """Raised from the progress callback to cut a run short, as Ctrl-C would."""


def bodies(server: WireServer) -> Counter[str]:
    return Counter(json.dumps([r["path"], r["body"]], sort_keys=True) for r in server.requests)


def test_a_cut_run_resumes_the_graphs_waiting_call_to_the_uninterrupted_ledger(
    tmp_path: Path, wire: WireServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The board approves the escalated credit on day 2 only; cut at the end of day 1 (the graph waits on it),
    `coalition run --resume` re-executes the graph's conversations from the ledger's recorded answers, asks the
    model only what was not asked, and ends with the uninterrupted run's ledger digest."""
    monkeypatch.syspath_prepend(str(EXAMPLES))  # the user's module is importable (installed, or on PYTHONPATH)
    text = Path(SCENARIO).read_text(encoding="utf-8")
    text = text.replace("days: 2", "days: 3").replace("decision: approve", "decision: approve\n      on_day: 2")
    text = text.replace(
        '{graph: "byo_desk_graph:build"}', '{graph: "byo_desk_graph:build", model: "openai:gpt-4o-mini"}'
    )
    scenario = parse_scenario(text)
    assert scenario.agents["billing"].model == "openai:gpt-4o-mini"
    provider = ProviderAccess(openai_api_key=FAKE_OPENAI_KEY, openai_base_url=wire.openai_base_url)
    path = tmp_path / "l.db"

    def stop_after_day_1(progress: DayProgress) -> None:
        if progress.day == 1:
            raise _Stop

    with SqliteLedger(path, create=True) as ledger:
        options = RunnerOptions(provider_access=provider)
        assemble_run(scenario, bus=MemoryBus(), ledger=ledger, run_id="whole", options=options).run()
        whole = bodies(wire)
        wire.reset()
        options = RunnerOptions(provider_access=provider, on_day=stop_after_day_1)
        with pytest.raises(_Stop):
            assemble_run(scenario, bus=MemoryBus(), ledger=ledger, run_id="cut", options=options).run()
        cut = bodies(wire)
        wire.reset()
    env = {"PYTHONPATH": str(EXAMPLES), "OPENAI_API_KEY": FAKE_OPENAI_KEY, "OPENAI_BASE_URL": wire.openai_base_url}
    resumed = cli("run", "--resume", "--run-id", "cut", "--bus", "memory", "--ledger", str(path), cwd=tmp_path,
                  extra=env)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    assert cut
    assert bodies(wire)  # the news of the approved credit, asked only now
    assert cut + bodies(wire) == whole  # nothing asked twice, nothing left out
    with SqliteLedger(path) as ledger:
        assert run_digest(ledger, "cut") == run_digest(ledger, "whole")
