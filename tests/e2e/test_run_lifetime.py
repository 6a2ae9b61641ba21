"""How a `coalition run` on its private redis-server ends when it is stopped from outside, as an operator (or the
OOM killer, or a closed terminal) stops it: real processes, the embedded redis-server, real signals.

SIGTERM and SIGHUP stop it like Ctrl-C (the resume command printed, exit 128+N); SIGKILL takes its redis-server with
it; no case leaves an orphaned redis-server, and `--resume` then completes the run on one server."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coalition.bus.embedded import EmbeddedRedis, find_redis_server
from coalition.bus.errors import EmbeddedRedisError

pytestmark = pytest.mark.e2e

COALITION = str(Path(sys.executable).with_name("coalition"))
# nine days, its first escalation on day 2: an interactive run waits for a human early, and a resume runs to the end
# in a tenth of helios-launch's 90 days
SCENARIO = "chaos-week"


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COALITION_") and k != "REDIS_URL"}
    env["COALITION_DATA_DIR"] = str(data_dir)
    return env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().split()[2] != "Z"  # a zombie is gone for our purposes
    except OSError:
        return False


def wait_until(condition: object, timeout: float, what: str) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def redis_servers_on(data_dir: Path) -> list[int]:
    """Pids of redis-server processes working in data_dir: by their working directory (redis-server chdirs to
    its --dir) or their open files. Open files alone miss a server between closing one AOF file and opening the
    next, and it opens its log only to write a line."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if "redis" not in os.readlink(proc / "exe"):  # Debian's redis-server links to redis-check-rdb
                continue
            targets = {os.readlink(proc / "cwd")} | {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(t.startswith(str(data_dir)) for t in targets) and alive(int(proc.name)):
            found.append(int(proc.name))
    return found


def escalated(ledger: Path, run_id: str) -> bool:
    if not ledger.exists():
        return False
    try:
        conn = sqlite3.connect(f"file:{ledger}?mode=ro", uri=True)
        try:
            row = conn.execute(
                "SELECT count(*) FROM entries WHERE run_id = ? AND kind = 'verdict' AND outcome = 'escalate'",
                (run_id,),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return False
    return bool(row[0])


@pytest.fixture(autouse=True)
def _needs_redis_server() -> None:
    try:
        find_redis_server()
    except EmbeddedRedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


class TestStoppedFromOutside:
    """An interactive run waiting for a human is stopped by a signal; then resumed to completion."""

    @pytest.mark.parametrize(
        ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130), (signal.SIGKILL, -9)]
    )
    def test_signal_leaves_no_redis_server_and_the_run_resumes(
        self, tmp_path: Path, sig: signal.Signals, code: int
    ) -> None:
        data = tmp_path / "d"
        run_id = f"life-{sig.name.lower()}"
        out, err = (tmp_path / "out").open("w"), (tmp_path / "err").open("w")
        child = subprocess.Popen(
            [COALITION, "run", SCENARIO, "--interactive", "--run-id", run_id],
            stdout=out, stderr=err, env=_env(data), cwd=tmp_path,
        )  # fmt: skip
        try:
            wait_until(lambda: escalated(data / "ledger.db", run_id), 120, "the run to reach an escalation")
            servers = redis_servers_on(data)
            assert len(servers) == 1, servers
            child.send_signal(sig)
            assert child.wait(timeout=60) == code
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            out.close()
            err.close()
        wait_until(lambda: not alive(servers[0]), 10, f"redis-server {servers[0]} to go with its owner")
        assert redis_servers_on(data) == []
        stdout, stderr = (tmp_path / "out").read_text(), (tmp_path / "err").read_text()
        assert "Traceback" not in stderr
        if sig != signal.SIGKILL:
            assert f"coalition run --resume --run-id {run_id}" in stdout, stdout[-500:]
        resumed = subprocess.run(
            [COALITION, "run", "--resume", "--run-id", run_id, "--no-interactive", "--json"],
            capture_output=True, text=True, env=_env(data), cwd=tmp_path, timeout=600, check=False,
        )  # fmt: skip
        assert resumed.returncode in (0, 1), resumed.stderr[-2000:]
        assert "Traceback" not in resumed.stderr
        assert redis_servers_on(data) == []
        verify = subprocess.run(
            [COALITION, "ledger", "verify"], capture_output=True, text=True, env=_env(data), cwd=tmp_path, check=False
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr


class TestKilledAttemptsStreams:
    """A run killed on a shared Redis leaves its attempt's streams there; the resume deletes them."""

    def test_resume_deletes_the_streams_of_a_killed_attempt(self, tmp_path: Path, redis_url: str) -> None:
        import redis

        data = tmp_path / "d"
        run_id = f"streams-{os.getpid()}"
        child = subprocess.Popen(
            [COALITION, "run", SCENARIO, "--interactive", "--bus", redis_url, "--run-id", run_id],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(data), cwd=tmp_path,
        )  # fmt: skip
        client = redis.Redis.from_url(redis_url)
        try:
            wait_until(lambda: escalated(data / "ledger.db", run_id), 120, "the run to reach an escalation")
            child.kill()
            child.wait(timeout=30)
            left = list(client.scan_iter(match=f"{{run-{run_id}-*"))
            assert left, "the case under test: a killed attempt leaves its streams"
            resumed = subprocess.run(
                [COALITION, "run", "--resume", "--run-id", run_id, "--bus", redis_url, "--no-interactive"],
                capture_output=True, text=True, env=_env(data), cwd=tmp_path, timeout=600, check=False,
            )  # fmt: skip
            assert resumed.returncode in (0, 1), resumed.stderr[-2000:]
            assert list(client.scan_iter(match=f"{{run-{run_id}-*")) == []
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
            for key in client.scan_iter(match=f"{{run-{run_id}-*"):
                client.delete(key)
            client.close()


class TestOneServerPerDataDir:
    """The data directory's redis-server has one owner; a server left by a dead owner is stopped, not joined."""

    def test_a_second_owner_is_refused_while_the_first_lives(self, tmp_path: Path) -> None:
        with EmbeddedRedis(tmp_path) as first:
            with pytest.raises(EmbeddedRedisError, match=f"pid {os.getpid()}"):
                EmbeddedRedis(tmp_path).start()
            assert first.client().ping()

    def test_a_server_left_behind_is_stopped_before_a_new_one_starts(self, tmp_path: Path) -> None:
        """An owner that cannot ask for the parent-death signal (it starts the server off the main thread) is
        SIGKILLed: its server lives on, and the next start stops it first — never two on the same AOF."""
        script = (
            "import sys, threading, time\n"
            "from pathlib import Path\n"
            "from coalition.bus.embedded import EmbeddedRedis\n"
            "box = []\n"
            "t = threading.Thread(target=lambda: box.append(EmbeddedRedis(Path(sys.argv[1])).start()))\n"
            "t.start(); t.join()\n"
            "print(box[0].pid, flush=True)\n"
            "time.sleep(600)\n"
        )
        owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        try:
            assert owner.stdout is not None
            orphan = int(owner.stdout.readline())
            owner.kill()
            owner.wait()
        finally:
            if owner.poll() is None:
                owner.kill()
                owner.wait()
            assert owner.stdout is not None
            owner.stdout.close()
        time.sleep(0.5)
        assert alive(orphan), "the case under test: a server that outlived its owner"
        with EmbeddedRedis(tmp_path) as server:
            assert not alive(orphan)
            assert server.pid != orphan
            assert redis_servers_on(tmp_path) == [server.pid]
        assert redis_servers_on(tmp_path) == []

    def test_the_server_dies_with_a_killed_owner(self, tmp_path: Path) -> None:
        """Started from the main thread, the server gets SIGTERM from the kernel when its owner is SIGKILLed."""
        script = (
            "import sys, time\n"
            "from pathlib import Path\n"
            "from coalition.bus.embedded import EmbeddedRedis\n"
            "print(EmbeddedRedis(Path(sys.argv[1])).start().pid, flush=True)\n"
            "time.sleep(600)\n"
        )
        owner = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, text=True)
        assert owner.stdout is not None
        server = int(owner.stdout.readline())
        owner.kill()
        owner.wait()
        owner.stdout.close()
        wait_until(lambda: not alive(server), 10, "the redis-server to follow its owner")
