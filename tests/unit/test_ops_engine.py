"""Ops' engine: outage severity, credit tiers, the outage runbook and fraud containment."""

from __future__ import annotations

from decimal import Decimal

import pytest

from coalition.packs.helios.agents.ops import engine
from coalition.packs.helios.payloads import AffectedCustomer, MeterOutage, SuspiciousTrades

pytestmark = pytest.mark.unit

TIERS = {"silver": Decimal(25), "bronze": Decimal(10), "gold": Decimal(50)}


def _outage(customers: int, hours: str, kwh_each: str) -> MeterOutage:
    return MeterOutage(
        region="TX",
        meters_down=customers,
        hours=Decimal(hours),
        customers=[AffectedCustomer(id=f"c{i:03d}", lost_kwh=Decimal(kwh_each)) for i in range(customers)],
    )


class TestSeverity:
    """A stable classification on 1..5 from customers, hours and kWh lost."""

    @pytest.mark.parametrize(
        ("customers", "hours", "kwh_each", "severity"),
        [
            (1, "1", "10", 1),  # 0 points
            (10, "1", "10", 2),  # customers ≥ 10
            (10, "2", "10", 3),  # + hours ≥ 2
            (10, "2", "50", 4),  # + 500 kWh in total
            (100, "8", "10", 5),  # 2 + 2 + 1 (1000 kWh) = 5 points
            (100, "8", "50", 5),  # 6 points, still 5
        ],
    )
    def test_table(self, customers: int, hours: str, kwh_each: str, severity: int) -> None:
        """Each dimension adds points; the sum maps to a severity."""
        assert engine.severity(_outage(customers, hours, kwh_each))[0] == severity

    def test_same_outage_same_severity(self) -> None:
        """Classification depends on the numbers only (customer order and segments do not matter)."""
        outage = _outage(12, "3", "40")
        shuffled = outage.model_copy(update={"customers": list(reversed(outage.customers))})
        assert engine.severity(outage) == engine.severity(shuffled)


class TestCredits:
    """Credit by tier from lost kWh; identical impact ⇒ identical tier and amount."""

    @pytest.mark.parametrize(
        ("kwh", "tier", "amount"),
        [
            ("0", "bronze", "10.00"),
            ("49.99", "bronze", "10.00"),
            ("50", "silver", "25.00"),
            ("200", "gold", "50.00"),
            ("5000", "gold", "50.00"),
        ],
    )
    def test_tier_by_impact(self, kwh: str, tier: str, amount: str) -> None:
        """Tiers are taken cheapest first as impact grows; the top tier absorbs the rest."""
        (credit,) = engine.credits([AffectedCustomer(id="c", lost_kwh=Decimal(kwh))], "INC", TIERS, None)
        assert (credit.tier, credit.amount_usd) == (tier, Decimal(amount))

    def test_equal_impact_gets_equal_tier_and_amount_whatever_the_segment(self) -> None:
        """A business and a household that lost the same energy get the same credit."""
        customers = [
            AffectedCustomer(id="c2", segment="home", lost_kwh=Decimal(120)),
            AffectedCustomer(id="c1", segment="business", lost_kwh=Decimal(120)),
        ]
        credits = engine.credits(customers, "INC", TIERS, None)
        assert [c.customer_id for c in credits] == ["c1", "c2"]
        assert {(c.tier, c.amount_usd) for c in credits} == {("silver", Decimal(25))}
        assert credits[0].facts.model_copy(update={"decision": ""}) == credits[1].facts.model_copy(
            update={"decision": ""}
        )

    def test_max_credit_caps_the_amount(self) -> None:
        """The brief's max credit per customer is never exceeded."""
        (credit,) = engine.credits([AffectedCustomer(id="c", lost_kwh=Decimal(900))], "INC", TIERS, Decimal(30))
        assert credit.amount_usd == Decimal(30)

    def test_default_tiers_without_a_brief(self) -> None:
        """Without tiers in the brief the stated defaults apply (and the rationale says so)."""
        (credit,) = engine.credits([AffectedCustomer(id="c", lost_kwh=Decimal(10))], "INC", {}, None)
        assert (credit.tier, credit.amount_usd) == ("standard", Decimal(10))
        assert any("default credit tiers" in r for r in credit.facts.rules)


