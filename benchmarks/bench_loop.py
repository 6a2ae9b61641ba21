"""The governed loop: helios-launch wall time and decisions/s on the memory bus and on Redis, chaos-week simulated
days per second, and replay time as a share of the original run's time."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from benchmarks.harness import Measurement, repeat
from coalition.bus.base import Bus
from coalition.bus.embedded import EmbeddedRedis
from coalition.bus.memory import MemoryBus
from coalition.ledger.base import LedgerQuery
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.replay import replay
from coalition.scenarios.runner import Runner
from coalition.scenarios.spec import load_scenario

SECTION = "loop"


def _redis_bus() -> tuple[AbstractContextManager[object], Bus]:
    """Redis at 127.0.0.1:6379 if it answers, else an embedded redis-server stopped when the context exits."""
    from redis import Redis
    from redis.exceptions import RedisError

    from coalition.bus.redis_streams import RedisStreamsBus

    namespace = f"bench-{secrets.token_hex(3)}"
    try:
        client = Redis.from_url("redis://127.0.0.1:6379/0")
        client.ping()
        return nullcontext(), RedisStreamsBus(client, namespace=namespace)
    except RedisError:
        server = EmbeddedRedis().start()
        return closing_server(server), RedisStreamsBus(server.client(), namespace=namespace)


@contextmanager
def closing_server(server: EmbeddedRedis) -> Iterator[EmbeddedRedis]:
    try:
        yield server
    finally:
        server.stop()


def _run(name: str, bus: Bus) -> tuple[float, int]:
    ledger = SqliteLedger(":memory:")
    run_id = f"bench-{secrets.token_hex(3)}"
    started = time.perf_counter()
    Runner(load_scenario(name), bus=bus, ledger=ledger, run_id=run_id).run()
    seconds = time.perf_counter() - started
    decisions = ledger.count(LedgerQuery(run_id=run_id, kind="verdict"))
    ledger.close()
    return seconds, decisions


def run(quick: bool) -> list[Measurement]:
    repeats = 2 if quick else 5
    out: list[Measurement] = []
    decisions = _run("helios-launch", MemoryBus(namespace="warm"))[1]
    med, lo, hi = repeat(lambda: _run("helios-launch", MemoryBus(namespace=secrets.token_hex(3)))[0], repeats)
    out.append(Measurement(SECTION, "helios-launch wall time (memory bus)", "s", med, lo, hi, repeats, False))
    out.append(
        Measurement(
            SECTION,
            "helios-launch decisions/s (memory bus)",
            "decisions/s",
            decisions / med,
            decisions / hi,
            decisions / lo,
            repeats,
        )
    )
    try:
        server, bus = _redis_bus()
        with server:
            med_r, lo_r, hi_r = repeat(lambda: _run("helios-launch", bus)[0], repeats)
        out.append(
            Measurement(
                SECTION,
                "helios-launch wall time (redis bus)",
                "s",
                med_r,
                lo_r,
                hi_r,
                repeats,
                False,
                baseline="helios-launch wall time (memory bus)",
            )
        )
        out.append(
            Measurement(
                SECTION,
                "helios-launch decisions/s (redis bus)",
                "decisions/s",
                decisions / med_r,
                decisions / hi_r,
                decisions / lo_r,
                repeats,
            )
        )
    except Exception as exc:  # a missing Redis must not stop the other figures
        out.append(Measurement(SECTION, "helios-launch (redis bus)", "s", 0, 0, 0, 0, notes=f"skipped: {exc}"))
    days = load_scenario("chaos-week").days
    med_c, lo_c, hi_c = repeat(lambda: _run("chaos-week", MemoryBus(namespace=secrets.token_hex(3)))[0], repeats)
    out.append(
        Measurement(SECTION, "chaos-week simulated days/s", "days/s", days / med_c, days / hi_c, days / lo_c, repeats)
    )

    def share() -> float:
        ledger = SqliteLedger(":memory:")
        started = time.perf_counter()
        Runner(load_scenario("helios-launch"), bus=MemoryBus(namespace="o"), ledger=ledger, run_id="orig").run()
        original = time.perf_counter() - started
        result = replay(ledger, "orig")
        ledger.close()
        return 100 * result.replay_seconds / original

    med_s, lo_s, hi_s = repeat(share, repeats)
    out.append(
        Measurement(
            SECTION,
            "replay time / original run time (helios-launch)",
            "%",
            med_s,
            lo_s,
            hi_s,
            repeats,
            False,
            target="≤ 150% (a replay is one re-execution plus a comparison)",
            target_absolute=150.0,
        )
    )
    return out
