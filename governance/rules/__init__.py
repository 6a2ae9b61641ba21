"""Governance rules: small pure callables (config in __init__, work in __call__) run as a pipeline by evaluate()."""

from coalition.governance.rules.arguments import ArgumentShapes
from coalition.governance.rules.base import Rule
from coalition.governance.rules.budgets import MoneyBudget
from coalition.governance.rules.gates import HighImpactToolGate, HumanTier, ModelBudgetRequest
from coalition.governance.rules.permissions import Permissions

__all__ = [
    "ArgumentShapes",
    "HighImpactToolGate",
    "HumanTier",
    "ModelBudgetRequest",
    "MoneyBudget",
    "Permissions",
    "Rule",
]
