"""Ops' decisions: a stable outage severity, credits by tier (identical impact ⇒ identical credit), the runbook
for outages and restorations, fraud containment, and billing disputes decided by fixed eligibility rules."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from coalition.agents.facts import Facts
from coalition.agents.money import cents, fmt, number
from coalition.packs.helios.payloads import (
    DISPUTE_KINDS,
    AffectedCustomer,
    DisputeCase,
    DisputeFacts,
    IncidentNotice,
    MeterOutage,
    SuspiciousTrades,
)

# Severity points per dimension: (threshold, points) checked from the top; the sum maps to 1..5.
CUSTOMER_POINTS = ((100, 2), (10, 1))
HOUR_POINTS = ((Decimal(8), 2), (Decimal(2), 1))
KWH_POINTS = ((Decimal(5000), 2), (Decimal(500), 1))
SEVERITY_BY_POINTS = (1, 2, 3, 4, 4, 5, 5)
# Impact levels by kWh a customer lost; level n takes the n-th cheapest credit tier of the policy.
IMPACT_LEVELS_KWH = (Decimal(50), Decimal(200), Decimal(1000))
# Used only when no policy brief has named the tiers (an assumption, stated in the rationale).
DEFAULT_TIERS: dict[str, Decimal] = {"standard": Decimal(10), "elevated": Decimal(25), "severe": Decimal(50)}


def _points(value: Decimal | int, table: tuple[tuple[Any, int], ...]) -> int:
    return next((points for threshold, points in table if value >= threshold), 0)


def severity(outage: MeterOutage) -> tuple[int, dict[str, str]]:
    """Severity 1..5 from customers affected, hours and total kWh lost; the same outage always classifies alike."""
    lost = sum((c.lost_kwh for c in outage.customers), Decimal(0))
    customers = len(outage.customers)
    points = _points(customers, CUSTOMER_POINTS) + _points(outage.hours, HOUR_POINTS) + _points(lost, KWH_POINTS)
    figures = {"customers": str(customers), "hours": str(outage.hours), "lost_kwh": str(lost), "points": str(points)}
    return SEVERITY_BY_POINTS[points], figures


def impact_level(customer: AffectedCustomer) -> int:
    return sum(1 for threshold in IMPACT_LEVELS_KWH if customer.lost_kwh >= threshold)


@dataclass(frozen=True, slots=True)
class Credit:
    customer_id: str
    tier: str
    amount_usd: Decimal
    facts: Facts


def credits(
    customers: list[AffectedCustomer], incident_id: str, tiers: dict[str, Decimal], max_credit: Decimal | None
) -> list[Credit]:
    """One credit per affected customer, by impact tier; customers sorted by id. Segment plays no part."""
    table = tiers or DEFAULT_TIERS
    ordered = sorted(table.items(), key=lambda item: (item[1], item[0]))
    out: list[Credit] = []
    for customer in sorted(customers, key=lambda c: c.id):
        level = min(impact_level(customer), len(ordered) - 1)
        tier, amount = ordered[level]
        amount = cents(amount if max_credit is None else min(amount, max_credit))
        rules = ["credit tiers from the policy brief" if tiers else "default credit tiers (no policy brief received)"]
        if max_credit is not None:
            rules.append(f"max credit per customer {fmt(max_credit)} USD")
        out.append(
            Credit(
                customer_id=customer.id,
                tier=tier,
                amount_usd=amount,
                facts=Facts(
                    intent="propose",
                    decision=f"credit {customer.id} {fmt(amount)} USD ({tier} tier) for incident {incident_id}",
                    reasons=[f"{customer.lost_kwh} kWh lost puts the customer at impact level {level}"],
                    figures={"lost_kwh": str(customer.lost_kwh), "tier": tier, "amount_usd": fmt(amount)},
                    rules=[*rules, "identical impact receives the identical tier and amount"],
                ),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class OutageResponse:
    """The outage runbook: open the incident, pause settlement, credit, notify, tell the other agents."""

    incident_id: str
    region: str
    severity: int
    incident_args: dict[str, Any]
    incident_facts: Facts
    pause_args: dict[str, Any]
    pause_facts: Facts
    credits: list[Credit]
    notify_args: dict[str, Any]
    notify_facts: Facts
    audience: str
    notice: IncidentNotice
    notice_facts: Facts

    def credit_args(self, credit: Credit) -> dict[str, Any]:
        return {
            "customer_id": credit.customer_id,
            "incident_id": self.incident_id,
            "tier": credit.tier,
            "amount_usd": number(credit.amount_usd),
        }


def outage_response(
    outage: MeterOutage,
    evidence_id: str,
    tiers: dict[str, Decimal],
    max_credit: Decimal | None,
    severity_bound: int | None,
) -> OutageResponse:
    level, figures = severity(outage)
    incident_id = outage.incident_hint or f"inc-{outage.region.lower()}-{evidence_id[:8]}"
    region = outage.region
    affected = len(outage.customers)
    summary = (
        f"Meter outage in {region}: {outage.meters_down} meters down for {outage.hours} h, "
        f"{affected} customers affected, {figures['lost_kwh']} kWh lost"
    )
    bound_rule = [f"severity above {severity_bound} needs human approval"] if severity_bound is not None else []
    audience = f"customers in {region}"
    return OutageResponse(
        incident_id=incident_id,
        region=region,
        severity=level,
        incident_args={
            "incident_id": incident_id,
            "kind": "meter_outage",
            "severity": level,
            "regions": [region],
            "affected_customers": affected,
            "summary": summary,
        },
        incident_facts=Facts(
            intent="propose",
            decision=f"open incident {incident_id} at severity {level}",
            reasons=[summary],
            figures=figures,
            rules=["severity = points for customers (≥10, ≥100), hours (≥2, ≥8), kWh lost (≥500, ≥5000)", *bound_rule],
        ),
        pause_args={"region": region, "incident_id": incident_id, "reason": "meter data unreliable during outage"},
        pause_facts=Facts(
            intent="propose",
            decision=f"pause settlement in {region} while meters are down",
            reasons=["settling on missing meter data would create settlement errors and customer harm"],
            rules=["ops may pause settlement; the runbook pauses before crediting"],
        ),
        credits=credits(outage.customers, incident_id, tiers, max_credit),
        notify_args={"incident_id": incident_id, "audience": audience},
        notify_facts=Facts(
            intent="propose",
            decision=f"notify {audience} about incident {incident_id}",
            reasons=["proactive communication prevents trust erosion"],
        ),
        audience=audience,
        notice=IncidentNotice(incident_id=incident_id, severity=level, regions=[region], affected_customers=affected),
        notice_facts=Facts(
            intent="inform",
            decision=f"report incident {incident_id} (severity {level}) in {region}",
            reasons=[summary, "settlement is paused and credits are proposed"],
        ),
    )


def outage_notice_facts(
    region: str, incident_id: str, *, paused: bool, credited: list[Decimal], not_credited: int
) -> Facts:
    """What an outage notice may say: only what executed — the pause if it applied, the credits that were paid
    (count and total); credits that were denied, rejected or failed are said not to have been issued."""
    done: list[str] = []
    if paused:
        done.append(f"paused settlement in {region} while we restore meter data")
    if credited:
        done.append(f"credited {len(credited)} affected account(s) {fmt(sum(credited, Decimal(0)))} USD in total")
    reasons = ["credits follow a fixed tier table"] if credited else []
    if not_credited:
        reasons.append(f"{not_credited} proposed credit(s) were not issued")
    decision = ("have " + " and ".join(done)) if done else f"are working on incident {incident_id} in {region}"
    return Facts(intent="notify", decision=f"{decision} (incident {incident_id})", reasons=reasons)


def dispute_notice_facts(decision: DisputeDecision, credit_status: str | None) -> Facts:
    """What a dispute answer may say: a credit only once it was paid; a credit governance did not let through is
    said not to have been issued; a declined case keeps the engine's decline."""
    if not decision.eligible:
        return decision.facts
    if credit_status == "applied":
        return Facts(
            intent="notify",
            decision=(
                f"have credited {decision.customer_id} {fmt(decision.credit_usd)} USD for dispute {decision.case_id}"
            ),
            reasons=decision.facts.reasons,
        )
    return Facts(
        intent="notify",
        decision=f"have reviewed dispute {decision.case_id}; no credit could be issued to {decision.customer_id}",
        reasons=["credits stay within the limits of our credit policy"],
    )


