"""The three-statement model over simulated time, from the daily snapshots and where the run's pack declares each
figure (coalition.domain.Statements): P&L, balance sheet and cash flow, day by day and by week."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coalition.domain import Statements
from coalition.ledger.entry import LedgerEntry
from coalition.scenarios.chart_series import at
from coalition.scenarios.dashboard_figures import decimal, usd, usd_sum


@dataclass(frozen=True)
class StatementDay:
    """The three statements on one simulated day, from that day's snapshot (running totals since day 0)."""

    day: int
    sim_time: str
    seq: int
    revenue_usd: float  # revenue earned that day
    costs_usd: float  # costs that day
    net_income_usd: float
    cumulative_net_income_usd: float
    assets_parts: dict[str, float]  # each declared asset (label → USD)
    assets_usd: float
    liabilities_usd: float
    equity_usd: float
    operating_cash_flow_usd: float  # net income + increase in liabilities
    other_cash_usd: float  # cash moved outside the P&L (capital commitments, transfers): the reconciling line
    cash_change_usd: float  # change in assets


def statements(snapshots: Sequence[LedgerEntry], declared: Statements | None) -> list[StatementDay]:
    """Day by day: P&L (revenue, costs, net income), balance sheet (assets, liabilities, equity) and cash flow
    (indirect: net income + increase in liabilities = change in assets; the rest is cash moved outside the P&L).
    None when the pack declares no statements."""
    if declared is None:
        return []
    out: list[StatementDay] = []
    prev: dict[str, Decimal] | None = None
    for e in snapshots:
        data: dict[str, Any] = e.payload.get("data") or {}
        parts = {label: decimal(at(data, path)) for label, path in declared.assets}
        now = {
            "revenue": decimal(at(data, declared.revenue)),
            "costs": decimal(at(data, declared.costs)),
            "assets": sum(parts.values(), Decimal(0)),
            "liabilities": decimal(at(data, declared.liabilities)),
        }
        base = prev or {
            "revenue": Decimal(0),
            "costs": Decimal(0),
            "assets": now["assets"],
            "liabilities": now["liabilities"],
        }
        revenue, costs = now["revenue"] - base["revenue"], now["costs"] - base["costs"]
        net = revenue - costs
        cash_change = now["assets"] - base["assets"]
        operating = net + (now["liabilities"] - base["liabilities"])
        out.append(
            StatementDay(
                day=int(data.get("day", len(out))),
                sim_time=e.sim_time.isoformat(),
                seq=e.seq,
                revenue_usd=usd(revenue),
                costs_usd=usd(costs),
                net_income_usd=usd(net),
                cumulative_net_income_usd=usd(now["revenue"] - now["costs"]),
                assets_parts={label: usd(value) for label, value in parts.items()},
                assets_usd=usd(now["assets"]),
                liabilities_usd=usd(now["liabilities"]),
                equity_usd=usd(now["assets"] - now["liabilities"]),
                operating_cash_flow_usd=usd(operating),
                other_cash_usd=usd(cash_change - operating),
                cash_change_usd=usd(cash_change),
            )
        )
        prev = now
    return out


def weeks(days: Sequence[StatementDay]) -> list[dict[str, Any]]:
    """The statements by simulated week: flows summed, balances at the week's last day."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(days), 7):
        week = days[start : start + 7]
        last = week[-1]
        out.append(
            {
                "days": f"{week[0].day}–{last.day}",
                "from": week[0].sim_time[:10],
                "seqs": [s.seq for s in week],
                "revenue": usd_sum(s.revenue_usd for s in week),
                "costs": usd_sum(s.costs_usd for s in week),
                "net": usd_sum(s.net_income_usd for s in week),
                "assets": last.assets_usd,
                "liabilities": last.liabilities_usd,
                "equity": last.equity_usd,
                "operating": usd_sum(s.operating_cash_flow_usd for s in week),
                "other": usd_sum(s.other_cash_usd for s in week),
                "cash_change": usd_sum(s.cash_change_usd for s in week),
            }
        )
    return out
