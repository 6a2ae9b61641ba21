"""A new action in an existing pack touches at most three files (issue 11), held by the suite: a pack scaffolded by
`coalition pack new` gets a second action, `restock`, by editing its actions (the argument model, the handler and
the declaration), its agent (which now proposes it) and its default policy (the permission and a deny rule) — and
nothing else. Installed as pip installs it, the action is governed (allowed, and denied above the limit),
executed, recorded in the ledger, listed by `coalition pack list` and documented by `coalition pack docs`; the run
keeps every expectation of the scenario and replays IDENTICAL. The test prints the change's `git diff --stat`."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from ledger_rows import payloads
from test_pack_new import COALITION, install, run, scaffold

pytestmark = pytest.mark.e2e

NAME = "shop_grow"
ACTION = f"{NAME}_restock"

MODEL_AND_HANDLER = '''

class Restock(ActionArgs):
    """Bring `quantity` more units of one item into stock."""

    item_id: Text
    quantity: Integer = Field(ge=1)


def restock(world: ShopGrowWorld, a: Restock, ctx: ActionContext) -> Changes:
    item = world.item(a.item_id)  # an unknown item is a refusal, before anything changes
    item.stock += a.quantity
    return {"restocked": {"item_id": a.item_id, "quantity": a.quantity}}
'''

DECLARATION = f'''    Action(
        "{ACTION}", Restock, restock, proposers=(AGENT,), doc="Bring more units of an item into stock."
    ),
)
'''

PROPOSAL = f"""
        again = {{"item_id": order.item_id, "quantity": order.quantity}}  # sold: bring as many back in
        said = Facts(intent="propose", decision=f"restock {{order.quantity}} of {{order.item_id}}")
        key = f"restock:{{order.order_id}}"
        plan.propose(ProposalDraft("{ACTION}", again, said, (evidence_of(envelope),), envelope, key))
"""

RULE = f"""  - id: limit.restock.max
    actions: [{ACTION}]
    when: args.quantity > limits.max_order_quantity
    outcome: deny
    reason: "restocking {{args.quantity}} units is above the maximum of {{limits.max_order_quantity}}"
"""


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], capture_output=True, text=True, check=True, cwd=cwd)
    return done.stdout


def add_the_restock_action(project: Path) -> None:
    """The three edits a pack author makes, as text: nothing else of the pack changes."""
    package = project / NAME
    actions = package / "actions.py"
    text = actions.read_text(encoding="utf-8")
    head, tail = text.split("\n\nACTIONS: tuple[Action, ...] = (\n")
    assert tail.endswith("\n)\n")
    text = head + MODEL_AND_HANDLER + "\n\nACTIONS: tuple[Action, ...] = (\n" + tail.removesuffix(")\n") + DECLARATION
    actions.write_text(text, encoding="utf-8")
    agent = package / "agent.py"
    text = agent.read_text(encoding="utf-8")
    shipped = "key))\n"  # the end of the agent's one ship proposal
    assert text.count(shipped) == 1
    agent.write_text(text.replace(shipped, shipped + PROPOSAL, 1), encoding="utf-8")
    policy = package / "policy.yaml"
    text = policy.read_text(encoding="utf-8")
    text = text.replace(f"[{NAME}_ship]\n", f"[{NAME}_ship, {ACTION}]\n", 1)  # the agent's permission
    policy.write_text(text + RULE, encoding="utf-8")


def test_a_new_action_touches_three_files_and_runs_governed_end_to_end(tmp_path: Path) -> None:
    project = scaffold(NAME, tmp_path)
    git("init", "-q", cwd=project)
    git("add", "-A", cwd=project)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "scaffolded", cwd=project)
    add_the_restock_action(project)
    changed = git("diff", "--name-only", cwd=project).split()
    assert changed == [f"{NAME}/actions.py", f"{NAME}/agent.py", f"{NAME}/policy.yaml"]
    print(git("diff", "--stat", cwd=project))  # the diffstat the docs show (pytest -s)

    site = tmp_path / "site"
    install(project, site)
    listed = run(COALITION, "pack", "list", "--json", cwd=tmp_path, site=site)
    assert listed.returncode == 0, listed.stderr
    assert {p["name"]: p["actions"] for p in json.loads(listed.stdout)}[NAME] == [f"{NAME}_ship", ACTION]

    documented = run(COALITION, "pack", "docs", NAME, cwd=tmp_path, site=site)
    assert documented.returncode == 0, documented.stderr
    row = next(line for line in documented.stdout.splitlines() if line.startswith(f"| `{ACTION}` |"))
    assert "Bring more units of an item into stock." in row
    assert "`item_id` text<br>`quantity` integer, ≥ 1" in row
    assert f"| {NAME}_clerk |" in row
    assert "deny `limit.restock.max` when `args.quantity > limits.max_order_quantity`" in row

    done = run(COALITION, "run", f"{NAME}-first-orders", "--bus", "memory", "--ledger", "l.db", "--run-id", "grow",
               "--json", cwd=tmp_path, site=site)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert all(e["passed"] for e in result["expectations"]), [e["detail"] for e in result["expectations"]]

    ledger = tmp_path / "l.db"
    proposed = {p["proposal_id"]: p for p in payloads(ledger, "grow", "proposal") if p["action"] == ACTION}
    assert sorted((p["args"]["item_id"], p["args"]["quantity"]) for p in proposed.values()) == [
        ("gadget", 9),
        ("widget", 3),
        ("widget", 30),
        ("widget", 500),
    ]
    verdicts = {v["proposal_id"]: v for v in payloads(ledger, "grow", "verdict") if v["proposal_id"] in proposed}
    assert Counter(v["outcome"] for v in verdicts.values()) == {"allow": 3, "deny": 1}
    denied = next(v for v in verdicts.values() if v["outcome"] == "deny")
    assert proposed[denied["proposal_id"]]["args"]["quantity"] == 500
    assert denied["reasons"] == ["restocking 500 units is above the maximum of 100"]
    executed = [e for e in payloads(ledger, "grow", "execution") if e["proposal_id"] in proposed]
    assert [e["status"] for e in executed] == ["applied"] * 3
    assert {e["changes"]["restocked"]["quantity"] for e in executed} == {3, 9, 30}

    replayed = run(COALITION, "replay", "grow", "--ledger", "l.db", cwd=tmp_path, site=site)
    assert replayed.stdout.startswith("IDENTICAL"), replayed.stdout + replayed.stderr
