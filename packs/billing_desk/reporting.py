"""What reports and the console show of the billing desk: its KPIs (its accounts snapshot has no daily figure to
chart) and how much harm a wrong "yes" at each of its gates can do."""

from __future__ import annotations

from coalition.domain import Kpi, Reporting

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
    # Money back to a customer and a contract ended > a case a person must see.
    gate_risk={"refund_approval": 4, "cancellation_approval": 4, "case_escalation": 3},
)
