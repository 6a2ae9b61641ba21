"""Helios's built-in hard limits (for a policy that writes no `rules:`): pricing band and surge cap, claims
language, jurisdictions, credits and discounts.

Crossing a hard limit is a deny whoever asks (the limits themselves change only through a gated action).
"""

from __future__ import annotations

from decimal import Decimal

from coalition.bus.messages import ActionProposed
from coalition.governance.money import usd
from coalition.governance.rules.arguments import number
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding
from coalition.packs.helios import learned
from coalition.packs.helios.learned import PricingBand
from coalition.packs.helios.policy_model import ClaimsLimits, Jurisdictions, PricingLimits

HUNDRED = Decimal(100)


class PriceBand:
    """A price must sit inside the band in force and at most surge_cap_pct above the region's base price."""

    rule_id = "limit.price"

    def __init__(self, pricing: PricingLimits) -> None:
        self.actions: frozenset[str] | None = frozenset({"set_price"})
        self._default = PricingBand(pricing.floor, pricing.ceiling, pricing.surge_cap_pct)

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        band = learned.pricing(state.learned) or self._default
        price = number(proposal, "price")
        region = str(proposal.args["region"])
        if price < band.floor:
            return Finding("deny", "limit.price.floor", f"price {usd(price)} is below the floor {usd(band.floor)}")
        if price > band.ceiling:
            return Finding(
                "deny", "limit.price.ceiling", f"price {usd(price)} is above the ceiling {usd(band.ceiling)}"
            )
        quote = learned.prices(state.learned).get(region)
        base = quote.base_price if quote is not None else None
        if base is None:
            return Finding(
                "deny",
                "limit.price.base_unknown",
                f"no base price is known for region {region}, so the surge cap cannot be checked",
            )
        factor = 1 + band.surge_cap_pct / HUNDRED
        cap = base * factor
        if price > cap:
            return Finding(
                "deny",
                "limit.price.surge_cap",
                f"price {usd(price)} exceeds surge cap: base {usd(base)} × {factor:f} = {usd(cap)}",
            )
        return None


def _normal(text: str) -> str:
    """Case and runs of whitespace ignored."""
    return " ".join(text.split()).casefold()


class Claims:
    """Campaign copy and claims: a banned phrase anywhere is a deny; a claim outside the approved library too.
    A customer notice's message is held to the banned phrases as well (the agents' words check is the first
    line; this one does not depend on an agent having run it)."""

    rule_id = "limit.claims"

    def __init__(self, claims: ClaimsLimits) -> None:
        self.actions: frozenset[str] | None = frozenset({"launch_campaign", "notify_customers"})
        self._approved = frozenset(_normal(c) for c in claims.approved)
        self._banned = tuple((_normal(p), p) for p in claims.banned)

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        if proposal.action == "notify_customers":
            message = _normal(str(proposal.args.get("message", "")))
            for phrase, shown in self._banned:
                if phrase in message:
                    return Finding("deny", "limit.claims.banned", f"the notice contains the banned phrase {shown!r}")
            return None
        copy = _normal(str(proposal.args["copy"]))
        claims: list[str] = proposal.args["claims"]
        normal = [_normal(claim) for claim in claims]
        for phrase, shown in self._banned:
            if phrase in copy:
                return Finding("deny", "limit.claims.banned", f"the copy contains the banned phrase {shown!r}")
            for claim, text in zip(claims, normal, strict=True):
                if phrase in text:
                    return Finding(
                        "deny", "limit.claims.banned", f"claim {claim!r} contains the banned phrase {shown!r}"
                    )
        for claim, text in zip(claims, normal, strict=True):
            if text not in self._approved:
                return Finding(
                    "deny", "limit.claims.unapproved", f"claim {claim!r} is not in the approved claims library"
                )
        return None


class Discount:
    """Offers stay within the finance guardrail: discount_pct ≤ max_discount_pct."""

    rule_id = "limit.discount"

    def __init__(self, max_discount_pct: Decimal) -> None:
        self.actions: frozenset[str] | None = frozenset({"launch_campaign"})
        self._max = max_discount_pct

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        discount = number(proposal, "discount_pct")
        if discount > self._max:
            return Finding(
                "deny", self.rule_id, f"discount {discount}% is above the {self._max}% maximum (finance guardrail)"
            )
        return None


class Jurisdiction:
    """Market entry only where the status is "allowed"; no campaign where it is "prohibited".

    The status is the latest published jurisdiction pack's, else the policy's; a region in neither is not allowed.
    """

    rule_id = "limit.jurisdiction"

    def __init__(self, jurisdictions: Jurisdictions) -> None:
        self.actions: frozenset[str] | None = frozenset({"enter_market", "launch_campaign"})
        self._base = jurisdictions.statuses()

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        region = str(proposal.args["region"])
        published_statuses = learned.jurisdictions(state.learned)
        status = published_statuses.get(region) or self._base.get(region)
        published = region in published_statuses
        source = "by a published jurisdiction pack" if published else "by the policy"
        if status == "prohibited":
            return Finding("deny", "limit.jurisdiction.prohibited", f"region {region} is prohibited {source}")
        if proposal.action == "enter_market" and status != "allowed":
            why = f"is {status} {source}" if status else "is not an allowed jurisdiction"
            return Finding("deny", "limit.jurisdiction.not_allowed", f"cannot enter {region}: the region {why}")
        return None


class CreditLimit:
    """Credits to one customer, in total (authorized so far plus this one), stay within max_credit_usd."""

    rule_id = "limit.credit.max"

    def __init__(self, max_credit_usd: Decimal) -> None:
        self.actions: frozenset[str] | None = frozenset({"issue_credit"})
        self._max = max_credit_usd

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        amount = number(proposal, "amount_usd")
        customer = str(proposal.args["customer_id"])
        before = state.credited(customer)
        total = before + amount
        if total > self._max:
            already = f" (already credited {usd(before)})" if before else ""
            return Finding(
                "deny",
                self.rule_id,
                f"credit {usd(amount)} to {customer} would bring its total to {usd(total)}{already}, "
                f"above the {usd(self._max)} per-customer maximum",
            )
        return None
