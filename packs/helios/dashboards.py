"""Helios's own dashboard figures (declared as Panels in reporting.py): claims blocked before customers saw them
(trust), complaint-risk predictors and churn leading indicators by region (trust), and the settlement queue, reserve
coverage and settlement mismatches (ops) — each from the run's entries, with the entries it is computed from."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from coalition.ledger.entry import LedgerEntry
from coalition.scenarios.dashboard_figures import Figure, RunEntries, decimal, money, pct_text, usd


def trust_figures(run: RunEntries) -> list[Figure]:
    """Campaigns denied for a banned or unapproved claim."""
    denied = [v for v in run.verdicts.values() if v.outcome == "deny" and any("claims" in r for r in v.rule_ids)]
    return [
        Figure(
            "claims_pressure",
            "Claims blocked before customers saw them",
            str(len(denied)),
            "Campaigns denied for a banned or unapproved claim (rules limit.claims.*): promises that would have "
            "driven complaints had they gone out.",
            tuple(v.seq for v in denied),
            float(len(denied)),
            "ok" if not denied else "warn",
        )
    ]


def region_of(customer_id: str) -> str:
    """Customer ids are <REGION>-<P|B><n> (as Helios's world names them)."""
    return customer_id.split("-", 1)[0] if "-" in customer_id else ""


def regions(run: RunEntries) -> list[tuple[str, dict[str, Figure]]]:
    """Per region: complaint-risk predictors (complaints, disputes, customers hit by outages) and churn leading
    indicators (settlement paused, affected customers not credited, price above base)."""
    complaints: dict[str, list[LedgerEntry]] = defaultdict(list)
    disputes: dict[str, list[LedgerEntry]] = defaultdict(list)
    affected: dict[str, dict[str, int]] = defaultdict(dict)  # region → customer id → seq of the outage
    credited: set[str] = set()
    credit_seqs: dict[str, list[int]] = defaultdict(list)
    for o in run.observations:
        data = o.payload.get("data") or {}
        kind = o.payload.get("kind")
        region = str(data.get("region", ""))
        if kind == "customer.complaints":
            complaints[region].append(o)
        elif kind == "dispute":
            disputes[region_of(str(data.get("customer_id", "")))].append(o)
        elif kind == "meter.outage":
            for c in data.get("customers") or []:
                if isinstance(c, dict) and "id" in c:
                    affected[region][str(c["id"])] = o.seq
    for x in run.applied():
        if run.action(x.subject) == "issue_credit":
            cid = str(run.args(x.subject).get("customer_id", ""))
            credited.add(cid)
            credit_seqs[region_of(cid)].append(x.seq)
    paused_days: Counter[str] = Counter()
    paused_seqs: dict[str, list[int]] = defaultdict(list)
    premium: dict[str, tuple[float, int]] = {}
    for s in run.snapshots:
        data = s.payload.get("data") or {}
        for region in (data.get("settlement") or {}).get("paused") or []:
            paused_days[str(region)] += 1
            paused_seqs[str(region)].append(s.seq)
        for region in data.get("active_markets") or []:
            price = (data.get("prices") or {}).get(region) or {}
            base = decimal(price.get("base_price"))
            if base:
                premium[str(region)] = (float((decimal(price.get("price")) - base) / base * 100), s.seq)
    names = sorted({*complaints, *disputes, *affected, *paused_days, *premium} - {""})
    out = []
    for region in names:
        uncredited = {cid: seq for cid, seq in affected[region].items() if cid not in credited}
        prem, prem_seq = premium.get(region, (None, None))
        out.append(
            (
                region,
                {
                    "complaints": Figure(
                        "complaints",
                        "Complaints reported",
                        str(sum(int((c.payload.get("data") or {}).get("count", 0)) for c in complaints[region])),
                        "Customer complaints the world reported for the region (customer.complaints observations).",
                        tuple(c.seq for c in complaints[region]),
                        status="warn" if complaints[region] else "ok",
                    ),
                    "disputes": Figure(
                        "disputes",
                        "Disputes raised",
                        str(len(disputes[region])),
                        "Billing disputes customers of the region raised (dispute observations).",
                        tuple(d.seq for d in disputes[region]),
                        status="warn" if disputes[region] else "ok",
                    ),
                    "outage_customers": Figure(
                        "outage_customers",
                        "Customers hit by outages",
                        str(len(affected[region])),
                        "Customers behind dark meters in the region's outages (meter.outage observations).",
                        tuple(sorted(set(affected[region].values()))),
                        status="warn" if affected[region] else "ok",
                    ),
                    "uncredited": Figure(
                        "uncredited",
                        "Hit and not credited",
                        str(len(uncredited)),
                        "Churn leading indicator: customers hit by an outage with no credit applied to them.",
                        tuple(sorted(set(uncredited.values()))) or tuple(credit_seqs[region]),
                        status="alert" if uncredited else "ok",
                    ),
                    "settlement_paused_days": Figure(
                        "settlement_paused_days",
                        "Days producers went unpaid",
                        str(paused_days[region]),
                        "Churn leading indicator for producers: daily snapshots with the region's settlement paused.",
                        tuple(paused_seqs[region]),
                        status="warn" if paused_days[region] else "ok",
                    ),
                    "price_premium": Figure(
                        "price_premium",
                        "Price above base at the end",
                        f"{prem:+.1f} %" if prem is not None else "— (not an active market)",
                        "Churn leading indicator for buyers: the region's last price against its base price, from "
                        "the last daily snapshot it was active in.",
                        (prem_seq,) if prem_seq is not None else (),
                        status="warn" if prem is not None and prem > 0 else "ok",
                    ),
                },
            )
        )
    return out


def ops_figures(run: RunEntries) -> list[Figure]:
    """The settlement queue, how far reserves cover it, and the gaps between money in and out."""
    last, data = run.last_snapshot()
    settlement = data.get("settlement") or {}
    backlog = decimal(settlement.get("backlog_usd"))
    reserves = decimal(data.get("reserves_usd")) if last is not None else Decimal(0)
    coverage = round(float(reserves / backlog * 100), 1) if backlog else None
    mismatches = run.observed("settlement.mismatch")
    gap = sum((decimal((o.payload.get("data") or {}).get("gap_usd")) for o in mismatches), Decimal(0))
    paused = list(settlement.get("paused") or [])
    return [
        Figure(
            "settlement_backlog",
            "Settlement queue",
            f"{money(float(backlog))} owed to producers; paused: {', '.join(paused) or 'none'}",
            "Settlement queue health: the backlog of producer payouts not yet due or held by a pause, and the "
            "regions whose settlement is paused, from the last daily snapshot.",
            (last.seq,) if last is not None else (),
            usd(backlog),
            "warn" if paused else "ok",
        ),
        Figure(
            "reserve_coverage",
            "Reserves cover the queue",
            pct_text(coverage),
            "Reserves ÷ settlement backlog at the end (the policy's reserve ratio is the target).",
            (last.seq,) if last is not None else (),
            coverage,
            "n/a" if coverage is None else "ok",
        ),
        Figure(
            "settlement_mismatch",
            "Settlement mismatches",
            f"{len(mismatches)} ({money(float(gap))} gap)",
            "Gaps between money in and money out the world reported (settlement.mismatch observations).",
            tuple(o.seq for o in mismatches),
            usd(gap),
            "alert" if mismatches else "ok",
        ),
    ]
