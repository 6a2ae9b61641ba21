"""A run's world KPIs as its pack declares them (label and format), in reports and the console."""

from __future__ import annotations

import pytest

from coalition.domain import Kpi
from coalition.scenarios.world_kpis import kpi_text, world_kpis

pytestmark = pytest.mark.unit

HELIOS = {
    "revenue_usd": "12345.67",
    "margin_pct": -4.56,
    "cash_usd": "1000000.00",
    "reserves_usd": "50000.00",
    "backlog_usd": "61074.00",
    "prices_in_band": True,
    "incidents": {"open": 2},
    "volume_mwh": 12.5,
}
DESK = {"credits_usd": 25.0, "waived_usd": 0.0, "escalated_cases": 4, "cancellations": 0}


class TestDeclaredKpis:
    """Each pack's report lists the KPIs it declares, with its labels and formats."""

    def test_helios_reads_as_it_always_did(self) -> None:
        assert world_kpis("helios", HELIOS) == [
            ("Revenue", "12,346 USD"),
            ("Margin", "-4.6 %"),
            ("Cash", "1,000,000 USD"),
            ("Reserves", "50,000 USD"),
            ("Settlement backlog", "61,074 USD"),
            ("Prices in band", "yes"),
            ("Incidents (open / resolved)", "2 / 0"),
        ]

    def test_a_scenario_without_a_pack_is_helios(self) -> None:
        assert world_kpis(None, HELIOS) == world_kpis("helios", HELIOS)

    def test_the_billing_desk_shows_its_own(self) -> None:
        rows = dict(world_kpis("billing-desk", DESK))
        assert rows["Credits granted"] == "25.00 USD"
        assert rows["Cases escalated to a person"] == "4"
        assert rows["Customers re-engaged"] == "—"  # not reported by this run
        assert not [label for label in rows if "Revenue" in label or "Settlement" in label]

    def test_a_pack_not_installed_here_labels_them_from_their_names(self) -> None:
        assert world_kpis("gone", {"credits_usd": 2.5, "escalated_cases": 1234}) == [
            ("Credits (USD)", "2.50"),
            ("Escalated cases", "1,234"),
        ]


class TestKpiText:
    """A declared pattern never raises on an unexpected value: the value is shown as it is."""

    def test_a_value_the_pattern_cannot_take_is_shown_as_it_is(self) -> None:
        assert kpi_text(Kpi("k", "K", "{value:,.0f} USD"), "n/a") == "n/a"
        assert kpi_text(Kpi("k", "K", "{value[open]} / {value[resolved]}"), 3) == "3"

    def test_a_flag_reads_yes_or_no(self) -> None:
        assert (kpi_text(Kpi("k", "K"), False), kpi_text(Kpi("k", "K"), True)) == ("no", "yes")
