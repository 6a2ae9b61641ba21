"""What reports, dashboards and the console show of the billing desk: its KPIs, charts of its daily accounts
snapshot, the texts customers read, its anomalies, its own dashboard figures (dashboards.py) and how much harm a
wrong "yes" at each of its gates can do. It keeps no books: its dashboards show no three-statement model."""

from __future__ import annotations

from coalition.domain import Chart, CustomerTexts, Kpi, Line, Panel, Reporting

REPORTING = Reporting(
    snapshot="accounts.snapshot",
    kpis=(
        Kpi("credits_usd", "Credits granted", "{value:,.2f} USD"),
        Kpi("waived_usd", "Fees waived", "{value:,.2f} USD"),
        Kpi("escalated_cases", "Cases escalated to a person", "{value:,}"),
        Kpi("cancellations", "Cancellations", "{value:,}"),
        Kpi("retention_offers", "Retention offers", "{value:,}"),
        Kpi("outreach_waves", "Outreach waves", "{value:,}"),
        Kpi("reengaged", "Customers re-engaged", "{value:,}"),
    ),
    charts=(
        Chart(
            "Accounts and cancellations",
            (
                Line("accounts", "accounts.*.account_id", reduce="count"),
                Line("cancelled", "accounts.*.cancelled", reduce="sum"),
            ),
            key="accounts",
            decisions=True,
        ),
        Chart(
            "Churn risk and sentiment (mean over accounts)",
            (
                Line("churn risk", "accounts.*.churn_risk", reduce="mean"),
                Line("sentiment", "accounts.*.sentiment", reduce="mean", dash="dot"),
            ),
            key="mood",
        ),
        Chart(
            "Fees on the accounts (USD)",
            (Line("fees billed", "accounts.*.fees.*.amount_usd", reduce="sum"),),
            key="fees",
            decisions=True,
        ),
    ),
    texts=CustomerTexts(
        {"notify_customer": "message", "send_reengagement": "message"},
        "answers to cases and re-engagement check-ins",
    ),
    alerts=("outage",),
    panels=(
        Panel(
            "trust",
            "coalition.packs.billing_desk.dashboards:channels",
            title="Cases by channel",
            empty="No case came in through any channel in this run.",
        ),
        Panel("ops", "coalition.packs.billing_desk.dashboards:ops_figures"),
    ),
    # Money back to a customer and a contract ended > a case a person must see.
    gate_risk={"refund_approval": 4, "cancellation_approval": 4, "case_escalation": 3},
)
