"""The observations of Helios's world: each kind with the agents it goes to (unless an event names its own `to`).
The data model each kind's readers accept is in observation_models (imported when a scenario is checked or a
world runs, not when a command only reads the pack's vocabulary)."""

from __future__ import annotations

EVERY_AGENT = ("research", "finance", "marketing", "legal", "ops")

OBSERVATIONS: dict[str, tuple[str, ...]] = {
    "market.snapshot": EVERY_AGENT,
    "policy.brief": EVERY_AGENT,
    "market.signals": ("research",),
    "news": ("research",),
    "supply.shock": ("finance", "ops"),
    "meter.outage": ("ops",),
    "meter.restored": ("ops",),
    "settlement.mismatch": ("finance", "ops"),
    "regulatory.change": ("legal",),
    "capital.need": ("finance",),
    "growth.goal": ("marketing",),
    "suspicious.trades": ("ops",),
    "budget.pressure": ("research",),
    "dispute": ("ops",),
    "customer.complaints": ("marketing",),
    "experiment.plan": ("marketing",),
    "experiment.result": ("marketing",),
    # Only scenarios of the sales and liquidity agents schedule these: the five agents' runs never see them.
    "partner.pipeline": ("sales",),
    "ops.capacity": ("sales",),
    "market.sides": ("liquidity",),
}
# Emitted by the world and the runner themselves: a scenario cannot schedule them.
GENERATED = frozenset({"market.snapshot", "policy.brief"})
