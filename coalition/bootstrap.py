"""The composition root: the one place that chooses the bus backend for a run (memory, a Redis URL, or a private
embedded redis-server) and owns its lifetime; the ledger backend (a SQLite file, or PostgreSQL when
COALITION_LEDGER or --ledger is a postgresql:// URL); `build_run`, where the commands and the console get a run
wired on them; and what ties a ledger to its key, its witness store and what this client remembers of it
(`ledger_trust`, `attach_notary`). The per-agent models are resolved by `coalition run` (coalition/cli/run_cmd.py);
tests inject their backends into `assemble_run` (coalition/scenarios/assembly.py) directly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from coalition.bus.errors import BusError
from coalition.bus.keys import APPROVERS_DIR, ApproverKeys, Keyring, KeyStore, producer_identities
from coalition.bus.redaction import without_query_secrets
from coalition.lazy_logger import LazyLogger
from coalition.settings import Settings

if TYPE_CHECKING:
    from coalition.bus.base import Bus
    from coalition.bus.clock import Clock
    from coalition.bus.redis_streams import RedisStreamsBus
    from coalition.governance.policy import Policy
    from coalition.ledger.base import Ledger
    from coalition.ledger.notary import Notary
    from coalition.ledger.postgres import PostgresLedger
    from coalition.ledger.signed_note import Signer, Verifier
    from coalition.ledger.sqlite import SqliteLedger
    from coalition.ledger.witness import SeenCheckpoint, WitnessDir
    from coalition.scenarios.runner import Runner, RunnerOptions
    from coalition.scenarios.spec import Scenario

    OpenLedger = SqliteLedger | PostgresLedger

log = LazyLogger("coalition.bootstrap")


@dataclass(frozen=True)
class BusChoice:
    """What `--bus` asked for: the in-memory bus, the embedded/ configured Redis, or a Redis URL."""

    kind: str  # "memory" | "redis"
    url: str | None = None  # explicit redis://, redis+cluster:// or unix:// URL; None = REDIS_URL or embedded

    @classmethod
    def parse(cls, value: str | None, settings: Settings) -> BusChoice:
        raw = value or settings.bus
        if raw == "memory":
            return cls("memory")
        if raw == "redis":
            return cls("redis", settings.redis_url)
        if raw.startswith(("redis://", "rediss://", "unix://", "redis+cluster://", "rediss+cluster://")):
            return cls("redis", raw)
        raise ValueError(f"--bus must be memory, redis or a redis:// / redis+cluster:// / unix:// URL, not {raw!r}")

    def describe(self) -> str:
        """Where the bus is, for people to read: never with a password."""
        if self.kind == "memory":
            return "memory (in-process)"
        return f"redis at {without_credentials(self.url)}" if self.url else "redis (embedded private redis-server)"


def without_credentials(url: str) -> str:
    """The URL with any user and password removed (redis://:secret@host:6379/0 → redis://host:6379/0), a password
    in its query too (redis://host:6379/0?password=secret → redis://host:6379/0)."""
    url = without_query_secrets(url)
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urlunsplit(parts._replace(netloc=netloc))


@contextmanager
def open_bus(
    choice: BusChoice, *, namespace: str, data_dir: Path | None, stale_namespaces: str | None = None
) -> Iterator[Bus]:
    """Yield a ready bus; an embedded redis-server lives exactly as long as the context (Ctrl-C included), its files
    under `data_dir` (None: only the memory bus or a Redis URL can be opened).
    `stale_namespaces` (a glob) names the namespaces of earlier, killed attempts of the same run: deleted first."""
    if choice.kind == "memory":
        from coalition.bus.memory import MemoryBus

        bus: Bus = MemoryBus.for_run(namespace)
        try:
            yield bus
        finally:
            bus.close()
        return

    from coalition.bus.redis_streams import RedisStreamsBus

    # A run's streams live exactly as long as the run: everything of value is in the ledger by then, and a resumed
    # run starts on fresh streams. Deleting them keeps a shared Redis (and the embedded one's AOF) from growing.
    if choice.url:
        bus = RedisStreamsBus(choice.url, namespace=namespace)
        try:
            _sweep(bus, stale_namespaces)
            yield bus
        finally:
            _discard(bus)
        return

    from coalition.bus.embedded import EmbeddedRedis

    if data_dir is None:
        raise ValueError("an embedded redis-server needs a data directory")
    with EmbeddedRedis(data_dir) as server:  # it keeps its socket, AOF and log under data_dir/redis/
        bus = RedisStreamsBus(server.url, namespace=namespace)
        try:
            _sweep(bus, stale_namespaces)
            yield bus
        finally:
            _discard(bus)


def _sweep(bus: RedisStreamsBus, pattern: str | None) -> None:
    if pattern is not None:
        deleted = bus.delete_other_namespaces(pattern)
        if deleted:
            log.info("bus.stale_streams_deleted", pattern=pattern, streams=deleted)


def _discard(bus: RedisStreamsBus) -> None:
    try:
        bus.delete_namespace()
    except BusError as exc:  # the server failed or went away; the ledger is intact, and a resume deletes them
        log.info("bus.cleanup_failed", reason=str(exc))  # not a second line after the one that says why a run stopped
    finally:
        bus.close()


@contextmanager
def build_run(
    scenario: Scenario,
    *,
    bus: BusChoice,
    namespace: str,
    ledger: Ledger,
    run_id: str,
    data_dir: Path | None = None,
    stale_namespaces: str | None = None,
    seed: int | None = None,
    policy: Policy | None = None,
    options: RunnerOptions | None = None,
) -> Iterator[Runner]:
    """A run of `scenario` on the bus `bus` chose (open_bus: it lives as long as the context) and `ledger`, its
    parts assembled by `assemble_run` (coalition/scenarios/assembly.py), the only wiring of a run: `coalition run`,
    `coalition demo` and the console's runs start here; re-executions (replay, what-if, consistency, sweep jobs)
    assemble theirs on in-memory scratch backends."""
    from coalition.scenarios.assembly import assemble_run

    with open_bus(bus, namespace=namespace, data_dir=data_dir, stale_namespaces=stale_namespaces) as opened:
        yield assemble_run(
            scenario, bus=opened, ledger=ledger, run_id=run_id, seed=seed, policy=policy, options=options
        )


# -- the ledger ---------------------------------------------------------------------------------------------------

LedgerLocation = Path | str  # a SQLite file, or a postgresql:// URL (a str)
_PG_SCHEMES = ("postgresql:", "postgres:")


def is_postgres(location: LedgerLocation) -> bool:
    return isinstance(location, str) and location.startswith(_PG_SCHEMES)


def ledger_location(value: str | Path | None, settings: Settings) -> LedgerLocation:
    """Where the ledger is: --ledger when given, else COALITION_LEDGER, else ledger.db in the data directory.

    A URL given to a Path option arrives as "postgresql:/host/db" (Path folds the double slash): it is repaired.
    """
    raw = str(value) if value is not None else settings.ledger
    if raw is None:
        return settings.ledger_path
    for scheme in _PG_SCHEMES:
        if raw.startswith(scheme):
            rest = raw[len(scheme) :]
            return scheme + "//" + rest.lstrip("/") if not rest.startswith("//") else raw
    return Path(raw)


def describe_ledger(location: LedgerLocation) -> str:
    """Which backend and where, for people to read: never with a password."""
    if is_postgres(location):
        from coalition.ledger.postgres import display_url, split_ledger_url

        conninfo, schema = split_ledger_url(str(location))
        return f"postgresql at {display_url(conninfo)} (schema {schema})"
    return f"sqlite at {location}"


def open_ledger(
    location: LedgerLocation, *, create: bool = True, wall_clock: Clock | None = None, read_only: bool = False
) -> OpenLedger:
    """The ledger at `location`: PostgreSQL for a postgresql:// URL (psycopg is imported only then), else SQLite
    (`read_only`: opened so that the file is never written, for commands that only read)."""
    if is_postgres(location):
        from coalition.ledger.postgres import PostgresLedger

        return PostgresLedger(str(location), create=create, wall_clock=wall_clock)
    from coalition.ledger.sqlite import SqliteLedger

    return SqliteLedger(location, create=create, wall_clock=wall_clock, read_only=read_only and not create)


@dataclass(frozen=True)
class LedgerTrust:
    """What a client checks a ledger against: the ledger key's public half, the witness store and its memory."""

    verifiers: list[Verifier]
    witness: WitnessDir
    seen: SeenCheckpoint | None
    keys_dir: Path
    origin: str


def memory_key(location: LedgerLocation) -> str:
    """What a client's memory of a ledger is filed under: the resolved file path, or the URL without a password."""
    if is_postgres(location):
        from coalition.ledger.postgres import display_url

        return display_url(str(location))
    return str(Path(location).resolve())


def ledger_trust(settings: Settings, ledger: OpenLedger, *, client: str) -> LedgerTrust:
    """The trust anchors of `ledger` for `client` ("cli", "console"): the key in the data directory's keys/, the
    witness directory, and the client's memory of the newest checkpoint it saw (none for an in-memory ledger).
    Both backends keep the Merkle tree and signed checkpoints."""
    from coalition.ledger.keys import load_public_key
    from coalition.ledger.notary import origin_of
    from coalition.ledger.signed_note import Verifier
    from coalition.ledger.witness import SeenCheckpoint, WitnessDir

    origin = origin_of(ledger)
    public = load_public_key(settings.keys_path)
    verifiers = [] if public is None else [Verifier.of(origin, public)]
    seen = None
    if ledger.path != ":memory:":
        seen = SeenCheckpoint(settings.state_path, client, memory_key(ledger.path))
    return LedgerTrust(verifiers, WitnessDir(settings.witness_path), seen, settings.keys_path, origin)


def attach_notary(ledger: OpenLedger, trust: LedgerTrust) -> Notary:
    """Sign checkpoints of `ledger` as it grows (run end, every 1,000 entries, each human decision); the key is
    created on the first checkpoint, not before (read-only commands never write to the data directory)."""
    from coalition.bus.clock import WallClock
    from coalition.ledger.keys import load_or_create_private_key
    from coalition.ledger.notary import Notary
    from coalition.ledger.signed_note import Signer

    def signer() -> Signer:
        return Signer(trust.origin, load_or_create_private_key(trust.keys_dir))

    notary = Notary(ledger, signer, trust.witness, WallClock(), seen=[trust.seen] if trust.seen else [])
    ledger.add_commit_listener(notary.after_commit)
    return notary


def key_store(data_dir: Path) -> KeyStore:
    """The producers' keys: `<data_dir>/keys/` (coalition keys init|list|rotate)."""
    return KeyStore(data_dir / "keys")


def approver_keys(data_dir: Path) -> ApproverKeys:
    """The approvers' password-sealed keys: `<data_dir>/keys/approvers/` (created by coalition users add)."""
    return ApproverKeys(data_dir / "keys" / APPROVERS_DIR)


def run_keyring(data_dir: Path) -> Keyring:
    """The keys this process signs a run's traffic with; missing ones are created (0600) on first use."""
    from coalition.domain import catalog  # the installed packs' agents: loaded by a command that signs, only

    store = key_store(data_dir)
    identities = producer_identities(catalog().agent_names)
    created = store.init(identities)
    if created:
        log.info("keys.created", identities=created, directory=str(store.directory))
    return store.keyring(identities)