def resume_facts(region: str, incident_id: str) -> Facts:
    return Facts(
        intent="propose",
        decision=f"resume settlement in {region} for incident {incident_id}",
        reasons=[f"meters in {region} are restored"],
    )


@dataclass(frozen=True, slots=True)
class FraudResponse:
    incident_id: str
    incident_args: dict[str, Any]
    incident_facts: Facts
    freezes: list[tuple[str, Facts]]
    reason: str
    notice: IncidentNotice
    notice_facts: Facts


def fraud_response(trades: SuspiciousTrades, evidence_id: str) -> FraudResponse:
    """Freeze every account involved (sorted), open an incident at the hinted severity, tell finance and legal."""
    incident_id = f"fraud-{evidence_id[:8]}"
    accounts = sorted(set(trades.accounts))
    summary = f"{trades.pattern} across {len(accounts)} account(s) worth {fmt(trades.value_usd)} USD"
    return FraudResponse(
        incident_id=incident_id,
        incident_args={
            "incident_id": incident_id,
            "kind": "fraud",
            "severity": trades.severity_hint,
            "regions": [],
            "affected_customers": len(accounts),
            "summary": summary,
        },
        incident_facts=Facts(
            intent="propose",
            decision=f"open fraud incident {incident_id} at severity {trades.severity_hint}",
            reasons=[summary],
            figures={"value_usd": fmt(trades.value_usd)},
        ),
        freezes=[
            (
                account,
                Facts(
                    intent="propose",
                    decision=f"freeze account {account}",
                    reasons=[f"it took part in {trades.pattern}"],
                    rules=["fraud containment playbook: contain first, investigate second"],
                ),
            )
            for account in accounts
        ],
        reason=trades.pattern,
        notice=IncidentNotice(
            incident_id=incident_id, severity=trades.severity_hint, regions=[], affected_customers=len(accounts)
        ),
        notice_facts=Facts(
            intent="inform",
            decision=f"report fraud incident {incident_id}",
            reasons=[summary, "the accounts are proposed for freezing"],
        ),
    )


