"""Content, not paths, makes a run: the same scenario by any path or checkout is the same run, a run replays
from the documents it recorded (not re-serialised through today's models), and the printed resume command runs
as printed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import coalition.packs.helios as helios_package
from coalition.ledger.base import LedgerQuery
from coalition.ledger.errors import LedgerError
from coalition.ledger.sqlite import SqliteLedger

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
LIBRARY = Path(helios_package.__file__).parent / "scenarios"
SCENARIO = "price-spike"  # short, with an escalation (pricing_policy_change, four eyes)


def cli(*args: str, cwd: Path | None = None, data_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS"}}
    if data_dir is not None:  # one deployment: the ledger's signing key and witness live in its data directory
        env["COALITION_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [COALITION, *args], capture_output=True, text=True, timeout=300, env=env, cwd=cwd, check=False
    )


def escalated(ledger: Path) -> bool:
    """Whether the run has escalated something yet (read straight from the ledger file: quicker than the CLI)."""
    if not ledger.exists():
        return False
    try:
        with SqliteLedger(ledger, create=False) as opened:
            return opened.count(LedgerQuery(kind="verdict", outcome="escalate")) > 0
    except LedgerError:
        return False


def run(scenario: str, ledger: Path, run_id: str, *, cwd: Path) -> str:
    done = cli(
        "run", scenario, "--bus", "memory", "--ledger", str(ledger), "--run-id", run_id, "--json",
        cwd=cwd, data_dir=ledger.parent / "data",
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    return str(json.loads(done.stdout)["digest"])


class TestContentNotPath:
    """The digest depends on what the scenario says, never on how its path was typed or where it was checked out."""

    def test_three_paths_and_two_checkouts_give_one_digest(self, tmp_path: Path) -> None:
        ledger = tmp_path / "ledger.db"
        work = tmp_path / "work"
        (work / "sub").mkdir(parents=True)
        original = LIBRARY / f"{SCENARIO}.yaml"
        shutil.copy(original, work / "base.yaml")
        shutil.copy(original, work / "sub" / "base.yaml")
        checkouts = []
        for name in ("checkout-a", "checkout-b"):  # two copies of the file tree, as two clones of one commit
            tree = tmp_path / name / "helios"
            shutil.copytree(LIBRARY.parent, tree, ignore=shutil.ignore_patterns("__pycache__"))
            checkouts.append(tree / "scenarios" / f"{SCENARIO}.yaml")
        digests = {
            "relative": run("base.yaml", ledger, "relative", cwd=work),
            "absolute": run(str(work / "base.yaml"), ledger, "absolute", cwd=work),
            "copy in sub/": run("sub/base.yaml", ledger, "copy", cwd=work),
            "checkout a": run(str(checkouts[0]), ledger, "checkout-a", cwd=tmp_path),
            "checkout b": run(str(checkouts[1]), ledger, "checkout-b", cwd=checkouts[1].parent),
            "library name": run(SCENARIO, ledger, "library", cwd=tmp_path),
        }
        assert len(set(digests.values())) == 1, digests
        # the recorded run names no path of this machine: nothing in it depends on where the files were
        started = cli(
            "ledger", "list", "--ledger", str(ledger), "--run", "checkout-a", "--kind", "run", "--json",
            data_dir=ledger.parent / "data",
        )  # fmt: skip
        assert str(tmp_path) not in started.stdout

    def test_a_changed_scenario_is_another_run(self, tmp_path: Path) -> None:
        """The negative control: content does change the digest."""
        text = (LIBRARY / f"{SCENARIO}.yaml").read_text(encoding="utf-8")
        changed = tmp_path / "changed.yaml"
        changed.write_text(text.replace("seed: ", "seed: 1", 1), encoding="utf-8")
        shutil.copy(LIBRARY / f"{SCENARIO}.yaml", tmp_path / "same.yaml")
        ledger = tmp_path / "ledger.db"
        assert run("same.yaml", ledger, "same", cwd=tmp_path) != run("changed.yaml", ledger, "changed", cwd=tmp_path)


class TestReplaySurvivesChange:
    """Replay reads the recorded documents as recorded: defaults a document leaves out are not written back in."""

    def test_a_scenario_omitting_a_defaulted_field_replays_identical(self, tmp_path: Path) -> None:
        text = (LIBRARY / f"{SCENARIO}.yaml").read_text(encoding="utf-8")
        lines = [line for line in text.splitlines() if "daily_opex_usd" not in line]
        assert len(lines) < len(text.splitlines()), "the scenario should set daily_opex_usd for this test to bite"
        lean = tmp_path / "lean.yaml"
        lean.write_text("\n".join(lines) + "\n", encoding="utf-8")
        ledger = tmp_path / "ledger.db"
        run("lean.yaml", ledger, "lean", cwd=tmp_path)
        replayed = cli("replay", "lean", "--ledger", str(ledger), data_dir=ledger.parent / "data")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "IDENTICAL" in replayed.stdout
        policy = Path(helios_package.__file__).parent / "policies" / "helios.yaml"
        whatif = cli(
            "whatif", "lean", "--ledger", str(ledger), "--policy", str(policy), "--json",
            data_dir=ledger.parent / "data",
        )  # fmt: skip
        assert whatif.returncode == 0, whatif.stdout + whatif.stderr


class TestResumeCommand:
    """The resume command printed when a run stops is complete: run as printed (from elsewhere), it continues."""

    def test_interrupted_interactive_run_resumes_as_printed(self, tmp_path: Path) -> None:
        work = tmp_path / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS"}}
        proc = subprocess.Popen(
            [COALITION, "run", SCENARIO, "--interactive", "--approval-wait", "8", "--bus", "memory",
             "--ledger", "rel.db", "--run-id", "stopped"],
            cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and proc.poll() is None and not escalated(work / "rel.db"):
                time.sleep(0.1)
            time.sleep(0.5)  # the run is waiting for a human now
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, out
        line = next(line for line in out.splitlines() if "continue with:" in line)
        command = shlex.split(line.split("continue with:", 1)[1])
        data_dir = command.pop(0)  # the data directory leads: the ledger key, witness and Redis live there
        assert data_dir == f"COALITION_DATA_DIR={(work / '.coalition').resolve()}"
        assert command[:3] == ["coalition", "run", "--resume"]
        assert command[command.index("--ledger") + 1] == str((work / "rel.db").resolve())
        assert command[command.index("--bus") + 1] == "memory"
        assert "--interactive" in command
        assert command[command.index("--approval-wait") + 1] == "8"
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        resumed = subprocess.run(
            [COALITION, *command[1:], "--json"], cwd=elsewhere, capture_output=True, text=True,
            env={**env, "COALITION_DATA_DIR": data_dir.split("=", 1)[1]},
            timeout=300, check=False,
        )  # fmt: skip
        assert resumed.returncode in (0, 1), resumed.stderr
        report = json.loads(resumed.stdout)
        assert report["status"] == "completed"
