"""Attacks on the loop's identities, on the memory bus and on a real Redis: forged, altered, misattributed and
other-run envelopes reach the bus while a scenario runs. Each is refused (a dead letter with its reason in the
ledger), the run goes on, and its effects are exactly those of the same run without the attacker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from coalition.bus import topics
from coalition.bus.base import Bus
from coalition.bus.codec import encode
from coalition.bus.envelope import Envelope
from coalition.bus.keys import Keyring, producer_identities
from coalition.bus.memory import MemoryBus
from coalition.bus.messages import ActionAuthorized, ActionProposed
from coalition.bus.signing import SignedBus, Verifier
from coalition.domain import catalog
from coalition.ledger.base import LedgerQuery
from coalition.ledger.entry import LedgerEntry
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.runner import Runner, RunnerOptions
from coalition.scenarios.spec import Scenario, load_scenario

pytestmark = pytest.mark.integration

THEFT = {"amount_usd": 1_000_000, "destination": "acct X-666", "reason": "urgent vendor payment"}


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("meter-outage")


@pytest.fixture(scope="module")
def keys() -> Keyring:
    return Keyring.ephemeral(producer_identities(catalog().agent_names))


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[SqliteLedger]:
    led = SqliteLedger(tmp_path / "ledger.db")
    yield led
    led.close()


def effects(ledger: SqliteLedger, run_id: str) -> list[tuple[Any, ...]]:
    """What the run did to the world: each execution's time, outcome and payload, in order (envelope and
    authorization ids left out: refusing an attacker's message takes ids from governance's sequence)."""
    return [
        (e.sim_time, e.outcome, e.subject, {k: v for k, v in e.payload.items() if k != "authorization_id"})
        for e in ledger.query(LedgerQuery(run_id=run_id, kind="execution"))
    ]


@pytest.fixture(scope="module")
def clean(scenario: Scenario, keys: Keyring, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Runner]:
    """The same scenario, seed and keys with nobody attacking: the effects every attacked run must match."""
    led = SqliteLedger(tmp_path_factory.mktemp("clean") / "ledger.db")
    runner = assemble_run(scenario, bus=MemoryBus(), ledger=led, run_id="clean", options=RunnerOptions(keyring=keys))
    runner.run()
    try:
        return effects(led, "clean"), runner.world.kpis(), runner
    finally:
        led.close()


def forged(message: Any, *, id: str, source: str, run_id: str, when: datetime) -> Envelope:
    return Envelope.wrap(message, id=id, source=source, run_id=run_id, superstep=0, sim_time=when)


def authorization(proposal_id: str, **args: Any) -> ActionAuthorized:
    return ActionAuthorized(
        authorization_id=f"auth-{proposal_id}",
        proposal_id=proposal_id,
        proposal_hash="0" * 64,
        agent="finance",
        action="transfer_funds",
        args=args or THEFT,
        idempotency_key=f"key-{proposal_id}",
        basis="approval",
    )


def dead_letter_reasons(ledger: SqliteLedger, run_id: str) -> list[str]:
    entries: list[LedgerEntry] = ledger.query(LedgerQuery(run_id=run_id, kind="dead_letter"))
    return [str(e.payload.get("reason", "")) for e in entries]


class TestForgedEnvelopesHaveNoEffect:
    """Every attacker envelope is dead-lettered with its reason; the run's effects equal the clean run's."""

    def test_forged_misattributed_altered_and_replayed_envelopes(
        self, bus: Bus, ledger: SqliteLedger, scenario: Scenario, keys: Keyring, clean: tuple[Any, Any, Runner]
    ) -> None:
        clean_effects, clean_kpis, clean_runner = clean
        runner = assemble_run(scenario, bus=bus, ledger=ledger, run_id="attacked", options=RunnerOptions(keyring=keys))
        when = scenario.date_of(0)
        run = "attacked"
        attacks: dict[str, str] = {}  # envelope id → the reason its dead letter must give

        # 1. an authorization claiming to come from governance, not signed at all
        bus.publish(
            topics.AUTHORIZATIONS,
            forged(authorization("p-unsigned"), id="atk-unsigned", source="governance", run_id=run, when=when),
        )
        attacks["atk-unsigned"] = "not signed"

        # 2. the same, signed with the attacker's own key
        mallory = SignedBus(bus, Keyring.ephemeral(["governance"]), Verifier(keys.directory()))
        mallory.publish(
            topics.AUTHORIZATIONS,
            forged(authorization("p-selfsigned"), id="atk-selfsigned", source="governance", run_id=run, when=when),
        )
        attacks["atk-selfsigned"] = "does not verify against governance's key"

        # 3. a compromised marketing agent proposes in finance's name: under finance's id, and under its own
        marketing = SignedBus(bus, keys.only(["agent:marketing"]), Verifier(keys.directory()))
        theft = ActionProposed(
            proposal_id="p-theft", agent="finance", action="transfer_funds", args=THEFT, rationale="pay vendor"
        )
        evil = forged(theft, id="atk-as-finance", source="agent:finance", run_id=run, when=when)
        bus.publish(
            topics.PROPOSALS,
            marketing.sign([evil.model_copy(update={"source": "agent:marketing"})])[0].model_copy(
                update={"source": "agent:finance"}
            ),
        )
        attacks["atk-as-finance"] = "does not verify against agent:finance's key"
        marketing.publish(
            topics.PROPOSALS,
            forged(
                theft.model_copy(update={"proposal_id": "p-theft2"}),
                id="atk-in-finance-name",
                source="agent:marketing",
                run_id=run,
                when=when,
            ),
        )
        attacks["atk-in-finance-name"] = "may not publish action.proposed in the name of agent 'finance'"

        # 4. a genuine governance signature, arguments altered on the wire afterwards
        governance = SignedBus(bus, keys.only(["governance"]), Verifier(keys.directory()))
        genuine = governance.sign(
            [
                forged(
                    authorization("p-small", amount_usd=1, destination="ops", reason="x"),
                    id="atk-altered",
                    source="governance",
                    run_id=run,
                    when=when,
                )
            ]
        )[0]
        wire = orjson.loads(encode(genuine))
        wire["payload"]["args"]["amount_usd"] = 1_000_000
        bus.publish_raw(topics.AUTHORIZATIONS, orjson.dumps(wire, option=orjson.OPT_SORT_KEYS))
        attacks["atk-altered"] = "does not verify against governance's key"

        # 5. a genuine authorization of the clean run (same keys, same scenario), replayed into this one
        replayed = next(d.envelope for d in clean_runner.raw_bus.range(topics.AUTHORIZATIONS) if d.envelope is not None)
        bus.publish_raw(topics.AUTHORIZATIONS, encode(replayed))
        attacks[replayed.id] = "belongs to run clean, not attacked"

        result = runner.run()

        assert result.expectations_passed, [r.detail for r in result.expectations if not r.passed]
        reasons = dead_letter_reasons(ledger, run)
        for envelope_id, why in attacks.items():
            assert any(envelope_id in r and why in r for r in reasons), (envelope_id, why, reasons)
        assert effects(ledger, run) == clean_effects  # not one extra, missing or different effect
        assert runner.world.kpis() == clean_kpis
        assert not ledger.query(LedgerQuery(run_id=run, subject="p-theft")) + ledger.query(
            LedgerQuery(run_id=run, subject="p-theft2")
        )
        assert ledger.verify().ok
