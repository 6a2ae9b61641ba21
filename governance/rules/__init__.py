"""Governance rules: small pure callables (config in __init__, work in __call__) run as a pipeline by evaluate()."""

from coalition.governance.rules.arguments import ArgumentShapes
from coalition.governance.rules.base import Rule
from coalition.governance.rules.budgets import MoneyBudget
from coalition.governance.rules.gates import (
    AlwaysGate,
    CapitalCommitment,
    HighImpactToolGate,
    IncidentSeverity,
    MaterialCompliance,
    ModelBudgetRequest,
)
from coalition.governance.rules.limits import Claims, CreditLimit, Discount, Jurisdiction, PriceBand
from coalition.governance.rules.permissions import Permissions

__all__ = [
    "AlwaysGate",
    "ArgumentShapes",
    "CapitalCommitment",
    "Claims",
    "CreditLimit",
    "Discount",
    "HighImpactToolGate",
    "IncidentSeverity",
    "Jurisdiction",
    "MaterialCompliance",
    "ModelBudgetRequest",
    "MoneyBudget",
    "Permissions",
    "PriceBand",
    "Rule",
]
