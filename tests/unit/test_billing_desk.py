"""The billing-desk pack: its world and handlers, its policy's eligibility tables (rules as data: a number changed
in the YAML changes the decision), its engines, and identical cases decided identically whatever the channel,
day or wording — injected instructions included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from coalition.domain import ActionContext, ActionRefused, catalog
from coalition.packs.billing_desk import PACK, engines
from coalition.packs.billing_desk.arguments import ScheduleOutreach, WaiveFee
from coalition.packs.billing_desk.effects import waive_fee
from coalition.packs.billing_desk.engines import AccountView, CaseData, OutageData, Snapshot
from coalition.packs.billing_desk.rules import Eligibility, PolicyProblem, default_eligibility, default_policy_text
from coalition.packs.billing_desk.world import Desk, DeskSpec

pytestmark = pytest.mark.unit

RULES = default_eligibility()
POLICY: dict[str, Any] = yaml.safe_load(default_policy_text())
CTX = ActionContext(agent="billing", proposal_id="p-1", day=3)


def policy_with(path: str, value: Any) -> Eligibility:
    """The default policy with one limit changed (no code change)."""
    doc = yaml.safe_load(default_policy_text())
    node = doc["limits"]
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return Eligibility.from_policy(doc, "test.yaml")


def account(**over: Any) -> AccountView:
    base: dict[str, Any] = {
        "account_id": "A-1",
        "tenure_months": 24,
        "monthly_usage_kwh": 700,
        "last_login_day": 0,
        "fees": [{"fee_id": "F-1", "kind": "late_fee", "amount_usd": 35}],
    }
    return AccountView.model_validate({**base, **over})


def case(**over: Any) -> CaseData:
    base: dict[str, Any] = {
        "case_id": "C-1",
        "account_id": "A-1",
        "channel": "phone",
        "kind": "fee_dispute",
        "fee_id": "F-1",
        "days_late": 4,
    }
    return CaseData.model_validate({**base, **over})


def desk() -> Desk:
    return Desk.from_spec(
        DeskSpec.model_validate(
            {
                "accounts": [
                    {
                        "account_id": "A-1",
                        "customer": "Ana",
                        "tenure_months": 24,
                        "monthly_usage_kwh": 700,
                        "last_login_day": 0,
                        "fees": [{"fee_id": "F-1", "kind": "late_fee", "amount_usd": 35}],
                    },
                    {
                        "account_id": "A-2",
                        "customer": "Ben",
                        "tenure_months": 2,
                        "monthly_usage_kwh": 100,
                        "last_login_day": -20,
                    },
                ]
            }
        )
    )


class TestPack:
    def test_the_pack_is_installed_beside_helios(self) -> None:
        assert catalog().pack("billing-desk") is PACK
        assert PACK.agent_names == ("billing", "retention", "outreach")
        assert {a.name for a in PACK.actions} == {
            "waive_fee",
            "credit_account",
            "offer_retention",
            "cancel_without_penalty",
            "schedule_outreach",
            "send_reengagement",
            "notify_customer",
            "escalate_case",
        }

    def test_its_policy_permits_each_action_to_its_proposers(self) -> None:
        for action in PACK.actions:
            for agent in action.proposers:
                assert action.name in POLICY["permissions"][agent]


class TestWorld:
    def test_a_waiver_changes_the_balance_once_and_a_second_is_refused_untouched(self) -> None:
        d = desk()
        args = WaiveFee(account_id="A-1", fee_id="F-1", case_id="C-1", amount_usd=Decimal(35), rule="r")
        changes = waive_fee(d, args, CTX)
        assert changes["fee_waived"]["amount_usd"] == 35.0
        assert d.state.accounts["A-1"].balance_usd == 0
        before = d.state.model_dump()
        with pytest.raises(ActionRefused, match="already waived"):
            waive_fee(d, args, CTX)
        assert d.state.model_dump() == before

    def test_a_waiver_of_another_amount_or_fee_is_refused(self) -> None:
        d = desk()
        with pytest.raises(ActionRefused, match=r"is 35\.00 USD, not 10"):
            waive_fee(d, WaiveFee(account_id="A-1", fee_id="F-1", case_id="C", amount_usd=Decimal(10), rule="r"), CTX)
        with pytest.raises(ActionRefused, match="has no fee"):
            waive_fee(d, WaiveFee(account_id="A-2", fee_id="F-1", case_id="C", amount_usd=Decimal(35), rule="r"), CTX)

    def test_the_spec_refuses_duplicate_accounts(self) -> None:
        row = {"account_id": "A", "customer": "x", "tenure_months": 1, "monthly_usage_kwh": 1, "last_login_day": 0}
        with pytest.raises(ValueError, match="account ids must be unique"):
            DeskSpec.model_validate({"accounts": [row, row]})

    def test_outreach_arguments_must_be_in_priority_order(self) -> None:
        with pytest.raises(ValueError, match="contact order"):
            ScheduleOutreach(
                wave_id="w", outage_id="o", contacts=["a", "b"], priorities=[Decimal(1), Decimal(2)], ordered_by="x"
            )


class TestRulesAsData:
    def test_the_maximum_credit_is_the_policy_number(self) -> None:
        c = case(kind="billing_error", verified=True, overcharge_usd=400)
        assert engines.resolve_case(c, account(), RULES, {}).steps[0].args["amount_usd"] == 150.0
        lower = policy_with("max_credit_usd", 90)
        assert engines.resolve_case(c, account(), lower, {}).steps[0].args["amount_usd"] == 90.0

    def test_the_reengagement_threshold_is_the_policy_number(self) -> None:
        snap = Snapshot(day=12, accounts=[account(last_login_day=0)])
        assert [s.args["days_inactive"] for s in engines.reengagements(snap, RULES)] == [12]
        assert engines.reengagements(snap, policy_with("reengagement.inactive_days", 20)) == []

    def test_outage_tiers_are_the_policy_numbers(self) -> None:
        outage = OutageData(outage_id="O", hours=Decimal(30), accounts=["A-1"])
        step = engines.outage_credit(outage, "A-1", RULES)
        assert step is not None
        assert (step.args["tier"], step.args["amount_usd"]) == ("outage:major", 60.0)
        step = engines.outage_credit(outage, "A-1", policy_with("outage.major_hours", 31))
        assert step is not None
        assert (step.args["tier"], step.args["amount_usd"]) == ("outage:moderate", 25.0)

    def test_the_escalation_floor_is_the_policy_number(self) -> None:
        c = case(sentiment=-0.5)
        assert engines.resolve_case(c, account(), RULES, {}).outcome == "fee_waived"
        assert (
            engines.resolve_case(c, account(), policy_with("escalation.sentiment_floor", -0.4), {}).outcome
            == "escalated"
        )

    @pytest.mark.parametrize(
        ("edit", "message"),
        [
            (
                lambda d: d["eligibility"]["fee_waiver"][0].update(when="case.days_late <= limits.fees.grace"),
                "test.yaml: eligibility.fee_waiver[0].when: unknown name limits.fees.grace",
            ),
            (
                lambda d: d["eligibility"]["fee_waiver"][0].update(when="case.days_late <="),
                "test.yaml: eligibility.fee_waiver[0].when:",
            ),
            (lambda d: d["eligibility"]["escalation"].pop(), "test.yaml: eligibility.escalation[3].when: the last row"),
            (
                lambda d: d["eligibility"]["fee_waiver"][0].update(when="customer.vip"),
                "test.yaml: eligibility.fee_waiver[0].when: unknown variable 'customer'",
            ),
            (lambda d: d["eligibility"].pop("cancellation"), "test.yaml: eligibility: missing tables: cancellation"),
            (
                lambda d: d["eligibility"]["fee_waiver"][0].update(extra=1),
                "test.yaml: eligibility.fee_waiver[0].extra: is not",
            ),
        ],
    )
    def test_a_bad_rule_is_one_line_naming_file_and_path(self, edit: Any, message: str) -> None:
        doc = yaml.safe_load(default_policy_text())
        edit(doc)
        with pytest.raises(PolicyProblem) as caught:
            Eligibility.from_policy(doc, "test.yaml")
        assert str(caught.value).startswith(message)
        assert "\n" not in str(caught.value)


class TestEngines:
    def test_every_escalation_trigger_hands_the_case_to_a_human(self) -> None:
        triggers = {
            "escalation/regulatory.unauthorised_transfer": case(unauthorised_transfer=True),
            "escalation/regulatory.regulator_named": case(regulator="State Public Utility Commission"),
            "escalation/sentiment.below_floor": case(sentiment=-0.9),
            "escalation/journey.too_long": case(journey_days=15),
        }
        for trigger, c in triggers.items():
            resolution = engines.resolve_case(c, account(), RULES, {})
            assert [(s.action, s.args["trigger"]) for s in resolution.steps] == [("escalate_case", trigger)]

    def test_retention_tiers(self) -> None:
        churn = case(kind="churn_signal")
        tiers = {
            (48, 900, 0.8): "gold",
            (14, 700, 0.5): "silver",
            (3, 2000, 0.45): "silver",
            (3, 400, 0.5): "bronze",
        }
        for (tenure, usage, risk), tier in tiers.items():
            step = engines.retention_offer(
                churn, account(tenure_months=tenure, monthly_usage_kwh=usage, churn_risk=risk), RULES
            )
            assert step is not None
            assert step.args["tier"] == tier
        assert engines.retention_offer(churn, account(churn_risk=0.1), RULES) is None

    def test_fair_outreach_order_is_need_then_account_id_never_usage(self) -> None:
        outage = OutageData(outage_id="O", hours=Decimal(5), accounts=["C", "B", "A", "D"])
        accounts = {
            "A": account(account_id="A", monthly_usage_kwh=9000),
            "B": account(account_id="B", vulnerable=True),
            "C": account(account_id="C"),
            "D": account(account_id="D", cancelled=True),
        }
        step = engines.outreach_wave(outage, accounts, RULES)
        assert step is not None
        assert step.args["contacts"] == ["B", "A", "C"]
        assert step.args["priorities"] == [1050.0, 50.0, 50.0]
        assert step.args["ordered_by"] == "outreach_priority/need_then_hours_without_power; ties by account id"


CHANNELS = st.sampled_from(["phone", "chat", "email", "app"])
FACTS = st.fixed_dictionaries(
    {
        "kind": st.sampled_from(["fee_dispute", "billing_error", "cancellation"]),
        "days_late": st.integers(0, 40),
        "verified": st.booleans(),
        "overcharge_usd": st.integers(0, 500),
        "sentiment": st.sampled_from([-1, -0.7, -0.6, -0.2, 0, 0.5]),
        "journey_days": st.integers(0, 30),
        "service_failures_90d": st.integers(0, 5),
        "unauthorised_transfer": st.booleans(),
        "regulator": st.sampled_from(["", "State Public Utility Commission"]),
    }
)
ACCOUNTS = st.fixed_dictionaries(
    {
        "tenure_months": st.integers(0, 80),
        "waivers_12m": st.integers(0, 2),
        "contract_months_left": st.integers(0, 12),
        "early_exit_fee_usd": st.sampled_from([0, 90, 150]),
        "churn_risk": st.sampled_from([0, 0.4, 0.7]),
        "last_login_day": st.integers(-20, 0),
    }
)


def decided(facts: dict[str, Any], acc: dict[str, Any], channel: str, day: int, case_id: str) -> tuple[Any, ...]:
    """The decisions a case gets (billing resolution, retention offer, re-engagement), as the ledger compares them:
    the case id aside, which names the case, not the decision."""
    snap = Snapshot(day=day, accounts=[account(**acc)])
    view = snap.accounts[0]
    c = case(channel=channel, case_id=case_id, **facts)
    r = engines.resolve_case(c, view, RULES, {})
    offer = engines.retention_offer(c.model_copy(update={"kind": "churn_signal"}), view, RULES)
    steps = [(s.action, {k: v for k, v in s.args.items() if k != "case_id"}) for s in r.steps]
    return (r.outcome, r.rule, steps, offer.args if offer else None)


@settings(max_examples=200, deadline=None)
@given(FACTS, ACCOUNTS, CHANNELS, CHANNELS, st.integers(0, 30), st.integers(0, 30))
def test_identical_cases_get_identical_decisions_whatever_channel_or_day(
    facts: dict[str, Any], acc: dict[str, Any], ch1: str, ch2: str, d1: int, d2: int
) -> None:
    assert decided(facts, acc, ch1, d1, "C-1") == decided(facts, acc, ch2, d2, "C-2")


def test_a_policy_reading_the_channel_would_be_caught() -> None:
    """The property above can fail: a table that treats phone callers better breaks it."""
    doc = yaml.safe_load(default_policy_text())
    doc["eligibility"]["fee_waiver"].insert(
        0, {"id": "phone_bonus", "when": 'case.channel == "phone"', "then": {"waive": True}}
    )
    rules = Eligibility.from_policy(doc, "test.yaml")
    c = case(days_late=30)
    assert engines.resolve_case(c, account(), rules, {}).outcome == "fee_waived"
    assert (
        engines.resolve_case(c.model_copy(update={"channel": "chat"}), account(), rules, {}).outcome == "fee_not_waived"
    )
