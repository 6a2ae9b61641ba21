"""The coordinator counts an agent's step report only as the agent's owner signed it — by the key the run trusts for
that agent, for the run and the attempt's namespace, unaltered (coalition.scenarios.worker_orders.ReportCheck); a
forged "done, nothing published" would move a superstep on before the agent's messages came."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from coalition.bus.codec import decode, encode
from coalition.bus.control_messages import StepReported
from coalition.bus.keys import RUNNER, Keyring
from coalition.bus.signing import sign_wire
from coalition.scenarios.agent_workers import refusal_notice
from coalition.scenarios.errors import RunnerError
from coalition.scenarios.worker_orders import Barrier, ReportCheck, signed_barrier, signed_report

KEYS = Keyring.ephemeral([RUNNER, "agent:finance", "agent:legal"])
TRUSTED = KEYS.directory()
NAMESPACE = "run-1-ab12cd"
BARRIER = Barrier(4, 3, datetime(2026, 3, 1, 6, tzinfo=UTC), {"finance": "w0", "legal": "w0"}, "2099-01-01T00:00:00Z")


def report(
    agent: str = "finance",
    *,
    signer: str | None = None,
    run_id: str = "run-1",
    namespace: str = NAMESPACE,
    **kw: object,
) -> bytes:
    key = KEYS.private(signer or f"agent:{agent}")
    return signed_report(
        key,
        run_id=run_id,
        namespace=namespace,
        barrier=BARRIER,
        agent=agent,
        worker="w0",
        **kw,  # type: ignore[arg-type]
    )


def check() -> ReportCheck:
    return ReportCheck(TRUSTED, run_id="run-1", namespace=NAMESPACE)


class TestCounted:
    def test_the_owners_report_reads_as_it_was_signed(self) -> None:
        superstep, got = check().read(report(produced=5))
        assert superstep == 3
        assert (got.agent, got.worker, got.namespace, got.sequence, got.produced, got.error) == (
            "finance", "w0", NAMESPACE, 4, 5, None,
        )  # fmt: skip

    def test_a_failed_step_reads_with_its_error(self) -> None:
        _, got = check().read(report("legal", error="ValueError: bad"))
        assert got.error == "ValueError: bad"


class TestRefused:
    """Each way to forge or replay a report is refused with its reason."""

    def refused(self, raw: bytes, match: str) -> None:
        with pytest.raises(RunnerError, match=match):
            check().read(raw)

    def test_a_report_in_plain_json(self) -> None:
        plain = orjson.dumps({"superstep": 3, "agent": "finance", "worker": "w0", "produced": 0})
        self.refused(plain, "step report of run run-1 is not a signed step report")

    def test_a_report_signed_by_another_agent_in_its_name(self) -> None:
        self.refused(report(signer="agent:legal"), r"does not verify against agent:finance's key \(forged or altered\)")

    def test_another_agent_reporting_in_its_own_name_for_the_agent(self) -> None:
        """agent:legal's worker signs with its own key but reports finance's step."""
        signed = decode(report())
        as_legal = signed.model_copy(update={"source": "agent:legal", "signature": None})
        ((_, raw),) = sign_wire([as_legal], KEYS.private("agent:legal"))
        self.refused(raw, "agent:legal may not publish workers.step_reported in the name of agent 'finance'")

    def test_the_coordinators_own_key_cannot_report_an_agents_step(self) -> None:
        signed = decode(report())
        as_runner = signed.model_copy(update={"source": RUNNER, "signature": None})
        ((_, raw),) = sign_wire([as_runner], KEYS.private(RUNNER))
        self.refused(raw, "runner may not publish workers.step_reported in the name of agent 'finance'")

    def test_a_key_the_run_does_not_trust(self) -> None:
        stranger = Keyring.ephemeral(["agent:finance"]).private("agent:finance")
        raw = signed_report(
            stranger, run_id="run-1", namespace=NAMESPACE, barrier=BARRIER, agent="finance", worker="w0"
        )
        self.refused(raw, r"does not verify against agent:finance's key \(forged or altered\)")

    def test_an_altered_report(self) -> None:
        """Its superstep, or what it says was published, changed after signing."""
        signed = decode(report(produced=4))
        self.refused(encode(signed.model_copy(update={"superstep": 9})), r"\(forged or altered\)")
        payload = StepReported(agent="finance", worker="w0", namespace=NAMESPACE, sequence=4, produced=0)
        self.refused(encode(signed.model_copy(update={"payload": payload})), r"\(forged or altered\)")

    def test_a_report_of_another_run(self) -> None:
        self.refused(report(run_id="run-2"), r"belongs to run run-2, not run-1 \(replayed\)")

    def test_a_report_of_another_attempt_of_the_run(self) -> None:
        self.refused(report(namespace="run-1-ffffff"), "answers the run's attempt in run-1-ffffff, not run-1-ab12cd")

    def test_a_barrier_posted_as_a_report(self) -> None:
        raw = signed_barrier(
            KEYS.private(RUNNER), run_id="run-1", namespace=NAMESPACE, sequence=4, superstep=3,
            sim_time=BARRIER.sim_time, owners=BARRIER.owners, expires_at=BARRIER.expires_at,
        )  # fmt: skip
        self.refused(raw, "is a workers.step_barrier, not the step report expected")


class TestRefusalNotice:
    """A worker's refusal to join a run is an unsigned notice: it stops the run in one line, and nothing signed
    passes for one."""

    def test_a_refusal_stops_the_run_in_one_line(self) -> None:
        raw = orjson.dumps({"worker": "w0\nforged line", "refused": "run-1: invalid run:\n  scenario.days\n    bad"})
        assert refusal_notice(raw) == "agent worker w0 refused the run: run-1: invalid run:"

    def test_a_signed_report_or_anything_else_is_no_refusal(self) -> None:
        assert refusal_notice(report(error="ValueError: bad")) is None
        assert refusal_notice(b"not json") is None
        assert refusal_notice(orjson.dumps(["refused"])) is None
