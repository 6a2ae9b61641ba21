"""The billing desk's action arguments: each model is the one schema agents, governance, the executor and the docs
use. Money is USD. `rule` is the id of the policy rule that decided (the rule path recorded with the decision)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from pydantic import Field, ValidationInfo, field_validator

from coalition.domain import ActionArgs, Integer, Money, Number, Text


class WaiveFee(ActionArgs):
    account_id: Text
    fee_id: Text
    case_id: Text
    amount_usd: Money = Field(gt=0)
    rule: Text


class CreditAccount(ActionArgs):
    account_id: Text
    case_id: Text
    amount_usd: Money = Field(gt=0)
    tier: Text
    rule: Text


class OfferRetention(ActionArgs):
    account_id: Text
    tier: Text
    discount_pct: Number = Field(gt=0, le=100)
    months: Integer = Field(ge=1, le=36)
    rule: Text


class CancelWithoutPenalty(ActionArgs):
    account_id: Text
    case_id: Text
    penalty_waived_usd: Money = Field(ge=0)
    rule: Text


class ScheduleOutreach(ActionArgs):
    wave_id: Text
    outage_id: Text
    contacts: list[Text] = Field(min_length=1)
    priorities: list[Number]
    ordered_by: Text

    @field_validator("contacts")
    @classmethod
    def _distinct(cls, contacts: list[str]) -> list[str]:
        if len(set(contacts)) != len(contacts):
            raise ValueError(f"must name each account once, got {contacts}")
        return contacts

    @field_validator("priorities")
    @classmethod
    def _one_per_contact(cls, priorities: list[Decimal], info: ValidationInfo) -> list[Decimal]:
        contacts = info.data.get("contacts")
        if contacts is not None and len(priorities) != len(contacts):
            raise ValueError(f"must give one priority per contact ({len(contacts)}), got {len(priorities)}")
        if any(later > earlier for earlier, later in itertools.pairwise(priorities)):
            raise ValueError("must be in contact order (highest priority first)")
        return priorities


class SendReengagement(ActionArgs):
    account_id: Text
    days_inactive: Integer = Field(ge=1)
    rule: Text
    message: Text


class NotifyCustomer(ActionArgs):
    account_id: Text
    case_id: Text
    rule: Text
    message: Text


class EscalateCase(ActionArgs):
    account_id: Text
    case_id: Text
    trigger: Text  # the escalation table's rule path: why a human takes the case
