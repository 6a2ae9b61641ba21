"""Bad input as an operator or an attacker hands it over, through the real CLI: every case is one line on stderr
naming what is wrong and where, the documented exit code, no traceback, and bounded time and memory (the child's
own CPU time over a trivially refused command, and its peak RSS, measured with wait4)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from coalition.governance.policy import default_policy

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
REPO = Path(__file__).resolve().parents[2]
LIBRARY = REPO / "packs" / "helios" / "scenarios"
POLICY = REPO / "packs" / "helios" / "policies" / "helios.yaml"
MAX_EXTRA_CPU_S = 1.0  # over the same command refused at its first option
MAX_RSS_MB = 200
MAX_WALL_S = 60.0  # a stall, whatever the machine's load


@dataclass(frozen=True)
class Outcome:
    code: int
    stdout: str
    stderr: str
    cpu_s: float
    rss_mb: float


# The child's peak RSS must be its own: Linux carries a process's high-water mark across exec (and a vfork child
# inherits its parent's), so a CLI started straight from a large pytest process would report pytest's size. A small
# launcher forks the CLI and reports the grandchild's rusage.
LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump({"status": status, "cpu": usage.ru_utime + usage.ru_stime, "rss_kb": usage.ru_maxrss}, out)
"""


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> Outcome:
    """Run the CLI as a grandchild; its own CPU seconds and peak RSS come from wait4 in a small launcher."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
    full_env.update(env or {})
    where = cwd or Path.cwd()
    out_path, err_path, usage_path = where / ".out", where / ".err", where / ".usage"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        launcher = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER, str(usage_path), COALITION, *args],
            stdout=out, stderr=err, env=full_env, cwd=cwd, start_new_session=True,
        )  # fmt: skip
        try:
            launcher.wait(timeout=MAX_WALL_S)
        except subprocess.TimeoutExpired:
            os.killpg(launcher.pid, signal.SIGKILL)
            launcher.wait()
            pytest.fail(f"coalition {' '.join(args)[:80]} still running after {MAX_WALL_S} s")
    usage = json.loads(usage_path.read_text())
    return Outcome(
        code=os.waitstatus_to_exitcode(usage["status"]),
        stdout=out_path.read_text(errors="replace"),
        stderr=err_path.read_text(errors="replace"),
        cpu_s=usage["cpu"],
        rss_mb=usage["rss_kb"] / 1024,
    )


@dataclass(frozen=True)
class Case:
    """One bad input: how to build it in a scratch directory, the command, the exit code and words of the line."""

    name: str
    args: Callable[[Path], list[str]]
    words: tuple[str, ...]
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    files: Callable[[Path], None] = lambda _: None


def _policy_with(text: str) -> Callable[[Path], None]:
    return lambda d: (d / "policy.yaml").write_text(text, encoding="utf-8")


def _scenario_edit(source: str, old: str, new: str, count: int = 1) -> Callable[[Path], None]:
    def write(d: Path) -> None:
        text = (LIBRARY / f"{source}.yaml").read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {source}.yaml"
        (d / "s.yaml").write_text(text.replace(old, new, count), encoding="utf-8")

    return write


def _laughs(levels: int = 9) -> str:
    """The classic "billion laughs" as a policy: 1.4 KB that expands to 9^9 strings."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    names = "abcdefghij"[:levels]
    for prev, name in itertools.pairwise(names):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _binary_policy(d: Path) -> None:
    (d / "policy.yaml").write_bytes(POLICY.read_bytes() + b"\n# \xff\xfe junk\n")


def _control_policy(d: Path) -> None:
    (d / "policy.yaml").write_bytes(POLICY.read_bytes() + b"\nnote: \x00\x01\x02\n")


def _bad_dotenv(d: Path) -> None:
    (d / ".env").write_bytes(b"COALITION_LOG_LEVEL=info\n# caf\xe9\n")


def _big_scenario(d: Path) -> None:
    text = (LIBRARY / "price-spike.yaml").read_text(encoding="utf-8")
    (d / "s.yaml").write_text(text + "#" + "x" * 1_100_000 + "\n", encoding="utf-8")


DUPLICATE = POLICY.read_text(encoding="utf-8").replace("surge_cap_pct: 25", "surge_cap_pct: 25\n    surge_cap_pct: 90")
MEMORY = ["--bus", "memory"]


def _run(*extra: str) -> Callable[[Path], list[str]]:
    return lambda d: ["run", *extra, *MEMORY, "--ledger", str(d / "l.db")]


_COMPLETED: dict[str, bytes] = {}


