"""Console hardening, attacked from the side: two real `coalition serve` processes on two ports sharing one users
file, a session cookie replayed across them, foreign `Host` headers (DNS rebinding), 50 wrong passwords while an
approver reads the inbox, spreadsheet formulas hidden behind blanks in an export, and the data files' modes."""

from __future__ import annotations

import csv
import io
import os
import re
import socket
import stat
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient

from coalition.bus.clock import SimulatedClock
from coalition.bus.memory import MemoryBus
from coalition.ledger.entry import EntryDraft
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import RunnerOptions
from coalition.scenarios.spec import load_scenario
from coalition.web.app import create_app
from coalition.web.login_throttle import ThrottlePolicy
from coalition.web.passwords import hash_password
from coalition.web.users_store import UserStore

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
RUN = "hardening"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """One `coalition serve` process."""

    port: int
    process: subprocess.Popen[bytes]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cookie(self) -> str:
        return f"coalition_session_{self.port}"


def _start(tmp: Path, port: int) -> Server:
    cli = Path(sys.executable).with_name("coalition")
    env = {**os.environ, "COALITION_DATA_DIR": str(tmp / "data")}
    with (tmp / f"serve-{port}.log").open("wb") as log:
        process = subprocess.Popen(
            [str(cli), "serve", "--port", str(port), "--ledger", str(tmp / "data" / "ledger.db")],
            cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=log,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"serve exited: {(tmp / f'serve-{port}.log').read_text()}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/login", timeout=1)
            return Server(port, process)
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise AssertionError("serve did not answer within 60 s")


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Server, Path]]:
    """A two-day interactive helios-launch ledger, two users, and two consoles over the same files."""
    tmp = tmp_path_factory.mktemp("hardening")
    data = tmp / "data"
    old_umask = os.umask(0o022)  # the usual umask: files would be 0644 unless created private
    try:
        with SqliteLedger(data / "ledger.db") as ledger:
            bus = MemoryBus(namespace="hardening")
            options = RunnerOptions(interactive=True, approval_wait_seconds=0, poll_seconds=0.01)
            scenario = load_scenario("helios-launch").model_copy(update={"days": 2})
            assemble_run(scenario, bus=bus, ledger=ledger, run_id=RUN, options=options).run()
            bus.close()
        store = UserStore(data / "users.db")
        for name in ("carol", "dave"):
            store.add(name, ["approver"], hash_password(PASSWORD), now=datetime.now(UTC))
        store.close()
        a, b = _start(tmp, _free_port()), _start(tmp, _free_port())
    finally:
        os.umask(old_umask)
    try:
        yield a, b, data
    finally:
        for server in (a, b):
            server.process.terminate()
            server.process.wait(10)


def _login(server: Server, name: str, password: str = PASSWORD, client: httpx.Client | None = None) -> httpx.Response:
    own = client or httpx.Client(base_url=server.base, timeout=30)
    form = own.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token is not None, form.text[:300]
    response = own.post(
        "/login", data={"name": name, "password": password, "csrf_token": token.group(1), "next": "/approvals"}
    )
    if client is None:
        own.close()
    return response


def _access(data: Path) -> list[dict[str, object]]:
    path = data / "console-access.log"
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


class TestSessionBoundToInstance:
    """A session works only on the console instance (host and port) where it was opened."""

    def test_cookie_replayed_on_another_port_is_refused(self, servers: tuple[Server, Server, Path]) -> None:
        """carol's cookie from console A, sent to console B (same machine, same users file) under either cookie
        name, gets no session there; A still accepts it."""
        a, b, _ = servers
        with httpx.Client(base_url=a.base, timeout=30) as client:
            response = _login(a, "carol", client=client)
            assert response.status_code == 303, response.text[:300]
            token = client.cookies.get(a.cookie)
            assert token, f"no {a.cookie} cookie: {dict(client.cookies)}"
            assert "coalition_session" not in client.cookies  # the name carries the port
        assert httpx.get(f"{a.base}/api/approvals", cookies={a.cookie: token}).status_code == 200
        for name in (a.cookie, b.cookie, "coalition_session"):
            replay = httpx.get(f"{b.base}/api/approvals", cookies={name: token})
            assert replay.status_code == 401, (name, replay.text[:200])
            page = httpx.get(f"{b.base}/approvals", cookies={name: token})
            assert page.status_code == 303
            assert page.headers["location"].startswith("/login")

    def test_cookie_with_a_forged_host_of_the_right_console_is_refused(
        self, servers: tuple[Server, Server, Path]
    ) -> None:
        """The same token sent to A under A's name but through another loopback name still is not A's instance."""
        a, _, _ = servers
        with httpx.Client(base_url=a.base, timeout=30) as client:
            assert _login(a, "dave", client=client).status_code == 303
            token = client.cookies.get(a.cookie)
        other = httpx.get(
            f"{a.base}/api/approvals", cookies={a.cookie: str(token)}, headers={"Host": f"localhost:{a.port}"}
        )
        assert other.status_code == 401


