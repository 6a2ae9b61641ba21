"""Sales' decisions for partnerships (seed H9): score each partner candidate — a utility, an installer or a
community solar group — on time-to-close, integration cost, regulatory drag and volume; keep only deals on a legal
template and within finance's limits; and say "yes" only to what ops has the integration capacity for. Pure: the
same pipeline, limits and capacity give the same decisions."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

PartnerKind = Literal["utility", "installer", "community_solar"]


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PartnerCandidate(_Data):
    """One partner in the pipeline, as the deal desk describes it."""

    partner_id: str = Field(min_length=1)
    kind: PartnerKind
    region: str = Field(min_length=1)
    time_to_close_days: int = Field(ge=0)
    integration_cost_usd: Decimal = Field(ge=0, allow_inf_nan=False)
    regulatory_drag: Decimal = Field(ge=0, le=1, allow_inf_nan=False)  # 0: no friction, 1: blocked
    volume_mwh: Decimal = Field(ge=0, allow_inf_nan=False)  # per month, once live
    commitment_usd: Decimal = Field(gt=0, allow_inf_nan=False)  # what Helios commits (guarantees, co-marketing)
    template: str = Field(min_length=1)  # the legal template the proposal would be signed on
    integration_hours: int = Field(ge=0)  # ops' onboarding work for this partner


class DealTerms(_Data):
    """Finance's and legal's constraints for the quarter's deals: the most one deal may commit, the total, the
    legal templates a deal may be signed on, and the lowest score worth proposing."""

    max_commitment_usd: Decimal = Field(gt=0, allow_inf_nan=False)
    total_commitment_usd: Decimal = Field(gt=0, allow_inf_nan=False)
    templates: list[str] = Field(min_length=1)
    min_score: Decimal = Field(default=Decimal("50"), ge=0, le=100, allow_inf_nan=False)


class PartnerPipeline(_Data):
    """The `partner.pipeline` observation: the candidates and the terms they are weighed against."""

    candidates: list[PartnerCandidate] = Field(min_length=1)
    terms: DealTerms


class OpsCapacity(_Data):
    """The `ops.capacity` observation: the integration hours ops can take on for new partners."""

    integration_hours: int = Field(ge=0)


# Each criterion's weight (sums to 100) and the value at which it scores 0 (or 100, for volume).
WEIGHTS = {"time_to_close": Decimal(25), "integration_cost": Decimal(25), "regulatory_drag": Decimal(25)}
WEIGHTS["volume"] = Decimal(25)
SLOWEST_CLOSE_DAYS = Decimal(180)  # a deal that takes half a year or more scores 0 on time-to-close
COSTLIEST_INTEGRATION_USD = Decimal(200_000)
FULL_VOLUME_MWH = Decimal(5_000)  # a partner bringing 5 GWh a month or more scores full marks on volume


def _clamp(x: Decimal) -> Decimal:
    return min(Decimal(1), max(Decimal(0), x))


def score(c: PartnerCandidate) -> Decimal:
    """0..100, two decimals: quicker, cheaper, less regulated and bigger partners score higher."""
    parts = {
        "time_to_close": 1 - _clamp(Decimal(c.time_to_close_days) / SLOWEST_CLOSE_DAYS),
        "integration_cost": 1 - _clamp(c.integration_cost_usd / COSTLIEST_INTEGRATION_USD),
        "regulatory_drag": 1 - c.regulatory_drag,
        "volume": _clamp(c.volume_mwh / FULL_VOLUME_MWH),
    }
    total = sum((WEIGHTS[k] * v for k, v in parts.items()), Decimal(0))
    return total.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)


Verdict = Literal["propose", "below_score", "off_template", "over_deal_limit", "over_total", "no_capacity"]


@dataclass(frozen=True, slots=True)
class Assessment:
    candidate: PartnerCandidate
    score: Decimal
    verdict: Verdict
    why: str


def assess(pipeline: PartnerPipeline, capacity_hours: int, committed_usd: Decimal = Decimal(0)) -> list[Assessment]:
    """Every candidate, best score first (ties by partner id), with what sales does about it, given the
    integration hours ops still has and what earlier deals already commit.

    Candidates are taken in that order: each proposed deal uses its integration hours and commitment, so a
    later one may find no ops capacity (never a "yes" ops cannot deliver) or no finance headroom left."""
    terms = pipeline.terms
    ranked = sorted(((score(c), c) for c in pipeline.candidates), key=lambda sc: (-sc[0], sc[1].partner_id))
    hours, committed = capacity_hours, committed_usd
    out: list[Assessment] = []
    for s, c in ranked:
        verdict, why = _verdict(terms, s, c, hours, committed)
        if verdict == "propose":
            hours -= c.integration_hours
            committed += c.commitment_usd
        out.append(Assessment(c, s, verdict, why))
    return out


def _verdict(terms: DealTerms, s: Decimal, c: PartnerCandidate, hours: int, committed: Decimal) -> tuple[Verdict, str]:
    """What sales does with one candidate, given the hours and commitment the better ones already took."""
    if s < terms.min_score:
        return "below_score", f"score {s} is below the {terms.min_score} bar"
    if c.template not in terms.templates:
        return "off_template", f"template {c.template!r} is not one of legal's ({', '.join(terms.templates)})"
    if c.commitment_usd > terms.max_commitment_usd:
        limit = terms.max_commitment_usd
        return "over_deal_limit", f"commitment {c.commitment_usd} USD is above finance's {limit} USD per deal"
    if committed + c.commitment_usd > terms.total_commitment_usd:
        total = terms.total_commitment_usd
        return "over_total", f"commitment {c.commitment_usd} USD would pass the {total} USD total ({committed} taken)"
    if c.integration_hours > hours:
        return "no_capacity", f"needs {c.integration_hours} integration hours; ops has {hours} left"
    return "propose", f"score {s}; fits the terms and ops capacity ({hours} hours left)"