def _completed_run(d: Path) -> None:
    """A finished helios-launch run in d/l.db (run once per session, then copied)."""
    if "db" not in _COMPLETED:
        scratch = d / "first"
        scratch.mkdir()
        done = cli("run", "helios-launch", *MEMORY, "--ledger", str(scratch / "l.db"), "--run-id", "done", cwd=scratch)
        assert done.code == 0, done.stderr
        _COMPLETED["db"] = (scratch / "l.db").read_bytes()
    (d / "l.db").write_bytes(_COMPLETED["db"])


def _escalated(d: Path) -> str:
    import sqlite3

    conn = sqlite3.connect(d / "l.db")
    try:
        row = conn.execute("SELECT subject FROM entries WHERE kind = 'verdict' AND outcome = 'escalate'").fetchone()
    finally:
        conn.close()
    return str(row[0])


CASES = [
    Case("policy: billion laughs", _run("helios-launch", "--policy", "policy.yaml"), ("policy.yaml", "line", "aliases"),
         files=_policy_with(_laughs())),
    Case("policy: recursive alias", _run("helios-launch", "--policy", "policy.yaml"), ("policy.yaml", "cycle"),
         files=_policy_with("a: &a [1, *a]\n")),
    Case("policy: duplicate key", _run("helios-launch", "--policy", "policy.yaml"),
         ("policy.yaml", "line 40", "duplicate key 'surge_cap_pct'", "first at line 39"),
         files=_policy_with(DUPLICATE)),
    Case("policy: non-UTF-8 byte", _run("helios-launch", "--policy", "policy.yaml"),
         ("policy.yaml", "not UTF-8", "0xff"), files=_binary_policy),
    Case("policy: binary control bytes", _run("helios-launch", "--policy", "policy.yaml"),
         ("policy.yaml", "invalid YAML", "control characters"), files=_control_policy),
    Case("policy: nested 20,000 deep", _run("helios-launch", "--policy", "policy.yaml"),
         ("policy.yaml", "line 1", "nested deeper"), files=_policy_with("a: " + "[" * 20_000 + "]" * 20_000 + "\n")),
    Case("policy: a huge number", _run("helios-launch", "--policy", "policy.yaml"), ("policy.yaml", "surge_cap_pct"),
         files=_policy_with(POLICY.read_text(encoding="utf-8").replace("surge_cap_pct: 25", "surge_cap_pct: 1e300"))),
    Case("scenario: nested 20,000 deep", _run("s.yaml"), ("s.yaml", "nested deeper"),
         files=lambda d: (d / "s.yaml").write_text("a: " + "{b: " * 20_000 + "1" + "}" * 20_000 + "\n")),
    Case("scenario: larger than 1 MB", _run("s.yaml"), ("s.yaml", "larger than"), files=_big_scenario),
    Case("scenario: cash_usd 1e300", _run("s.yaml"), ("s.yaml", "world.cash_usd", "less than"),
         files=_scenario_edit("billing-disputes", "cash_usd: 3000000", "cash_usd: 1e300")),
    Case("scenario: negative cash", _run("s.yaml"), ("s.yaml", "world.cash_usd", "greater than"),
         files=_scenario_edit("billing-disputes", "cash_usd: 3000000", "cash_usd: -5")),
    Case("scenario: seed 2^64", _run("s.yaml"), ("s.yaml", "seed"),
         files=_scenario_edit("billing-disputes", "seed: 4901", f"seed: {2**64}")),
    Case("scenario: unknown dispute kind", _run("s.yaml"), ("s.yaml", "events[0].data.kind", "unknown dispute kind"),
         files=_scenario_edit("billing-disputes", "kind: late_fee", "kind: goodwill")),
    Case("scenario: unknown channel", _run("s.yaml"), ("s.yaml", "events[0].data.channel", "unknown channel"),
         files=_scenario_edit("billing-disputes", "channel: phone", "channel: pigeon")),
    Case("scenario: unknown customer", _run("s.yaml"), ("s.yaml", "events[0].data.customer_id", "no customer"),
         files=_scenario_edit("billing-disputes", "customer_id: TX-B0001", "customer_id: TX-B9999")),
    Case("scenario: unknown event-data key", _run("s.yaml"), ("s.yaml", "events[0].data.amount:", "unknown key"),
         files=_scenario_edit("billing-disputes", "case_id: case-1001,", "case_id: case-1001, amount: 35,")),
    Case("scenario: event number out of range", _run("s.yaml"), ("s.yaml", "events[4].data.facts.lost_kwh", "range"),
         files=_scenario_edit("billing-disputes", "lost_kwh: 1500", "lost_kwh: 1e300")),
    Case("--seed -1", _run("helios-launch", "--seed", "-1"), ("--seed",)),
    Case("--seed 2^64", _run("helios-launch", "--seed", str(2**64)), ("--seed",)),
    Case("--run-id with path separators", _run("helios-launch", "--run-id", "../../etc/x y"),
         ("--run-id", "not a valid run id")),
    Case("--run with path separators", lambda d: ["ledger", "list", "--run", "../x", "--ledger", str(d / "l.db")],
         ("--run", "not a valid run id"), files=_completed_run),
    Case("COALITION_LLM_CFO", _run("helios-launch"), ("COALITION_LLM_CFO", "no such agent"),
         env={"COALITION_LLM_CFO": "openai:gpt-4o-mini"}),
    Case("REDIS_URL=not a url", lambda d: ["run", "helios-launch", "--bus", "redis", "--ledger", str(d / "l.db")],
         ("REDIS_URL", "redis://"), env={"REDIS_URL": "not a url"}),
    Case(".env with a non-UTF-8 byte", _run("helios-launch"), (".env", "not UTF-8"), files=_bad_dotenv),
    Case("ledger verify on an empty file", lambda d: ["ledger", "verify", "--ledger", str(d / "empty.db")],
         ("empty.db", "not a Coalition ledger"), files=lambda d: (d / "empty.db").write_bytes(b"")),
    Case("ledger verify on a text file", lambda d: ["ledger", "verify", "--ledger", str(d / "notes.txt")],
         ("notes.txt",), files=lambda d: (d / "notes.txt").write_text("not a database\n" * 100)),
    Case("a decision on a finished run", lambda d: ["approvals", "approve", _escalated(d), "--as", "carol",
                                                     "--reason", "late", "--ledger", str(d / "l.db"), "--run", "done"],
         ("refused", "has finished"), code=1, files=_completed_run),
]  # fmt: skip


