"""WriteBehindLedger: a recorder's flushes are held and written together, in flush order, as soon as anything uses
the ledger; each flush is acknowledged only once the commit holding it is done (tests of the recorder itself:
test_recorder.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from test_recorder import obs, proposal
from verdict_drafts import verdict_draft

from coalition.bus import topics
from coalition.bus.memory import MemoryBus
from coalition.ledger import LedgerQuery, Recorder, SqliteLedger, run_digest
from coalition.ledger.write_behind import WriteBehindLedger, held_writes

pytestmark = pytest.mark.unit


@pytest.fixture
def bus() -> Iterator[MemoryBus]:
    memory = MemoryBus()
    yield memory
    memory.close()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    with SqliteLedger(tmp_path / "ledger.db", synchronous="NORMAL") as store:
        yield store


def commits(ledger: SqliteLedger) -> list[str]:
    """Collects the statements the ledger's connection runs; the caller counts its COMMITs."""
    events: list[str] = []
    ledger._conn.set_trace_callback(events.append)
    return events


def two_flushes(bus: MemoryBus, recorder: Recorder) -> None:
    """Superstep 1 proposes, superstep 2 observes: recorded flush by flush, the proposal comes first (in one
    canonical batch the observation would: observations sort before proposals)."""
    bus.publish(topics.PROPOSALS, proposal(1, step=1))
    recorder.flush()
    bus.publish(topics.OBSERVATIONS, obs(2, step=2))
    recorder.flush()


def pending(bus: MemoryBus) -> int:
    return sum(bus.pending_count(topic, "recorder") for topic in topics.ALL)


class TestHeld:
    def test_flushes_are_written_together_in_flush_order_when_the_ledger_is_read(
        self, bus: MemoryBus, ledger: SqliteLedger, tmp_path: Path
    ) -> None:
        """Nothing is written (nor acknowledged) until a read; then both flushes in one transaction, in the order
        they were flushed, with the content a recorder writing each flush at once gives."""
        behind = WriteBehindLedger(ledger)
        recorder = Recorder(bus, behind)
        events = commits(ledger)
        two_flushes(bus, recorder)
        assert ledger.count() == 0
        assert pending(bus) == 2  # not acknowledged: nothing is committed yet
        assert [e.subject for e in behind.query(LedgerQuery())] == ["p-1", "s-2"]
        assert events.count("COMMIT") == 1
        assert pending(bus) == 0
        plain_bus = MemoryBus()
        with SqliteLedger(tmp_path / "plain.db", synchronous="NORMAL") as plain:
            two_flushes(plain_bus, Recorder(plain_bus, plain))
            assert run_digest(plain, "run-r") == run_digest(ledger, "run-r")
        plain_bus.close()

    @pytest.mark.parametrize(
        "use",
        [
            pytest.param(lambda led: led.query(LedgerQuery(kind="verdict")), id="query"),
            pytest.param(lambda led: led.count(LedgerQuery(kind="verdict")), id="count"),
            pytest.param(lambda led: list(led.iter_entries(run_id="run-x")), id="iter_entries"),
            pytest.param(lambda led: led.get(1), id="get"),
            pytest.param(lambda led: led.head(), id="head"),
            pytest.param(lambda led: led.runs(), id="runs"),
            pytest.param(lambda led: led.verify(), id="verify"),
            pytest.param(lambda led: led.append([verdict_draft(9, run_id="run-x")]), id="append"),
            pytest.param(lambda led: led.append_once("c", "m", [verdict_draft(9, run_id="run-x")]), id="append_once"),
            pytest.param(
                lambda led: led.append_batch_once("c", [("m", [verdict_draft(9, run_id="run-x")])]),
                id="append_batch_once",
            ),
            pytest.param(
                lambda led: led.append_checked("c", lambda: ("m", [verdict_draft(9, run_id="run-x")])),
                id="append_checked",
            ),
            pytest.param(lambda led: led.deferred_sync().__enter__(), id="deferred_sync"),
            pytest.param(lambda led: led.run_bodies("run-r"), id="run_bodies (any other attribute)"),
            pytest.param(lambda led: led.stored_checkpoints(), id="stored_checkpoints"),
        ],
    )
    def test_every_use_of_the_ledger_writes_what_is_held_first(
        self, bus: MemoryBus, ledger: SqliteLedger, use: Callable[[Any], object]
    ) -> None:
        """Whatever the run does with the ledger, what the recorder flushed before is in it first (a write after
        the held ones comes after them)."""
        behind = WriteBehindLedger(ledger)
        two_flushes(bus, Recorder(bus, behind))
        use(behind)
        assert [e.subject for e in ledger.query(LedgerQuery())][:2] == ["p-1", "s-2"]
        assert pending(bus) == 0

    def test_a_flush_is_acknowledged_only_once_committed(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """When the held write fails, nothing is acknowledged: the deliveries stay pending, and the next recorder
        records them, once."""
        behind = WriteBehindLedger(ledger)
        two_flushes(bus, Recorder(bus, behind))
        ledger._conn.execute(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON dedupe BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        with pytest.raises(Exception, match="disk says no"):
            behind.count()
        assert ledger.count() == 0
        assert pending(bus) == 2
        ledger._conn.execute("DROP TRIGGER temp.refuse")
        assert behind.count() == 0  # a failed write is not tried again: its deliveries are the bus's again
        assert Recorder(bus, ledger, name="recorder-2", min_idle_ms=0).flush() == 2  # one batch: canonical order
        assert sorted(e.subject for e in ledger.query(LedgerQuery())) == ["p-1", "s-2"]
        assert pending(bus) == 0

    def test_the_block_writes_what_is_left_however_it_ends(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """held_writes: what was flushed before the block ended (by an error too) is recorded and acknowledged."""

        def failing_run() -> None:
            with held_writes(ledger) as behind:
                two_flushes(bus, Recorder(bus, behind))
                raise RuntimeError("the run failed")

        with pytest.raises(RuntimeError, match="the run failed"):
            failing_run()
        assert [e.subject for e in ledger.query(LedgerQuery())] == ["p-1", "s-2"]
        assert pending(bus) == 0

    def test_a_bound_on_what_is_held(self, bus: MemoryBus, ledger: SqliteLedger) -> None:
        """Once max_held items wait, they are written without waiting for a read."""
        behind = WriteBehindLedger(ledger, max_held=2)
        recorder = Recorder(bus, behind)
        bus.publish(topics.OBSERVATIONS, obs(1))
        recorder.flush()
        assert ledger.count() == 0
        bus.publish(topics.OBSERVATIONS, obs(2))
        recorder.flush()
        assert ledger.count() == 2
        assert pending(bus) == 0