class TestHostAllowlist:
    """Only loopback names with the console's own port are answered (DNS rebinding defence)."""

    @pytest.mark.parametrize(
        "host",
        ["evil.example", "evil.example:{port}", "127.0.0.1.nip.io:{port}", "127.0.0.1:{other}", "localhost:1", ""],
    )
    def test_foreign_host_is_refused_before_any_route(self, servers: tuple[Server, Server, Path], host: str) -> None:
        """A rebinding page reaches the console with its own name as Host: 400, one line naming the header."""
        a, b, data = servers
        header = host.format(port=a.port, other=b.port)
        response = httpx.get(f"{a.base}/login", headers={"Host": header})
        assert response.status_code == 400
        assert "Host header" in response.text
        assert "not one this console answers to" in response.text
        assert "csrf_token" not in response.text  # no login form, no cookie for the foreign origin
        assert "set-cookie" not in response.headers
        api = httpx.get(f"{a.base}/api/runs", headers={"Host": header})
        assert api.status_code == 400
        assert "Host header" in api.json()["detail"]
        assert any(e["event"] == "host_refused" for e in _access(data))

    @pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "[::1]"])
    def test_loopback_names_with_the_port_are_answered(self, servers: tuple[Server, Server, Path], name: str) -> None:
        a, _, _ = servers
        assert httpx.get(f"{a.base}/login", headers={"Host": f"{name}:{a.port}"}).status_code == 200


class TestForwardedFor:
    """The client address the throttle counts is the socket's: a guesser cannot be a new client per request."""

    def test_a_forged_x_forwarded_for_does_not_make_a_new_client(self, tmp_path: Path) -> None:
        """A local guesser naming another address in X-Forwarded-For on each wrong password (user names that do
        not exist, so no user's count stops it): after the free failures the client waits (429), and the access log
        names the address the connection came from."""
        with SqliteLedger(tmp_path / "data" / "ledger.db"):
            pass
        server = _start(tmp_path, _free_port())
        try:
            free = ThrottlePolicy().free_failures
            statuses = []
            with httpx.Client(base_url=server.base, timeout=30) as client:
                for n in range(free + 3):
                    client.headers["X-Forwarded-For"] = f"203.0.113.{n + 1}"
                    statuses.append(_login(server, f"nobody{n}", "x" * 9, client=client).status_code)
        finally:
            server.process.terminate()
            server.process.wait(10)
        assert statuses == [401] * free + [429] * 3, statuses
        assert {e["client"] for e in _access(tmp_path / "data")} == {"127.0.0.1"}


@pytest.mark.serial  # compares the inbox latency with its baseline: another test beside it skews both
class TestLoginThrottle:
    """Wrong passwords: a few answered, then refused without hashing; the inbox stays fast for others."""

    def test_fifty_wrong_passwords_cost_a_few_hashes_and_the_inbox_stays_fast(
        self, servers: tuple[Server, Server, Path]
    ) -> None:
        """8 parallel guessers send 50 wrong passwords for carol (and 50 for names that do not exist); dave's inbox
        latency stays close to its baseline, at most a handful of guesses are checked (each refusal says when to
        retry), and each attempt is in the access log."""
        _, b, data = servers
        with httpx.Client(base_url=b.base, timeout=30) as reader:
            assert _login(b, "dave", client=reader).status_code == 303

            def inbox_ms(n: int) -> list[float]:
                out = []
                for _ in range(n):
                    t0 = time.perf_counter()
                    assert reader.get("/approvals").status_code == 200
                    out.append((time.perf_counter() - t0) * 1000)
                return out

            inbox_ms(3)
            baseline = statistics.median(inbox_ms(15))
            statuses: list[int] = []
            retry_after: list[str] = []
            lock = threading.Lock()
            guesses = [("carol", f"guess-{i}") for i in range(50)] + [(f"nobody{i}", "x" * 9) for i in range(50)]

            def guesser(k: int) -> None:
                with httpx.Client(base_url=b.base, timeout=60) as own:
                    for name, password in guesses[k::8]:
                        response = _login(b, name, password, client=own)
                        with lock:
                            statuses.append(response.status_code)
                            retry_after.append(response.headers.get("retry-after", ""))

            threads = [threading.Thread(target=guesser, args=(k,)) for k in range(8)]
            for thread in threads:
                thread.start()
            during = inbox_ms(15)
            for thread in threads:
                thread.join(120)
        assert len(statuses) == 100
        assert set(statuses) <= {401, 429}
        checked = statuses.count(401)
        assert checked <= 2 * ThrottlePolicy().free_failures + 2, statuses
        assert statuses.count(429) >= 90
        assert statistics.median(during) <= 2 * baseline + 60, (baseline, during)
        assert all(int(r) >= 1 for r, s in zip(retry_after, statuses, strict=True) if s == 429)
        events = [e for e in _access(data) if e.get("client") == "127.0.0.1"]
        kinds = [e["event"] for e in events]
        assert kinds.count("login_failed") == checked
        assert kinds.count("login_refused") >= 91
        assert any(e["event"] == "login" and e["user"] == "dave" for e in events)


