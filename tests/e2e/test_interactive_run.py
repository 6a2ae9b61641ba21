"""A human in the loop: an interactive run waits for decisions made from another process, then completes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coalition.governance.policy import default_policy

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([COALITION, *args], capture_output=True, text=True, timeout=120, check=False)


def approvers_for(roles: list[str], exclude: set[str]) -> list[str]:
    directory = default_policy().approvers
    return sorted(name for name, held in directory.items() if set(held) & set(roles) and name not in exclude)


class TestInteractiveRun:
    """`coalition run --interactive` pauses the simulated clock until humans decide from a second terminal."""

    def test_approvals_from_a_second_process_let_the_run_complete(self, tmp_path: Path) -> None:
        ledger = str(tmp_path / "ledger.db")
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        run = subprocess.Popen(
            [COALITION, "run", "helios-launch", "--interactive", "--bus", "memory", "--ledger", ledger,
             "--run-id", "live", "--approval-wait", "60", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        decided: set[str] = set()
        self_approval_refused = False
        deadline = time.monotonic() + 240
        try:
            while run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.3)
                if not Path(ledger).exists():
                    continue
                listed = cli("approvals", "list", "--ledger", ledger, "--run", "live", "--json")
                if listed.returncode != 0:
                    continue
                for escalation in json.loads(listed.stdout):
                    pid = escalation["proposal_id"]
                    if not self_approval_refused:
                        refused = cli("approvals", "approve", pid, "--as", escalation["agent"], "--reason", "mine",
                                      "--ledger", ledger, "--run", "live")  # fmt: skip
                        assert refused.returncode == 1, refused.stdout + refused.stderr
                        self_approval_refused = True
                    done = {a["approver"] for a in escalation["approvals"]}
                    needed = escalation["approvals_required"] - len(done)
                    for name in approvers_for(escalation["approver_roles"], done)[:needed]:
                        ok = cli("approvals", "approve", pid, "--as", name, "--reason", "reviewed in e2e test",
                                 "--ledger", ledger, "--run", "live")  # fmt: skip
                        assert ok.returncode == 0, ok.stdout + ok.stderr
                        decided.add(pid)
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode in (0, 1), err
        report = json.loads(out)
        assert self_approval_refused
        assert len(decided) >= 5
        outcomes = {e["proposal_id"]: e["outcome"] for e in report["escalations"]}
        assert all(outcomes[pid] == "approved" for pid in decided)
        approvals = cli("ledger", "list", "--ledger", ledger, "--run", "live", "--kind", "approval", "--json")
        assert approvals.returncode == 0
        assert "reviewed in e2e test" in approvals.stdout