class TestRunbooks:
    """The outage and fraud responses."""

    def test_outage_response(self) -> None:
        """Incident id from the hint, one credit per customer, a notice for the other agents."""
        outage = _outage(3, "6", "120").model_copy(update={"incident_hint": "INC-7"})
        response = engine.outage_response(outage, "ev", TIERS, Decimal(100), 3)
        assert response.incident_args["incident_id"] == "INC-7"
        assert response.incident_args["severity"] == response.severity == 2
        assert response.pause_args["region"] == "TX"
        assert [response.credit_args(c)["customer_id"] for c in response.credits] == ["c000", "c001", "c002"]
        assert response.notice.model_dump() == {
            "incident_id": "INC-7",
            "severity": 2,
            "regions": ["TX"],
            "affected_customers": 3,
        }

    def test_outage_without_hint_gets_a_derived_id(self) -> None:
        """The evidence id makes the incident id stable across runs."""
        assert (
            engine.outage_response(_outage(1, "1", "1"), "0123456789", {}, None, None).incident_id == "inc-tx-01234567"
        )

    def test_fraud_freezes_each_account_once_in_order(self) -> None:
        """Duplicates collapse; accounts are frozen in sorted order."""
        trades = SuspiciousTrades(accounts=["b", "a", "b"], pattern="wash trading", value_usd=Decimal(9000))
        response = engine.fraud_response(trades, "abcdef0123")
        assert [account for account, _ in response.freezes] == ["a", "b"]
        assert response.incident_id == "fraud-abcdef01"


DISPUTE_TIERS = {"minor": Decimal(25), "moderate": Decimal(75), "major": Decimal(150), "severe": Decimal(250)}


class TestDisputes:
    """Fixed eligibility rules: the channel never changes the decision; credits are capped."""

    def _case(self, kind: str, amount: str, facts: dict[str, object], channel: str = "phone") -> engine.DisputeCase:
        return engine.DisputeCase(
            case_id="c1", customer_id="TX-B0001", channel=channel, kind=kind, amount_usd=Decimal(amount), facts=facts
        )

    def test_same_case_any_channel_same_decision(self) -> None:
        """phone, chat, email and app give one decision and amount."""
        decisions = {
            (d.eligible, d.credit_usd, d.rule)
            for d in (
                engine.dispute_decision(
                    self._case("late_fee", "35", {"days_late": 4, "waivers_last_12_months": 0}, ch), DISPUTE_TIERS, None
                )
                for ch in ("phone", "chat", "email", "app")
            )
        }
        assert decisions == {(True, Decimal("35.00"), "late_fee_waiver")}

    @pytest.mark.parametrize(
        ("kind", "amount", "facts", "eligible", "credit", "rule"),
        [
            ("late_fee", "35", {"days_late": 30, "waivers_last_12_months": 0}, False, "0.00", "late_fee_not_waivable"),
            ("late_fee", "35", {"days_late": 2, "waivers_last_12_months": 1}, False, "0.00", "late_fee_not_waivable"),
            ("settlement_fee", "120", {"settlement_error": True}, True, "100.00", "settlement_error_refund"),
            ("settlement_fee", "120", {}, False, "0.00", "verification_missing"),
            ("outage_credit", "400", {"lost_kwh": 1500}, True, "100.00", "outage_tier_severe"),
            ("refund_everything", "10", {}, False, "0.00", "unknown_kind"),
        ],
    )
    def test_rules(
        self, kind: str, amount: str, facts: dict[str, object], eligible: bool, credit: str, rule: str
    ) -> None:
        """Each rule path, with the maximum credit (100) capping the severe tier."""
        decision = engine.dispute_decision(self._case(kind, amount, facts), DISPUTE_TIERS, Decimal(100))
        assert (decision.eligible, decision.credit_usd, decision.rule) == (eligible, Decimal(credit), rule)

    @pytest.mark.parametrize(
        ("kind", "facts", "named"),
        [
            ("outage_credit", {"lost_kwh": "lots"}, "lost_kwh (unreadable: 'lots')"),
            ("outage_credit", {"lost_kwh": float("nan")}, "lost_kwh (unreadable: nan)"),
            ("outage_credit", {"lost_kwh": -3}, "lost_kwh (unreadable: -3)"),
            ("late_fee", {"days_late": "a week", "waivers_last_12_months": 0}, "days_late (unreadable: 'a week')"),
            ("late_fee", {"days_late": None, "waivers_last_12_months": 0}, "days_late (unreadable: None)"),
            ("settlement_fee", {"settlement_error": "perhaps"}, "settlement_error (unreadable: 'perhaps')"),
        ],
    )
    def test_an_unreadable_fact_is_a_missing_verification(
        self, kind: str, facts: dict[str, object], named: str
    ) -> None:
        """A fact the rules cannot read takes the verification_missing path (no credit), never an exception."""
        decision = engine.dispute_decision(self._case(kind, "40", facts), DISPUTE_TIERS, Decimal(100))
        assert (decision.eligible, decision.credit_usd, decision.rule) == (
            False,
            Decimal("0.00"),
            "verification_missing",
        )
        assert decision.facts.reasons == [f"verification facts missing: {named}"]
