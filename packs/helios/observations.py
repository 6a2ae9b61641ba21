"""The observations of Helios's world: each kind with the agents it goes to (unless an event names its own `to`),
and the data model its readers accept (a scenario's events are checked against it when the file loads)."""

from __future__ import annotations

from pydantic import BaseModel

from coalition.packs.helios.liquidity import MarketSides
from coalition.packs.helios.partnerships import OpsCapacity, PartnerPipeline
from coalition.packs.helios.payloads import (
    BudgetPressure,
    CapitalNeed,
    CustomerComplaints,
    DisputeCase,
    DisputeFacts,
    ExperimentPlan,
    ExperimentResult,
    GrowthGoal,
    MarketSignals,
    MeterOutage,
    MeterRestored,
    NewsItem,
    RegulatoryChange,
    SettlementMismatch,
    SupplyShock,
    SuspiciousTrades,
)

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
# meter.outage's `customers` may be left to the world.
DATA_MODELS: dict[str, type[BaseModel]] = {
    "market.signals": MarketSignals,
    "news": NewsItem,
    "supply.shock": SupplyShock,
    "meter.outage": MeterOutage,
    "meter.restored": MeterRestored,
    "settlement.mismatch": SettlementMismatch,
    "regulatory.change": RegulatoryChange,
    "capital.need": CapitalNeed,
    "growth.goal": GrowthGoal,
    "suspicious.trades": SuspiciousTrades,
    "budget.pressure": BudgetPressure,
    "dispute": DisputeCase,
    "customer.complaints": CustomerComplaints,
    "experiment.plan": ExperimentPlan,
    "experiment.result": ExperimentResult,
    "partner.pipeline": PartnerPipeline,
    "ops.capacity": OpsCapacity,
    "market.sides": MarketSides,
}
# An unreadable dispute fact is a missing verification at run time, not a crash; an author must still get it right.
LENIENT_PARTS: dict[str, tuple[str, type[BaseModel]]] = {"dispute": ("facts", DisputeFacts)}