# -- billing disputes (CX C1/C2/C6): eligibility rules are fixed; channel, day and wording play no part ----------

# ASSUMPTION: the seed fixes "eligibility rules" and "the maximum allowable credit" without figures. A late fee is
# waived for a customer with no waiver in the last 12 months who paid at most LATE_FEE_GRACE_DAYS late; a
# settlement fee is refunded when the platform's settlement record shows an error; an outage credit follows the
# outage tier table by kWh lost. Everything else is declined with the rule that declined it.
LATE_FEE_GRACE_DAYS = 15
# The facts each kind must carry before a decision (C6 "required verification steps").
DISPUTE_REQUIRED_FACTS: dict[str, tuple[str, ...]] = {
    "late_fee": ("days_late", "waivers_last_12_months"),
    "settlement_fee": ("settlement_error",),
    "outage_credit": ("lost_kwh",),
}


@dataclass(frozen=True, slots=True)
class DisputeDecision:
    """The fixed decision for one case: credit or not, how much at most, and the rule path that decided it."""

    case_id: str
    customer_id: str
    eligible: bool
    credit_usd: Decimal
    rule: str
    facts: Facts

    def credit_args(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "incident_id": self.case_id,
            "tier": f"dispute:{self.rule}",
            "amount_usd": number(self.credit_usd),
        }


def read_facts(case: DisputeCase) -> tuple[DisputeFacts, list[str]]:
    """The facts the rules of the case's kind need, typed; and the needed ones that are absent or unreadable."""
    needed = DISPUTE_REQUIRED_FACTS.get(case.kind, ())
    readable: dict[str, Any] = {}
    missing: list[str] = []
    for key in needed:
        try:
            value = getattr(DisputeFacts.model_validate({key: case.facts.get(key)}), key)
        except ValidationError:
            value = None
        if value is None:
            missing.append(key if key not in case.facts else f"{key} (unreadable: {case.facts[key]!r:.40})")
        else:
            readable[key] = value
    return DisputeFacts.model_validate(readable), missing


def dispute_decision(case: DisputeCase, tiers: dict[str, Decimal], max_credit: Decimal | None) -> DisputeDecision:
    """Decide a dispute from its kind, amount and facts only (never the channel or the day): C1/C2/C6."""
    facts, missing = read_facts(case)
    eligible, amount, rule, reasons = False, Decimal(0), "", []
    if case.kind not in DISPUTE_KINDS:
        rule, reasons = "unknown_kind", [f"'{case.kind}' is not a dispute kind the rules cover"]
    elif missing:
        rule, reasons = "verification_missing", [f"verification facts missing: {', '.join(missing)}"]
    elif case.kind == "late_fee":
        days, waivers = facts.days_late or 0, facts.waivers_last_12_months or 0
        eligible = days <= LATE_FEE_GRACE_DAYS and waivers == 0
        rule = "late_fee_waiver" if eligible else "late_fee_not_waivable"
        reasons = [f"{days} day(s) late, {waivers} waiver(s) in the last 12 months"]
        amount = case.amount_usd if eligible else Decimal(0)
    elif case.kind == "settlement_fee":
        eligible = facts.settlement_error is True
        rule = "settlement_error_refund" if eligible else "settlement_fee_correct"
        reasons = ["the settlement record shows an error" if eligible else "the settlement record shows no error"]
        amount = case.amount_usd if eligible else Decimal(0)
    else:
        lost = facts.lost_kwh or Decimal(0)
        table = sorted((tiers or DEFAULT_TIERS).items(), key=lambda item: (item[1], item[0]))
        level = min(sum(1 for t in IMPACT_LEVELS_KWH if lost >= t), len(table) - 1)
        eligible, rule = True, f"outage_tier_{table[level][0]}"
        amount = table[level][1]
        reasons = [f"{lost} kWh lost puts the customer at impact level {level}"]
    if eligible and max_credit is not None and amount > max_credit:
        reasons.append(f"capped at the maximum credit of {fmt(max_credit)} USD")
        amount = max_credit
    amount = cents(amount)
    verb = f"credit {case.customer_id} {fmt(amount)} USD" if eligible else f"decline a credit to {case.customer_id}"
    return DisputeDecision(
        case_id=case.case_id,
        customer_id=case.customer_id,
        eligible=eligible,
        credit_usd=amount,
        rule=rule,
        facts=Facts(
            intent="propose",
            decision=f"{verb} for dispute {case.case_id} ({case.kind})",
            reasons=reasons,
            figures={"claimed_usd": fmt(case.amount_usd), "credit_usd": fmt(amount), "rule": rule},
            rules=["eligibility rules are fixed: the same case gets the same decision on every channel and day"],
        ),
    )
