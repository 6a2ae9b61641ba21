"""A worker takes a step barrier only as its run's coordinator signed it — by the runner key it trusts, for the run
and the attempt's namespace, unaltered — and only after the last it took
(coalition.scenarios.worker_orders.BarrierCheck)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest

from coalition.bus.codec import decode, encode
from coalition.bus.control_messages import StepBarrier
from coalition.bus.keys import RUNNER, Keyring
from coalition.bus.signing import sign_wire
from coalition.bus.worker_control import is_past, wall_deadline
from coalition.scenarios.errors import RunnerError
from coalition.scenarios.worker_orders import BarrierCheck, signed_barrier

KEYS = Keyring.ephemeral([RUNNER, "agent:finance"])
TRUSTED = KEYS.directory()
DAY = datetime(2026, 3, 1, tzinfo=UTC)
LATER = "2099-01-01T00:00:00+00:00"


def barrier(
    sequence: int, superstep: int, *, run_id: str = "run-1", namespace: str = "run-1-ab12cd", **kw: object
) -> bytes:
    return signed_barrier(
        KEYS.private(str(kw.get("signer", RUNNER))), run_id=run_id, namespace=namespace, sequence=sequence,
        superstep=superstep, sim_time=DAY + timedelta(hours=superstep), owners={"finance": "w0"}, expires_at=LATER,
    )  # fmt: skip


def check() -> BarrierCheck:
    return BarrierCheck(TRUSTED, run_id="run-1", namespace="run-1-ab12cd")


class TestTaken:
    """The coordinator's barriers, in the order it posts them, are taken as they say."""

    def test_a_run_of_barriers_with_a_takeover_is_taken(self) -> None:
        """Supersteps 0, 1, then 1 again (a takeover: the same superstep under the next number), then 2."""
        reader = check()
        taken = [reader.take(barrier(n, step)) for n, step in [(1, 0), (2, 1), (3, 1), (4, 2)]]
        assert [(b.sequence, b.superstep) for b in taken] == [(1, 0), (2, 1), (3, 1), (4, 2)]
        assert taken[-1].sim_time == DAY + timedelta(hours=2)
        assert taken[-1].owners == {"finance": "w0"}
        assert taken[-1].expires_at == LATER

    def test_a_worker_started_afresh_takes_the_run_from_its_first_barrier(self) -> None:
        """A restarted worker has taken nothing: the run's barriers, read again from the first, are all taken."""
        first, again = check(), check()
        for n in range(1, 6):
            first.take(barrier(n, n - 1))
            again.take(barrier(n, n - 1))
        assert again.last == first.last


class TestRefused:
    """Each way to forge or replay a barrier is refused with its reason, and leaves the order as it was."""

    def refused(self, raw: bytes, match: str, *, after: int = 0) -> None:
        reader = check()
        for n in range(1, after + 1):
            reader.take(barrier(n, n))
        before = reader.last
        with pytest.raises(RunnerError, match=match):
            reader.take(raw)
        assert reader.last == before
        assert reader.take(barrier(after + 1, after + 1)).sequence == after + 1  # the next genuine one is taken

    def test_an_unsigned_barrier(self) -> None:
        plain = orjson.dumps({"superstep": 7, "sim_time": DAY.isoformat(), "owners": {"finance": "w0"}})
        self.refused(plain, "barrier of run run-1 is not a signed barrier")

    def test_a_barrier_signed_by_an_agent_key(self) -> None:
        self.refused(
            barrier(1, 0, signer="agent:finance"), r"does not verify against runner's key \(forged or altered\)"
        )

    def test_a_barrier_an_agent_signs_in_its_own_name(self) -> None:
        signed = decode(barrier(1, 0))
        as_agent = signed.model_copy(update={"source": "agent:finance", "signature": None})
        ((_, raw),) = sign_wire([as_agent], KEYS.private("agent:finance"))
        self.refused(raw, "may be published by runner only, not by agent:finance")

    def test_an_altered_barrier(self) -> None:
        """Its superstep, or its owners, changed after signing."""
        signed = decode(barrier(3, 2))
        self.refused(encode(signed.model_copy(update={"superstep": 9})), r"\(forged or altered\)", after=2)
        payload = StepBarrier(namespace="run-1-ab12cd", sequence=3, owners={"finance": "evil"}, expires_at=LATER)
        self.refused(encode(signed.model_copy(update={"payload": payload})), r"\(forged or altered\)", after=2)

    def test_a_barrier_of_another_run(self) -> None:
        self.refused(barrier(1, 0, run_id="run-2"), r"belongs to run run-2, not run-1 \(replayed\)")

    def test_a_barrier_of_another_attempt_of_the_run(self) -> None:
        self.refused(
            barrier(3, 3, namespace="run-1-ffffff"),
            "orders the run's attempt in run-1-ffffff, not run-1-ab12cd",
            after=2,
        )

    def test_a_barrier_taken_before(self) -> None:
        self.refused(
            barrier(2, 2), r"number 2 \(superstep 2\) is not after number 2 \(superstep 2\).*\(replayed\)", after=2
        )

    def test_an_earlier_barrier(self) -> None:
        self.refused(barrier(1, 1), r"number 1 \(superstep 1\) is not after number 3", after=3)

    def test_a_later_number_for_an_earlier_superstep(self) -> None:
        """Only the coordinator numbers barriers, and it never goes back a superstep."""
        self.refused(barrier(4, 1), r"number 4 \(superstep 1\) is not after number 3 \(superstep 3\)", after=3)


class TestExpiry:
    """A barrier's expiry is wall-clock time: the coordinator's deadline for the step."""

    def test_a_deadline_ahead_is_not_past_and_one_behind_is(self) -> None:
        assert not is_past(wall_deadline(60))
        assert is_past(wall_deadline(-1))
