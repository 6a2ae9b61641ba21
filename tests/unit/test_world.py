"""The Helios world: synthetic customers, daily economics, snapshots, outside events and day opening."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from coalition.bus.canonical import content_hash
from coalition.packs.helios.day import open_day
from coalition.packs.helios.payloads import MarketSnapshot
from coalition.packs.helios.world import World
from coalition.scenarios import Scenario, WorldError, load_scenario

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load_scenario("helios-launch")


@pytest.fixture
def world(scenario: Scenario) -> World:
    return World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing)


class TestCustomers:
    """Synthetic producers and buyers come from the region plan and the scenario seed only."""

    def test_counts_and_ids_follow_the_region_plan(self, world: World) -> None:
        """TX overrides the counts (40 + 60); other regions use the per-region defaults (20 + 30)."""
        tx = world.customers_in("TX")
        assert len(tx) == 100
        assert len(world.customers_in("CA")) == 50
        assert {c.id for c in tx if c.role == "producer"} == {f"TX-P{n:04d}" for n in range(1, 41)}
        assert world.state.customers["TX-B0060"].role == "buyer"

    def test_same_seed_same_world(self, scenario: Scenario) -> None:
        """Two worlds from the same spec and seed are byte-identical."""
        a = World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing).snapshot()
        b = World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing).snapshot()
        assert content_hash(a) == content_hash(b)

    def test_another_seed_changes_segments(self, scenario: Scenario) -> None:
        """The seed drives the segments (ids stay the same)."""
        a = World.from_spec(scenario.world, 1, scenario.load_policy().limits.pricing).state.customers
        b = World.from_spec(scenario.world, 2, scenario.load_policy().limits.pricing).state.customers
        assert a.keys() == b.keys()
        assert [c.segment for c in a.values()] != [c.segment for c in b.values()]


class TestEconomics:
    """One day of trading: matched energy × price, fees, payouts by window, reserves on the backlog."""

    def test_one_day_of_texas_trading_by_hand(self, world: World) -> None:
        """TX: min(180 MW supply, 200 MW demand) × 24 h × 0.25 = 1080 MWh at 58 = 62,640 gross, 2.5 % fee."""
        report = world.advance_day(1)
        s = world.state
        assert report == {"days": 1, "gross_usd": 62640.0, "revenue_usd": 1566.0, "payouts_usd": 0.0}
        assert s.settlement.backlog_usd == Decimal("61074.00")
        assert s.reserves_usd == Decimal("6107.40")
        # 5,000,000 + 62,640 gross − 800 opex − 6,107.40 moved to reserves
        assert s.cash_usd == Decimal("5055732.60")

    def test_t_plus_one_payouts_are_paid_the_next_day(self, world: World) -> None:
        """The producers' share of day 0 is paid while day 1 is simulated."""
        world.advance_day(2)
        assert world.state.totals.payouts_usd == Decimal("61074.00")
        assert [p.due_day for p in world.state.settlement.payouts] == [2]

    def test_paused_settlement_holds_payouts(self, world: World) -> None:
        """While a region is paused, its payouts stay in the backlog."""
        world.state.regions["TX"].settlement_paused = True
        world.advance_day(3)
        assert world.state.totals.payouts_usd == 0
        assert len(world.state.settlement.payouts) == 3

    def test_a_price_above_base_sells_less(self, world: World, scenario: Scenario) -> None:
        """Price sensitivity: a surge price lowers the energy matched."""
        other = World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing)
        other.state.regions["TX"].demand_mw = Decimal("150")
        world.state.regions["TX"].demand_mw = Decimal("150")
        other.state.regions["TX"].price = Decimal("87.00")
        world.advance_day(1)
        other.advance_day(1)
        assert other.state.totals.volume_mwh < world.state.totals.volume_mwh

    def test_time_never_goes_back(self, world: World) -> None:
        """Asking for an earlier day is a WorldError, not a silent no-op."""
        world.advance_day(5)
        with pytest.raises(WorldError, match="cannot go back to day 4"):
            world.advance_day(4)

    def test_ninety_days_are_deterministic(self, scenario: Scenario) -> None:
        """Two full runs of the scheduled events give the same final state."""
        hashes = []
        for _ in range(2):
            w = World.from_spec(scenario.world, scenario.seed, scenario.load_policy().limits.pricing)
            for day in range(scenario.days):
                open_day(w, scenario, day)
            hashes.append(content_hash(w.snapshot()))
        assert hashes[0] == hashes[1]


