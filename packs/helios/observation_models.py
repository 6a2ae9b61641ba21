"""The data model the readers of each Helios observation kind accept: a scenario's events are checked against it
when the file loads (the pack declares these tables LoadedOnUse: a command that only validates a policy does not
import the payload models)."""

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
