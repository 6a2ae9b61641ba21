"""Research's decisions: score regions from market signals, split off the no-go regions, screen news."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from coalition.agents.facts import Facts
from coalition.agents.money import cents, fmt, number
from coalition.agents.screening import screen
from coalition.packs.helios.payloads import (
    BudgetPressure,
    MarketSignals,
    NoGoRegion,
    RankedRegion,
    ScreeningFlag,
    Shortlist,
)

# Weights of the viability score (sum 1). Price sensitivity counts for a region: the seed's H1 enters where
# "a legal path exists and demand signals show price sensitivity" (a P2P exchange wins on price).
WEIGHTS: dict[str, Decimal] = {
    "regulatory_viability": Decimal("0.40"),
    "demand": Decimal("0.35"),
    "price_sensitivity": Decimal("0.25"),
}
SCORE_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class MarketView:
    """Research's reading of one market.signals observation."""

    shortlist: Shortlist
    no_go: list[NoGoRegion]
    facts: Facts
    no_go_facts: Facts | None


def score(signal_regulatory: Decimal, demand: Decimal, price_sensitivity: Decimal) -> Decimal:
    total = (
        WEIGHTS["regulatory_viability"] * signal_regulatory
        + WEIGHTS["demand"] * demand
        + WEIGHTS["price_sensitivity"] * price_sensitivity
    )
    return total.quantize(SCORE_PLACES, rounding=ROUND_HALF_EVEN)


def assess(signals: MarketSignals, screening: list[ScreeningFlag]) -> MarketView:
    """Rank the regions with a legal path (score desc, then region name); the others are no-go."""
    scored: list[tuple[Decimal, str]] = []
    no_go: list[NoGoRegion] = []
    for region in sorted(signals.regions):
        signal = signals.regions[region]
        if not signal.legal_path:
            no_go.append(NoGoRegion(region=region, reason="no legal path to operate"))
            continue
        scored.append((score(signal.regulatory_viability, signal.demand, signal.price_sensitivity), region))
    scored.sort(key=lambda item: (-item[0], item[1]))
    ranked = [
        RankedRegion(
            region=region,
            score=float(value),
            regulatory_viability=float(signals.regions[region].regulatory_viability),
            demand=float(signals.regions[region].demand),
            price_sensitivity=float(signals.regions[region].price_sensitivity),
        )
        for value, region in scored
    ]
    flagged = [f for f in screening if f.flags]
    reasons = [
        f"{r.region} scores {r.score:.4f} (viability {r.regulatory_viability}, demand {r.demand}, "
        f"price sensitivity {r.price_sensitivity})"
        for r in ranked[:3]
    ]
    if no_go:
        reasons.append(f"{len(no_go)} region(s) lack a legal path: {', '.join(n.region for n in no_go)}")
    if flagged:
        reasons.append(f"{len(flagged)} untrusted news item(s) were flagged and not acted upon")
    top = ", ".join(r.region for r in ranked) or "no region"
    facts = Facts(
        intent="inform",
        decision=f"rank the candidate markets as {top}",
        reasons=reasons,
        figures={"sources": str(len(signals.sources)), "regions scored": str(len(ranked))},
        rules=["score = 0.40 regulatory viability + 0.35 demand + 0.25 price sensitivity; ties by region name"],
    )
    no_go_facts = (
        Facts(
            intent="inform",
            decision=f"mark {', '.join(n.region for n in no_go)} as no-go",
            reasons=[f"{n.region}: {n.reason}" for n in no_go],
        )
        if no_go
        else None
    )
    return MarketView(Shortlist(ranked=ranked, screening=screening), no_go, facts, no_go_facts)


def screen_news(evidence_id: str, source: str, text: str | None) -> ScreeningFlag:
    """Label an untrusted news text; the label is the only thing it can change."""
    return ScreeningFlag(evidence_id=evidence_id, source=source or "unknown", flags=screen(text))


@dataclass(frozen=True, slots=True)
class Commission:
    topic: str
    cost_usd: Decimal
    facts: Facts


def commission(pressure: BudgetPressure) -> Commission:
    """Commission the research asked for at the cost stated; the budget rule decides whether it is affordable."""
    cost = cents(pressure.cost_usd)
    return Commission(
        topic=pressure.topic,
        cost_usd=cost,
        facts=Facts(
            intent="propose",
            decision=f"commission research on {pressure.topic} for {fmt(cost)} USD",
            reasons=["the question was raised with a stated cost and research has no cheaper source for it"],
            figures={"cost_usd": fmt(cost)},
            rules=["research money budget applies; an overrun escalates as a budget request"],
        ),
    )


def commission_args(decision: Commission) -> dict[str, object]:
    return {"topic": decision.topic, "cost_usd": number(decision.cost_usd)}