@pytest.fixture(scope="module")
def baseline_cpu(tmp_path_factory: pytest.TempPathFactory) -> float:
    """CPU seconds of the CLI refusing its first option: start-up and imports, which every case pays too."""
    d = tmp_path_factory.mktemp("baseline")
    samples = [cli("run", "helios-launch", "--bus", "carrier-pigeon", cwd=d) for _ in range(2)]
    assert all(s.code == 2 for s in samples)
    return max(s.cpu_s for s in samples)


class TestBadInputTable:
    """Every bad input of issue 10 item 7: one line naming what and where, exit code, bounded CPU and memory."""

    @pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
    def test_one_line_exit_code_and_bounds(self, case: Case, tmp_path: Path, baseline_cpu: float) -> None:
        case.files(tmp_path)
        args = case.args(tmp_path)
        done = cli(*args, env=case.env, cwd=tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.code == case.code, done.stderr[-2000:]
        assert len(lines) == 1, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
        for word in case.words:
            assert word in lines[0], lines[0]
        assert len(lines[0]) < 400, "the line names the problem; it does not echo the input"
        assert done.cpu_s - baseline_cpu < MAX_EXTRA_CPU_S, f"{done.cpu_s:.2f} s CPU (start-up {baseline_cpu:.2f} s)"
        assert done.rss_mb < MAX_RSS_MB, f"peak RSS {done.rss_mb:.0f} MB"


class TestNothingIsWrittenByReading:
    """Read-only commands never write: a bad file stays exactly as it was."""

    def test_verify_leaves_an_empty_file_empty(self, tmp_path: Path) -> None:
        target = tmp_path / "empty.db"
        target.write_bytes(b"")
        assert cli("ledger", "verify", "--ledger", str(target), cwd=tmp_path).code == 2
        assert target.read_bytes() == b""
        assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == ["empty.db"]

    def test_list_and_verify_a_ledger_on_a_read_only_disk(self, tmp_path: Path, tmpfs: Callable[[str], Path]) -> None:
        """A ledger on read-only media (a tmpfs remounted ro: even root cannot write) lists and verifies (run here,
        so that the key that signed its checkpoints is in this directory's data dir)."""
        done = cli("run", "helios-launch", *MEMORY, "--ledger", str(tmp_path / "l.db"), "--run-id", "ro", cwd=tmp_path)
        assert done.code == 0, done.stderr
        mount = tmpfs("8m")
        (mount / "l.db").write_bytes((tmp_path / "l.db").read_bytes())
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        verify = cli("ledger", "verify", "--ledger", str(mount / "l.db"), cwd=tmp_path)
        assert verify.code == 0, verify.stderr
        assert verify.stdout.startswith("OK:")
        listed = cli("ledger", "list", "--ledger", str(mount / "l.db"), "--json", cwd=tmp_path)
        assert listed.code == 0, listed.stderr
        explained = cli("ledger", "explain", "5", "--ledger", str(mount / "l.db"), cwd=tmp_path)
        assert explained.code == 0, explained.stderr


class TestDefaultsStillLoad:
    """The bounds refuse nothing Coalition ships."""

    def test_every_library_scenario_and_the_policy_load(self) -> None:
        from coalition.scenarios.spec import list_library, load_scenario

        assert default_policy().name
        for name in list_library():
            assert load_scenario(name).name == name
