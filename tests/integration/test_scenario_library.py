"""Every library scenario passes its expectations and is deterministic: two runs, one digest."""

from __future__ import annotations

from pathlib import Path

import pytest

from coalition.bus.memory import MemoryBus
from coalition.ledger.digest import run_digest
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.assembly import assemble_run
from coalition.scenarios.spec import list_library, load_scenario

pytestmark = pytest.mark.integration

LIBRARY = (
    "price-spike",
    "settlement-policy",
    "fraud-ring",
    "meter-outage",
    "regulatory-change",
    "claims-pressure",
    "poisoned-feed",
    "billing-disputes",
    "chaos-week",
)


class TestScenarioLibrary:
    """The nine issue-4 scenarios ship, hold their expectations and replay to the same digest."""

    def test_library_lists_every_scenario(self) -> None:
        """All nine are found by bare name."""
        assert set(LIBRARY) <= set(list_library())

    @pytest.mark.parametrize("name", LIBRARY)
    def test_expectations_hold_and_two_runs_share_a_digest(self, name: str, tmp_path: Path) -> None:
        """Run twice on the memory bus: every expectation passes, and the digests are equal."""
        scenario = load_scenario(name)
        assert scenario.description.strip()
        assert scenario.expectations
        digests = []
        for attempt in ("a", "b"):
            ledger = SqliteLedger(tmp_path / f"{attempt}.db")
            result = assemble_run(
                scenario, bus=MemoryBus(namespace=attempt), ledger=ledger, run_id=f"{name}-{attempt}"
            ).run()
            assert [r.detail for r in result.expectations if not r.passed] == []
            digests.append(run_digest(ledger, f"{name}-{attempt}"))
            ledger.close()
        assert digests[0] == digests[1]
