"""The golden ledger: a run recorded by an earlier version of Coalition must replay IDENTICAL with this one.

`tests/golden/price-spike-lean.db` holds run `golden` of `tests/golden/price-spike-lean.yaml` (price-spike with
the defaulted `daily_opex_usd` left out, an escalation, a four-eyes rejection and decision points), recorded
by the code of the commit that added it. Replay reads the scenario and policy documents as that ledger recorded
them (never re-serialised through today's models) and re-executes the run; any change to ids, order, content,
the world, governance or the agents shows up as a divergence here.

A change that alters digests ON PURPOSE regenerates the golden ledger in the same commit and says why in the
commit message:

    rm tests/golden/price-spike-lean.db
    .venv/bin/coalition run tests/golden/price-spike-lean.yaml --bus memory \\
        --ledger tests/golden/price-spike-lean.db --run-id golden
    python -c "import sqlite3; c = sqlite3.connect('tests/golden/price-spike-lean.db'); \\
        c.execute('PRAGMA journal_mode=DELETE'); c.execute('VACUUM')"
    .venv/bin/coalition ledger digest --run golden --ledger tests/golden/price-spike-lean.db  # → GOLDEN_DIGEST
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from coalition.ledger.digest import run_digest
from coalition.ledger.history import taken_decisions, taken_decisions_of_bodies
from coalition.ledger.sqlite import SqliteLedger
from coalition.scenarios.decision_points import DecisionHistory
from coalition.scenarios.replay import replay

pytestmark = pytest.mark.integration

GOLDEN = Path(__file__).parents[1] / "golden" / "price-spike-lean.db"
GOLDEN_RUN = "golden"
GOLDEN_DIGEST = "ecf2d6083afabc1bcd8b422b1df7e5e30c5230403d8d8424cff6a778cb66f78d"


@pytest.fixture
def golden(tmp_path: Path) -> Iterator[SqliteLedger]:
    copy = tmp_path / "golden.db"  # opening a ledger may write (WAL): never touch the committed file
    shutil.copy(GOLDEN, copy)
    with SqliteLedger(copy, create=False) as ledger:
        yield ledger


class TestGoldenLedger:
    """The committed ledger still verifies, still has its digest, and replays IDENTICAL with today's code."""

    def test_it_verifies_and_keeps_its_digest(self, golden: SqliteLedger) -> None:
        assert golden.verify().ok
        assert run_digest(golden, GOLDEN_RUN) == GOLDEN_DIGEST

    def test_it_replays_identical(self, golden: SqliteLedger) -> None:
        result = replay(golden, GOLDEN_RUN)
        assert result.identical, result.divergence
        assert result.replay_digest == GOLDEN_DIGEST
        kinds = {e.kind for e in golden.iter_entries(run_id=GOLDEN_RUN)}
        assert {"decision_point", "resolution", "execution"} <= kinds  # the parts that history is about

    def test_its_decision_points_read_from_its_bodies_are_those_its_entries_give(self, golden: SqliteLedger) -> None:
        """replay and replay --verify take the decisions and decision points from the run's bodies, read once."""
        bodies = golden.run_bodies(GOLDEN_RUN)
        taken = taken_decisions(golden, GOLDEN_RUN)
        assert taken
        assert taken_decisions_of_bodies(bodies) == taken
        points = DecisionHistory.read(golden, GOLDEN_RUN)
        assert len(points)
        assert DecisionHistory.of_bodies(bodies) == points