class TestLockout:
    """With a simulated clock: the delay grows, the Nth failure locks the user, the lockout is recorded."""

    @pytest.fixture
    def console(self, tmp_path: Path) -> Iterator[tuple[TestClient, SimulatedClock, Path]]:
        clock = SimulatedClock(datetime(2026, 1, 1, 12, tzinfo=UTC))
        with SqliteLedger(tmp_path / "ledger.db"):
            pass
        app = create_app(tmp_path / "ledger.db", tmp_path / "users.db", clock=clock)
        app.state.console.users.add("carol", ["approver"], hash_password(PASSWORD), now=clock.now())
        with TestClient(app, base_url="http://127.0.0.1") as client:
            yield client, clock, tmp_path
        app.state.console.close()

    def _try(self, client: TestClient, password: str) -> int:
        client.cookies.clear()
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        data = {"name": "carol", "password": password, "csrf_token": token.group(1)}
        return client.post("/login", data=data, follow_redirects=False).status_code

    def test_growing_delay_then_lockout(self, console: tuple[TestClient, SimulatedClock, Path]) -> None:
        """Each failure after the free ones makes the next attempt wait longer (an early retry is refused without
        being counted); the 10th locks carol out for 15 minutes, even with her right password."""
        client, clock, tmp = console
        policy = ThrottlePolicy()
        for failures in range(1, policy.user_lockout + 1):
            assert self._try(client, f"wrong-{failures}") == 401
            delay = policy.delay(failures)
            if delay and failures < policy.user_lockout:
                assert self._try(client, "early retry") == 429
            clock.advance(delay + timedelta(milliseconds=1))
        delays = [policy.delay(n) for n in range(1, policy.user_lockout + 1)]
        assert delays == sorted(delays)
        assert delays[policy.free_failures] > delays[policy.free_failures - 1]
        assert self._try(client, PASSWORD) == 429  # locked: the right password waits too
        clock.advance(policy.lockout - timedelta(seconds=90))
        assert self._try(client, PASSWORD) == 429
        clock.advance(timedelta(seconds=91))
        assert self._try(client, PASSWORD) == 303
        events = [e["event"] for e in _access(tmp)]
        assert events.count("lockout") == 1
        assert events.count("login") == 1
        assert events.count("login_failed") == policy.user_lockout

    def test_unlock_command_clears_the_lockout(self, console: tuple[TestClient, SimulatedClock, Path]) -> None:
        client, clock, tmp = console
        policy = ThrottlePolicy()
        for n in range(policy.user_lockout):
            self._try(client, f"wrong-{n}")
            clock.advance(policy.max_delay + timedelta(seconds=1))
        assert self._try(client, PASSWORD) == 429
        cli = Path(sys.executable).with_name("coalition")
        done = subprocess.run(
            [str(cli), "users", "unlock", "carol", "--users", str(tmp / "users.db")],
            check=False,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0
        assert "unlocked carol" in done.stdout
        # the client address is still counted (20 before its own lockout), the user name is free again
        assert self._try(client, PASSWORD) == 303


class TestExportFormulas:
    """A rationale that a spreadsheet would run as a formula is exported with a leading quote, blanks or not."""

    CELLS = (
        "=1+1",
        " =1+1",
        '\t=HYPERLINK("http://x")',
        "\r=1",
        "\n@SUM(A1)",
        "  +cmd",
        "\u00a0-2+3",
        "\t\tx",
        "\uff1d1+1",
    )

    def test_csv_cells_behind_blanks_are_quoted(self, tmp_path: Path) -> None:
        with SqliteLedger(tmp_path / "ledger.db") as ledger:
            ledger.append(
                [
                    EntryDraft(
                        run_id="csv",
                        sim_time=datetime(2025, 3, 1, tzinfo=UTC),
                        actor="system",
                        actor_kind="system",
                        kind="system",
                        subject=f"s{i}",
                        rationale=text,
                    )
                    for i, text in enumerate(self.CELLS)
                ]
            )
        app = create_app(tmp_path / "ledger.db", tmp_path / "users.db")
        state = app.state.console
        user = state.users.add("audrey", ["auditor"], hash_password(PASSWORD), now=datetime.now(UTC))
        token, _ = state.users.open_session(user, now=datetime.now(UTC), ttl=timedelta(hours=1), instance="127.0.0.1")
        with TestClient(app, base_url="http://127.0.0.1", cookies={"coalition_session": token}) as client:
            body = client.get("/ledger/export?run=csv&format=csv").text
        state.close()
        rows = list(csv.DictReader(io.StringIO(body)))
        assert [r["rationale"] for r in rows] == ["'" + text for text in self.CELLS]


class TestDataFileModes:
    """users.db, ledger.db (with WAL, SHM and writer lock) and the access log are created owner-readable only."""

    def test_files_are_0600_under_a_0022_umask(self, servers: tuple[Server, Server, Path]) -> None:
        _, _, data = servers
        names = ["users.db", "ledger.db", "ledger.db-wal", "ledger.db-shm", "ledger.db-writer", "console-access.log"]
        modes = {n: stat.S_IMODE((data / n).stat().st_mode) for n in names if (data / n).exists()}
        assert {"users.db", "ledger.db", "console-access.log"} <= set(modes)
        assert modes == dict.fromkeys(modes, 0o600), {n: oct(m) for n, m in modes.items()}

    def test_a_cli_run_creates_its_ledger_0600(self, tmp_path: Path) -> None:
        cli = Path(sys.executable).with_name("coalition")
        env = {**os.environ, "COALITION_DATA_DIR": str(tmp_path / "d")}
        done = subprocess.run(
            [str(cli), "run", "price-spike", "--bus", "memory", "--seed", "1"],
            cwd=tmp_path, env=env, check=False, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode in (0, 1), done.stderr[-500:]
        for path in (tmp_path / "d").glob("ledger.db*"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, (path.name, oct(path.stat().st_mode))

    def test_a_sweep_and_agent_workers_leave_nothing_others_can_read(self, tmp_path: Path, redis_url: str) -> None:
        """What a sweep on its private redis-server (its append-only file holds every message of the runs, its log)
        and a run on agent workers add to the data directory (workers' and sweep workers' logs) is out of other
        users' reach: the file is owner-only, or a directory on its way is. Public by design: the producers'
        public keys and the witness store's signed checkpoints."""
        cli = Path(sys.executable).with_name("coalition")
        data = tmp_path / "d"
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"} | {"COALITION_DATA_DIR": str(data)}
        commands = (
            ["sweep", "price-spike", "--seeds", "1", "--jobs", "1"],
            ["run", "price-spike", "--bus", redis_url, "--agent-workers", "1", "--run-id", "modes"],
        )
        old = os.umask(0o022)
        try:
            for command in commands:
                done = subprocess.run(
                    [str(cli), *command], cwd=tmp_path, env=env, check=False, capture_output=True, text=True,
                    timeout=300,
                )  # fmt: skip
                assert done.returncode == 0, done.stderr[-1000:]
        finally:
            os.umask(old)
        assert [(data / d).is_dir() for d in ("redis", "sweeps", "workers")] == [True] * 3

        def shut(path: Path) -> bool:
            return not stat.S_IMODE(path.stat().st_mode) & 0o077

        readable = [
            str(path.relative_to(data))
            for path in data.rglob("*")
            if path.is_file()
            and path.suffix not in (".pub", ".checkpoint")
            and not shut(path)
            and not any(shut(data / parent) for parent in path.relative_to(data).parents if parent != Path("."))
        ]
        assert readable == [], readable
