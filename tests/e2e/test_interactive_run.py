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


PASSWORD = "correct horse battery"


def cli(*args: str, data_dir: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "COALITION_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=120, check=False, input=stdin, env=env
    )


def decide(pid: str, name: str, *, ledger: str, data_dir: Path, password: str | None = PASSWORD, reason: str = "x"):  # type: ignore[no-untyped-def]
    args = ["approvals", "approve", pid, "--as", name, "--reason", reason, "--ledger", ledger, "--run", "live"]
    if password is None:
        return cli(*args, data_dir=data_dir)
    return cli(*args, "--password-stdin", data_dir=data_dir, stdin=password + "\n")


def approvers_for(roles: list[str], exclude: set[str]) -> list[str]:
    directory = default_policy().approvers
    return sorted(name for name, held in directory.items() if set(held) & set(roles) and name not in exclude)


class TestInteractiveRun:
    """`coalition run --interactive` pauses the simulated clock until humans decide from a second terminal."""

    def test_approvals_from_a_second_process_let_the_run_complete(self, tmp_path: Path) -> None:
        """Approvers are console users (their password opens their signing key); the run records their public
        keys at start. While it waits: deciding without a password, with a wrong one, or as the proposer is
        refused; the approvers' signed decisions let it complete and `ledger verify` checks every signature."""
        ledger = str(tmp_path / "ledger.db")
        env = {**{k: v for k, v in os.environ.items() if k != "REDIS_URL"}, "COALITION_DATA_DIR": str(tmp_path)}
        for name in default_policy().approvers:
            added = cli(
                "users", "add", name, "--role", "approver", "--password-stdin", data_dir=tmp_path, stdin=PASSWORD + "\n"
            )
            assert added.returncode == 0, added.stderr
        run = subprocess.Popen(
            [COALITION, "run", "helios-launch", "--interactive", "--bus", "memory", "--ledger", ledger,
             "--run-id", "live", "--approval-wait", "60", "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        decided: set[str] = set()
        self_approval_refused = False
        credentials_refused = False
        deadline = time.monotonic() + 240
        try:
            while run.poll() is None and time.monotonic() < deadline:
                time.sleep(0.3)
                if not Path(ledger).exists():
                    continue
                listed = cli("approvals", "list", "--ledger", ledger, "--run", "live", "--json", data_dir=tmp_path)
                if listed.returncode != 0:
                    continue
                for escalation in json.loads(listed.stdout):
                    pid = escalation["proposal_id"]
                    done = {a["approver"] for a in escalation["approvals"]}
                    needed = escalation["approvals_required"] - len(done)
                    names = approvers_for(escalation["approver_roles"], done)[:needed]
                    if not self_approval_refused:
                        refused = decide(pid, escalation["agent"], ledger=ledger, data_dir=tmp_path, reason="mine")
                        assert refused.returncode == 1, refused.stdout + refused.stderr
                        self_approval_refused = True
                    if not credentials_refused and names:
                        for password in (None, "", "wrong password"):  # --as alone, an empty and a wrong password
                            bare = decide(pid, names[0], ledger=ledger, data_dir=tmp_path, password=password)
                            assert bare.returncode == 1, bare.stdout + bare.stderr
                            assert bare.stderr.startswith("refused: ")
                            assert "password" in bare.stderr
                        credentials_refused = True
                    for name in names:
                        ok = decide(pid, name, ledger=ledger, data_dir=tmp_path, reason="reviewed in e2e test")
                        assert ok.returncode == 0, ok.stdout + ok.stderr
                        decided.add(pid)
            out, err = run.communicate(timeout=60)
        finally:
            if run.poll() is None:
                run.kill()
        assert run.returncode in (0, 1), err
        report = json.loads(out)
        assert self_approval_refused
        assert credentials_refused
        assert len(decided) >= 5
        outcomes = {e["proposal_id"]: e["outcome"] for e in report["escalations"]}
        assert all(outcomes[pid] == "approved" for pid in decided)
        approvals = cli(
            "ledger", "list", "--ledger", ledger, "--run", "live", "--kind", "approval", "--json", data_dir=tmp_path
        )
        assert approvals.returncode == 0
        assert "reviewed in e2e test" in approvals.stdout
        assert '"wrong password"' not in approvals.stdout
        entries = json.loads(approvals.stdout)
        assert entries
        assert all(e["payload"]["signature"] for e in entries)
        assert not any(e["payload"]["scripted"] for e in entries)
        verified = cli("ledger", "verify", "--ledger", ledger, data_dir=tmp_path)
        assert verified.returncode == 0, verified.stdout
        assert f"{len(entries)} decision signatures verified" in verified.stdout