class TestSnapshots:
    """snapshot() is JSON-safe and restore() brings back exactly the same world."""

    def test_round_trip(self, world: World) -> None:
        """restore(snapshot) snapshots identically, and both continue identically."""
        world.advance_day(3)
        data = json.loads(json.dumps(world.snapshot()))
        copy = World.restore(data)
        assert copy.snapshot() == world.snapshot()
        world.advance_day(10)
        copy.advance_day(10)
        assert content_hash(copy.snapshot()) == content_hash(world.snapshot())

    def test_market_snapshot_has_exactly_the_documented_keys(self, world: World) -> None:
        """The market.snapshot data of docs/design.md, money as JSON numbers."""
        data = world.market_snapshot_data({"research": Decimal("20000")})
        assert set(data) == {
            "day",
            "prices",
            "active_markets",
            "cash_usd",
            "reserves_usd",
            "revenue_usd",
            "costs_usd",
            "margin_pct",
            "settlement",
            "pricing_policy",
            "open_incidents",
            "budgets",
        }
        assert data["prices"]["TX"] == {"price": 58.0, "base_price": 58.0}
        assert data["active_markets"] == ["TX"]
        assert data["settlement"] == {"window": "T+1", "reserve_ratio": 0.1, "paused": [], "backlog_usd": 0.0}
        assert data["pricing_policy"] == {"floor": 20.0, "ceiling": 250.0, "surge_cap_pct": 25.0}
        assert data["budgets"] == {"research": {"budget_usd": 20000.0, "spent_usd": 0.0}}
        assert (data["revenue_usd"], data["costs_usd"], data["margin_pct"]) == (0.0, 0.0, 0.0)

    def test_market_snapshot_carries_the_running_kpis(self, world: World) -> None:
        """After some trading days the snapshot's revenue, costs and margin are exactly what kpis() reports."""
        world.advance_day(5)
        data = world.market_snapshot_data()
        kpis = world.kpis()
        assert data["revenue_usd"] > 0
        assert data["costs_usd"] > 0
        assert {k: data[k] for k in ("revenue_usd", "costs_usd", "margin_pct")} == {
            k: kpis[k] for k in ("revenue_usd", "costs_usd", "margin_pct")
        }

    def test_agents_read_the_snapshot_kpis(self, world: World) -> None:
        """The agents' MarketSnapshot payload model keeps the three new fields (as exact decimals)."""
        world.advance_day(5)
        data = world.market_snapshot_data({"research": Decimal("20000")})
        snapshot = MarketSnapshot.model_validate(json.loads(json.dumps(data)))
        assert snapshot.revenue_usd == Decimal(str(data["revenue_usd"]))
        assert snapshot.costs_usd == Decimal(str(data["costs_usd"]))
        assert snapshot.margin_pct == Decimal(str(data["margin_pct"]))
        assert MarketSnapshot.model_validate({"day": 0}).revenue_usd is None

    def test_kpis_flag_a_price_above_the_surge_cap(self, world: World) -> None:
        """TX base 58 with a 25 % cap allows at most 72.50."""
        world.state.regions["TX"].price = Decimal("72.50")
        assert world.kpis()["prices_in_band"] is True
        world.state.regions["TX"].price = Decimal("72.51")
        kpis = world.kpis()
        assert kpis["prices_in_band"] is False
        assert kpis["prices"]["TX"]["in_band"] is False


class TestOutsideEvents:
    """Scheduled events change the physical world and become observations."""

    def test_supply_shock_scales_supply_and_demand(self, world: World) -> None:
        """−40 % supply, +25 % demand on TX (180 → 108 MW, 200 → 250 MW)."""
        changes = world.apply_event(
            "supply.shock", {"region": "TX", "supply_change_pct": -40, "demand_change_pct": 25, "cause": "heat"}
        )
        assert world.state.regions["TX"].supply_mw == Decimal("108.000")
        assert world.state.regions["TX"].demand_mw == Decimal("250.000")
        assert changes["supply_mw"] == {"region": "TX", "old": 180.0, "new": 108.0}

    def test_outage_customers_are_deterministic_and_local(self, world: World) -> None:
        """The same outage picks the same customers, all in the region, with lost energy by segment."""
        a = world.outage_customers("TX", 36, 18)
        b = world.outage_customers("TX", 36, 18)
        assert a == b
        assert len(a) == 36
        assert all(c["id"].startswith("TX-") for c in a)
        assert all(c["lost_kwh"] > 0 for c in a)

    def test_open_day_emits_the_snapshot_first_then_the_events(self, world: World, scenario: Scenario) -> None:
        """Day 30: market.snapshot, then meter.outage with the world's customer list and its evidence id."""
        for day in range(31):
            observations = open_day(world, scenario, day)
        snapshot, outage = observations
        assert snapshot.kind == "market.snapshot"
        assert snapshot.to == ["research", "finance", "marketing", "legal", "ops"]
        assert outage.kind == "meter.outage"
        assert outage.to == ["ops"]
        assert len(outage.data["customers"]) == 36
        assert outage.evidence_id == content_hash(
            {"kind": outage.kind, "subject": outage.subject, "data": outage.data, "text": outage.text}
        )
        assert world.state.regions["TX"].meters_down == 36

    def test_a_day_opens_once(self, world: World, scenario: Scenario) -> None:
        """Opening a day twice would apply its events twice: refused."""
        open_day(world, scenario, 0)
        with pytest.raises(WorldError, match="day 0 was already opened"):
            open_day(world, scenario, 0)

    def test_days_after_the_last_are_refused(self, world: World, scenario: Scenario) -> None:
        """The scenario has days 0..89."""
        with pytest.raises(WorldError, match=r"day 90 is after the scenario's last day \(89\)"):
            open_day(world, scenario, 90)
