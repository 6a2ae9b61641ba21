"""Helios Renewables Exchange's action arguments: each model is the one schema agents, governance, the executor
and the docs use (see actions.py for the declarations). Money is USD, prices USD/MWh."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from coalition.domain import ActionArgs, Flag, Integer, IsoDate, Money, Number, Text, Texts

RegulatoryStatus = Literal["allowed", "restricted", "prohibited"]
SettlementWindow = Literal["T+1", "T+3"]


class CommissionResearch(ActionArgs):
    topic: Text
    cost_usd: Money = Field(ge=0)


class SetPrice(ActionArgs):
    region: Text
    price: Money = Field(gt=0)


class ChangePricingPolicy(ActionArgs):
    floor: Money = Field(gt=0)
    ceiling: Money = Field(gt=0)
    surge_cap_pct: Number = Field(ge=0, le=1000)

    @field_validator("ceiling")
    @classmethod
    def _above_floor(cls, ceiling: Decimal, info: ValidationInfo) -> Decimal:
        floor = info.data.get("floor")
        if floor is not None and ceiling <= floor:
            raise ValueError(f"must be above the floor ({floor}), got {ceiling}")
        return ceiling


class EnterMarket(ActionArgs):
    region: Text
    sequence: Integer = Field(ge=1)
    investment_usd: Money = Field(ge=0)


class SetSettlementPolicy(ActionArgs):
    window: SettlementWindow
    reserve_ratio: Number = Field(ge=0, le=1)


class CommitCapital(ActionArgs):
    amount_usd: Money = Field(gt=0)
    purpose: Text


class LaunchCampaign(ActionArgs):
    campaign_id: Text
    region: Text
    channel: Text
    copy_text: Text = Field(alias="copy")
    claims: Texts
    budget_usd: Money = Field(ge=0)
    discount_pct: Number = Field(ge=0, le=100)


class RunExperiment(ActionArgs):
    experiment_id: Text
    hypothesis: Text
    budget_usd: Money = Field(ge=0)
    metric: Text
    stop_threshold: Number


class StopExperiment(ActionArgs):
    experiment_id: Text
    reason: Text


class PublishJurisdictionPack(ActionArgs):
    region: Text
    status: RegulatoryStatus
    obligations: Texts
    effective: IsoDate
    material: Flag


class PauseSettlement(ActionArgs):
    region: Text
    incident_id: Text
    reason: Text


class ResumeSettlement(ActionArgs):
    region: Text
    incident_id: Text


class OpenIncident(ActionArgs):
    incident_id: Text
    kind: Text
    severity: Integer = Field(ge=1, le=5)
    regions: Texts  # may be empty: a fraud incident can concern accounts, not regions
    affected_customers: Integer = Field(ge=0)
    summary: Text


class IssueCredit(ActionArgs):
    customer_id: Text
    incident_id: Text
    tier: Text
    amount_usd: Money = Field(gt=0)


class NotifyCustomers(ActionArgs):
    incident_id: Text
    audience: Text
    message: Text


class FreezeAccount(ActionArgs):
    account_id: Text
    incident_id: Text
    reason: Text


class RotateCredentials(ActionArgs):
    system: Text
    reason: Text


class TransferFunds(ActionArgs):
    amount_usd: Money = Field(gt=0)
    destination: Text
    reason: Text


class RequestModelBudget(ActionArgs):
    tokens: Integer = Field(ge=0)
    cost_usd: Money = Field(ge=0)
    reason: Text


class SignPartnership(ActionArgs):
    partner_id: Text
    region: Text
    template: Text  # the legal template the deal is signed on
    commitment_usd: Money = Field(gt=0)
    volume_mwh: Number = Field(ge=0)
    integration_hours: Integer = Field(ge=0)
    score: Number = Field(ge=0, le=100)


class MakeLiquidityOffer(ActionArgs):
    offer_id: Text
    region: Text
    side: Literal["producers", "buyers"]
    incentive_pct: Number = Field(gt=0, le=100)
    targets: Integer = Field(ge=1)
    budget_usd: Money = Field(gt=0)
