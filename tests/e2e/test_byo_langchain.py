"""A LangChain tool-calling agent as a Coalition agent, run as a user would: docs/examples/byo-desk-langchain.yaml
names the agent of docs/examples/byo_desk_langchain.py (langchain's `create_agent`, with a read-only tool of its
own) as the billing desk's billing agent; its model speaks the OpenAI wire format through the official SDK
(langchain-openai) to the local wire server, scripted to read the account's notes and ask for a credit on each case
in one answer (the credits of tests/e2e/test_byo_agent.py): 900 USD (denied by the policy's maximum), 40 USD
(executed), 120 USD (escalated, approved by the scenario's board, executed).

Every action call becomes a governed proposal and its fate comes back as the tool's result; the agent's own tool
answers from its code and proposes nothing. The run replays IDENTICAL with no key and no network."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ledger_rows import payloads
from llm_wire_server import WireServer, tool_results
from test_byo_agent import AMOUNTS, run_example
from test_byo_agent import scripted as credit_each_case
from test_hostile_models import cli

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
SCENARIO = EXAMPLES / "byo-desk-langchain.yaml"
AGENT = '{graph: "byo_desk_langchain:build"}'


def scripted(body: dict[str, Any]) -> list[tuple[str, str]] | None:
    """The agent's model: its own tool and the graph example's credit in one answer, then a text answer once the
    tools answered."""
    credit = credit_each_case(body)
    if not credit:
        return credit
    account = json.loads(credit[0][1])["account_id"]
    return [("account_notes", json.dumps({"account_id": account})), *credit]


@pytest.fixture
def wire() -> Iterator[WireServer]:
    with WireServer() as server:
        server.tool_caller = scripted
        yield server


def test_the_example_is_the_graph_example_with_a_langchain_agent() -> None:
    graph = (EXAMPLES / "byo-desk.yaml").read_text(encoding="utf-8")
    ours = SCENARIO.read_text(encoding="utf-8")
    tail = graph[graph.index("pack: billing-desk") :]  # the world, events and board: the same desk, the same cases
    assert ours[ours.index("pack: billing-desk") :] == tail.replace('{graph: "byo_desk_graph:build"}', AGENT)


def test_a_langchain_agents_tool_calls_are_governed_and_the_run_replays_identical(
    tmp_path: Path, wire: WireServer
) -> None:
    ledger = run_example(SCENARIO, "byo_desk_langchain:build", "lc", tmp_path, wire)

    offered = {t["function"]["name"] for t in wire.requests[0]["body"]["tools"]}
    assert offered == {"account_notes", "credit_account", "cancel_without_penalty", "escalate_case",
                       "notify_customer", "waive_fee"}  # fmt: skip
    proposals = [p for p in payloads(ledger, "lc", "proposal") if p["agent"] == "billing"]
    assert {p["action"] for p in proposals} == {"credit_account"}  # its own tool proposes nothing
    by_case = {p["args"]["case_id"]: p for p in proposals}
    assert {case: p["args"]["amount_usd"] for case, p in by_case.items()} == AMOUNTS
    assert all(p["model"]["calls"] for p in proposals)  # each rests on a recorded model call

    verdicts = {v["proposal_id"]: v for v in payloads(ledger, "lc", "verdict")}
    denied, allowed, escalated = (by_case[c]["proposal_id"] for c in ("C-1", "C-2", "C-3"))
    assert verdicts[denied]["outcome"] == "deny"
    assert verdicts[allowed]["outcome"] == "allow"
    assert (verdicts[escalated]["outcome"], verdicts[escalated]["gate"]) == ("escalate", "refund_approval")
    executed = {e["proposal_id"]: e["status"] for e in payloads(ledger, "lc", "execution")}
    assert denied not in executed
    assert (executed[allowed], executed[escalated]) == ("applied", "applied")  # the board approved the 120 USD

    results = [r for b in wire.requests for r in tool_results(b["body"])]
    assert "prefers email" in results  # the agent's own tool answered from its code
    seen = [json.loads(r) for r in results if r.startswith("{")]
    assert {"proposal_id": denied, "verdict": "deny", "reasons": verdicts[denied]["reasons"]} in seen
    assert any(s.get("proposal_id") == allowed and s.get("executed") == "applied" for s in seen)
    assert any(s.get("proposal_id") == escalated and s.get("verdict") == "escalate" for s in seen)
    news = [json.loads(b["body"]["messages"][-1]["content"]) for b in wire.requests if "updates" in str(b["body"])]
    assert news[0]["updates"][0] == {
        "action": "credit_account",
        "proposal_id": escalated,
        "executed": "applied",
        "detail": news[0]["updates"][0]["detail"],
        "changes": news[0]["updates"][0]["changes"],
    }

    path = {"PYTHONPATH": str(EXAMPLES)}
    replayed = cli("replay", "lc", "--ledger", str(ledger), cwd=tmp_path, extra=path)  # no key, no network
    assert replayed.returncode == 0, replayed.stdout[-2000:] + replayed.stderr[-2000:]
    assert "IDENTICAL" in replayed.stdout
