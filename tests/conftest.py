"""Shared fixtures: a real Redis (the local server, else a private one), buses over it and in memory, envelopes."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import HealthCheck, settings

from coalition.bus.base import Bus
from coalition.bus.embedded import EmbeddedRedis, free_tcp_port
from coalition.bus.errors import EmbeddedRedisError
from coalition.bus.memory import MemoryBus
from coalition.bus.redis_streams import RedisStreamsBus

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"

# Property tests check properties, not speed (speed lives in benchmarks): no per-example deadline and no "too slow"
# health check, which a loaded machine running the suite on every core tripped (an example of the words check
# took over 200 ms under load, with or without the change being tested).
settings.register_profile("coalition", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("coalition")


def service_unavailable(reason: str) -> None:
    """A needed service is missing: a failure in CI (CI=true), a skip with the reason elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so this is a failure, not a skip)")
    pytest.skip(reason)


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, protocol=2, socket_timeout=0.5, socket_connect_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """COALITION_TEST_REDIS_URL, else 127.0.0.1:6379 if it answers PING, else a private redis-server on a free port."""
    url = os.environ.get("COALITION_TEST_REDIS_URL", LOCAL_REDIS_URL)
    if redis_answers(url):
        yield url
        return
    try:
        server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_tcp_port(), appendonly=False).start()
    except EmbeddedRedisError as exc:
        service_unavailable(f"no Redis at {url} and no redis-server to start: {exc}")
        return
    try:
        yield server.url
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A 3-node Redis Cluster on free loopback ports, started with the machine's redis-server for the session."""
    from redis_cluster import redis_cluster

    try:
        cluster = redis_cluster(tmp_path_factory.mktemp("cluster"))
        url = cluster.__enter__()
    except (EmbeddedRedisError, RuntimeError, OSError) as exc:
        service_unavailable(f"could not start a 3-node Redis Cluster: {exc}")
        return
    try:
        yield url
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture
def cluster_bus(redis_cluster_url: str) -> Iterator[RedisStreamsBus]:
    """A RedisStreamsBus on the 3-node cluster, on a namespace (hash tag) of its own."""
    bus = RedisStreamsBus(redis_cluster_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield bus
    finally:
        bus.delete_namespace()
        bus.close()


@pytest.fixture
def redis_bus(redis_url: str) -> Iterator[RedisStreamsBus]:
    """A RedisStreamsBus on a namespace of its own; its streams are deleted afterwards."""
    bus = RedisStreamsBus(redis_url, namespace=f"test-{uuid.uuid4().hex[:12]}")
    try:
        yield bus
    finally:
        bus.delete_namespace()
        bus.close()


@pytest.fixture
def memory_bus() -> Iterator[MemoryBus]:
    bus = MemoryBus()
    yield bus
    bus.close()


@pytest.fixture(params=["memory", "redis", "cluster"])
def bus(request: pytest.FixtureRequest) -> Bus:
    """Each backend in turn: the contract suites run once per backend."""
    backend: Bus = request.getfixturevalue(f"{request.param}_bus")
    return backend


@pytest.fixture(autouse=True, scope="session")
def _private_state_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What the CLI and console remember (the newest checkpoint seen per ledger) goes to a directory of the test
    session, inherited by the subprocesses tests start, never to the user's ~/.local/state."""
    os.environ.setdefault("COALITION_STATE_DIR", str(tmp_path_factory.mktemp("state")))


@pytest.fixture(autouse=True, scope="session")
def _quiet_logs() -> None:
    """Library code logs through structlog; tests keep warnings and errors only."""
    from coalition.logs import configure_logging

    configure_logging("warning", "console")


# -- PostgreSQL ------------------------------------------------------------------------------------------------

LOCAL_POSTGRES_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/test"


class PostgresServer:
    """A PostgreSQL server for one test session: an owner role and an app role of its own, and a fresh ledger
    schema per `new_ledger_url()` (the app role's URL). Everything is dropped when the session ends."""

    def __init__(self, admin_url: str) -> None:
        suffix = uuid.uuid4().hex[:10]
        self.admin_url = admin_url
        self.owner_role = f"coalition_t{suffix}_owner"
        self.app_role = f"coalition_t{suffix}_app"
        self._prefix = f"coalition_t{suffix}_s"
        self._schemas: list[str] = []

    def new_schema_name(self) -> str:
        """A schema name of this session, dropped when it ends (for a schema a test sets up itself)."""
        schema = f"{self._prefix}{len(self._schemas)}"
        self._schemas.append(schema)
        return schema

    def new_ledger_url(self) -> str:
        """A new, empty ledger schema set up by the admin; the URL connects as the app role."""
        from coalition.ledger.postgres import setup_schema

        schema = self.new_schema_name()
        setup_schema(self.admin_url, schema=schema, owner_role=self.owner_role, app_role=self.app_role)
        return self.app_url(schema)

    def app_url(self, schema: str) -> str:
        from urllib.parse import urlsplit, urlunsplit

        parts = urlsplit(self.admin_url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return urlunsplit(parts._replace(netloc=f"{self.app_role}@{host}", query=f"schema={schema}"))

    def cleanup(self) -> None:
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for schema in self._schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            for role in (self.app_role, self.owner_role):
                if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone():
                    conn.execute(f'DROP OWNED BY "{role}"')
                    conn.execute(f'DROP ROLE "{role}"')


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """COALITION_TEST_POSTGRES_URL (an admin URL), else postgres@127.0.0.1:5432/test; fails under CI=true if absent."""
    import psycopg

    url = os.environ.get("COALITION_TEST_POSTGRES_URL", LOCAL_POSTGRES_ADMIN_URL)
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as exc:
        service_unavailable(f"no PostgreSQL at {url}: {str(exc).strip().splitlines()[0]}")
    server = PostgresServer(url)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """Mount a small tmpfs (a real filesystem that fills up, or can be remounted read-only, even for root); the
    mounts are undone afterwards. Needs root (or CAP_SYS_ADMIN): elsewhere a skip, and a failure under CI."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        where = tmp_path / f"tmpfs-{len(mounted)}"
        where.mkdir()
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            service_unavailable(f"cannot mount a tmpfs for a real full or read-only disk: {done.stderr.strip()}")
        mounted.append(where)
        return where

    yield mount
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


@pytest.fixture(autouse=True)
def _fresh_redactor() -> None:
    """Each test starts with the environment's secrets only: secrets an earlier test installed in this process
    (settings, a .env, a provider key) never redact a later test's ledger content and change its digest."""
    from coalition.bus.redaction import install

    install({})
