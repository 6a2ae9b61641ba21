"""Architecture rules that import-linter cannot express: which files may touch which libraries and clocks."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bus", "ledger", "domain", "governance", "agents", "scenarios", "coalition", "packs")


def _sources(*folders: str) -> Iterator[Path]:
    for folder in folders:
        yield from sorted((ROOT / folder).rglob("*.py"))


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _calls(path: Path) -> set[str]:
    """Dotted names of everything called or referenced as attribute chains, e.g. 'datetime.now'."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            found.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name):
            found.add(node.id)
    return found


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


class TestLibraryConfinement:
    """Each infrastructure library is imported in exactly the files that own it."""

    def test_only_the_redis_backend_and_launcher_import_redis(self) -> None:
        # bus/worker_control.py: the agent workers' control plane (heartbeats with a TTL, barriers) on the bus's Redis
        allowed = {"bus/redis_streams.py", "bus/embedded.py", "bus/worker_control.py"}
        offenders = [_rel(p) for p in _sources(*PACKAGES) if "redis" in _imported_modules(p) and _rel(p) not in allowed]
        assert offenders == []

    def test_only_ledger_backends_import_database_drivers(self) -> None:
        # coalition/web/users_store.py: the console's users and sessions, deliberately kept out of the ledger
        allowed = {"ledger/sqlite.py", "ledger/postgres.py", "coalition/web/users_store.py"}
        drivers = {"sqlite3", "psycopg", "psycopg2"}
        offenders = [_rel(p) for p in _sources(*PACKAGES) if _imported_modules(p) & drivers and _rel(p) not in allowed]
        assert offenders == []


class TestInjectedTimeAndIds:
    """Agents, governance and the world never read the wall clock, uuid4 or the global random generator."""

    FORBIDDEN = frozenset(
        {
            "datetime.now",
            "datetime.utcnow",
            "datetime.today",
            "date.today",
            "time.time",
            "time.time_ns",
            "uuid.uuid4",
            "uuid.uuid1",
            "uuid4",
            "uuid1",
            "random.random",
            "random.randint",
            "random.choice",
            "random.shuffle",
            "random.uniform",
            "random.seed",
            "secrets.token_hex",
            "os.urandom",
        }
    )

    @pytest.mark.parametrize("folder", ["agents", "governance", "scenarios", "domain", "packs"])
    def test_no_ambient_clock_or_randomness(self, folder: str) -> None:
        offenders = {
            _rel(p): sorted(_calls(p) & self.FORBIDDEN) for p in _sources(folder) if _calls(p) & self.FORBIDDEN
        }
        assert offenders == {}

    def test_the_check_itself_catches_a_forbidden_call(self, tmp_path: Path) -> None:
        sample = tmp_path / "sample.py"
        sample.write_text("from datetime import datetime\nstamp = datetime.now()\n", encoding="utf-8")
        assert _calls(sample) & self.FORBIDDEN == {"datetime.now"}
