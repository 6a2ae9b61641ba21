"""What reports, dashboards and the console show of Helios's world: its KPIs, the charts of its daily market
snapshot, its three-statement model, the texts customers read, its anomalies, its own dashboard figures
(dashboards.py) and how much harm a wrong "yes" at each of its gates can do."""

from __future__ import annotations

from coalition.domain import Chart, CustomerTexts, Kpi, Line, Panel, ProposalMarks, Reporting, Statements

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
        Chart(
            "Cash, reserves and settlement backlog (USD)",
            (
                Line("cash", "cash_usd"),
                Line("reserves", "reserves_usd"),
                Line("settlement backlog", "settlement.backlog_usd"),
            ),
            key="money",
            decisions=True,
        ),
        Chart(
            "Revenue, costs and margin over time",
            (
                Line("revenue (cumulative)", "revenue_usd"),
                Line("costs (cumulative)", "costs_usd"),
                # A margin is undefined before the first revenue: a gap, not the 0 the snapshot reports.
                Line("margin (%)", "margin_pct", unless="revenue_usd", dash="dot", width=2, right=True),
            ),
            key="revenue",
            decisions=True,
            axis="USD",
            right_axis="margin %",
            right_floor=-100.0,
        ),
        Chart(
            "Prices against the band (USD/MWh)",
            (
                # Quotes of markets the business does not operate are not its prices.
                Line("{key}", "prices.*.price", only="active_markets"),
                Line(
                    "{key} surge cap",
                    "prices.*.base_price",
                    only="active_markets",
                    plus_pct="pricing_policy.surge_cap_pct",
                    dash="dot",
                    width=1,
                ),
            ),
            key="prices",
            band=(
                Line("floor", "pricing_policy.floor", dash="dash", colour="#bbb"),
                Line("ceiling", "pricing_policy.ceiling", dash="dash", colour="#999"),
            ),
            proposals=ProposalMarks("set_price", value="price", label="region", name="proposed prices"),
        ),
    ),
    statements=Statements(
        revenue="revenue_usd",
        costs="costs_usd",
        assets=(("cash", "cash_usd"), ("reserves", "reserves_usd")),
        liabilities="settlement.backlog_usd",
        costs_are="opex + agent spend + customer credits",
        note="P&L: revenue = fees; costs = opex + agent spend + credits. Balance sheet: assets = cash + reserves, "
        "liabilities = settlement backlog, equity = the difference. Cash flow: operating = net income + increase in "
        "the backlog; outside the P&L = cash moved without a cost (capital commitments, transfers).",
        long_note="From each day's market snapshot. P&L: revenue is the exchange's fees; costs are opex, agent spend "
        "and customer credits. Balance sheet: assets are cash and reserves, liabilities the settlement backlog owed "
        "to producers, equity the difference. Cash flow (indirect): operating = net income + increase in the "
        'backlog; "outside the P&L" is cash that moved without being a cost (capital commitments, transfers) — the '
        "line that makes the three agree. The world keeps no fixed assets, so investments appear as that cash "
        "movement, not on the balance sheet.",
    ),
    texts=CustomerTexts({"notify_customers": "message", "launch_campaign": "copy"}, "notices and campaign copy"),
    alerts=("supply.shock", "meter.outage", "settlement.mismatch", "suspicious.trades", "customer.complaints"),
    panels=(
        Panel("trust", "coalition.packs.helios.dashboards:trust_figures"),
        Panel(
            "trust",
            "coalition.packs.helios.dashboards:regions",
            title="Complaint-risk predictors and churn leading indicators, by region",
            empty="No region saw complaints, disputes, outages, pauses or trading in this run.",
        ),
        Panel("ops", "coalition.packs.helios.dashboards:ops_figures"),
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
