"""What reports and the console show of Helios's world: its KPIs, the charts of its daily market snapshot and how
much harm a wrong "yes" at each of its gates can do."""

from __future__ import annotations

from coalition.domain import Chart, Kpi, Reporting

REPORTING = Reporting(
    snapshot="market.snapshot",
    kpis=(
        Kpi("revenue_usd", "Revenue", "{value:,.0f} USD"),
        Kpi("margin_pct", "Margin", "{value:.1f} %"),
        Kpi("cash_usd", "Cash", "{value:,.0f} USD"),
        Kpi("reserves_usd", "Reserves", "{value:,.0f} USD"),
        Kpi("backlog_usd", "Settlement backlog", "{value:,.0f} USD"),
        Kpi("prices_in_band", "Prices in band"),
        Kpi("incidents", "Incidents (open / resolved)", "{value[open]} / {value[resolved]}"),
    ),
    charts=(
        Chart("Cash (USD)", (("cash", "cash_usd"),)),
        Chart(
            "Prices vs allowed band (USD/MWh)",
            (("", "prices.*.price"),),
            only="active_markets",
            band=("pricing_policy.floor", "pricing_policy.ceiling"),
        ),
        Chart("Settlement backlog (USD)", (("backlog", "settlement.backlog_usd"),)),
    ),
    # Money moved, credentials, capital > policy changes.
    gate_risk={
        "money_movement": 5,
        "credential_change": 5,
        "capital_commitment": 4,
        "market_entry": 4,
        "incident_severity": 4,
        "pricing_policy_change": 3,
        "settlement_policy_change": 3,
        "compliance_change": 3,
    },
)
