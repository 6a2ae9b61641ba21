"""A pack agent's step run straight (the default) and as the compiled LangGraph graph (COALITION_AGENT_GRAPH=langgraph)
record the same run: the same digest and the same ledger content, entry by entry, so the two cannot drift."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from coalition.agents import workflow
from coalition.agents.pipeline import GRAPH_VARIABLE, LANGGRAPH, STRAIGHT
from coalition.bus.canonical import canonical_json
from coalition.bus.memory import MemoryBus
from coalition.governance.policy import Policy, default_policy, load_policy, parse_policy
from coalition.ledger.digest import history_fields, run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import load_scenario

pytestmark = pytest.mark.integration

POLICIES = Path(__file__).parents[2] / "packs" / "helios" / "policies"


def assistive() -> Policy:
    """Finance's prices drafted by the model for the CFO to review (the drafts expire unanswered: dropped)."""
    lanes = {"finance": {"lane": "assistive", "reviewers": ["cfo"], "actions": {"commit_capital": "transactional"}}}
    return parse_policy({**default_policy().document, "lanes": lanes}, source="helios+assistive")


# scenario, policy (None: the scenario's): the plain launch, the board's decisions and chaos, an escalation with a
# four-eyes rejection, prose documents read by the model, the autonomous and the assistive lanes
RUNS: dict[str, tuple[str, Any]] = {
    "helios-launch": ("helios-launch", None),
    "chaos-week": ("chaos-week", None),
    "price-spike": ("price-spike", None),
    "complaint-letters": ("complaint-letters", None),
    "autonomous": ("helios-launch", lambda: load_policy(POLICIES / "helios-autonomous.yaml")),
    "assistive": ("price-spike", assistive),
}


def _run(name: str, path: Path, choice: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, list[bytes]]:
    """(digest, each entry's content as canonical JSON in history order) of one run with the step run `choice`."""
    monkeypatch.setenv(GRAPH_VARIABLE, choice)  # read when the agents are built
    scenario, policy = RUNS[name]
    with SqliteLedger(path) as ledger:
        runner = assemble_run(
            load_scenario(scenario),
            bus=MemoryBus.for_run(f"{name}-{choice}"),
            ledger=ledger,
            run_id=name,
            policy=policy() if policy is not None else None,
        )
        runner.run()
        return run_digest(ledger, name), [canonical_json(f) for f in history_fields(ledger, name)]


class TestStraightIsLangGraph:
    """The straight step and LangGraph's record byte-identical ledgers."""

    @pytest.mark.parametrize("name", sorted(RUNS))
    def test_same_digest_and_content(self, name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        invoked: Counter[str] = Counter()
        graph = workflow.step_graph()

        class CountingGraph:  # proves the LangGraph run went through the compiled graph
            def invoke(self, state: Any) -> Any:
                invoked[state["agent"].NAME] += 1
                return graph.invoke(state)

        straight = _run(name, tmp_path / "straight.db", STRAIGHT, monkeypatch)
        assert not invoked
        monkeypatch.setattr(workflow.STEP, "graph", CountingGraph())
        langgraph = _run(name, tmp_path / "langgraph.db", LANGGRAPH, monkeypatch)
        assert invoked
        assert straight[0] == langgraph[0]
        assert straight[1] == langgraph[1]
