"""Governance rules: small pure callables (config in __init__, work in __call__) run as a pipeline by evaluate()."""

from __future__ import annotations

from typing import TYPE_CHECKING

from coalition.lazy_exports import lazy_package

if TYPE_CHECKING:  # the names below load on first use, so importing one submodule loads only that one
    from coalition.governance.rules.arguments import ArgumentShapes
    from coalition.governance.rules.base import Rule
    from coalition.governance.rules.budgets import MoneyBudget
    from coalition.governance.rules.gates import HighImpactToolGate, HumanTier, ModelBudgetRequest
    from coalition.governance.rules.permissions import Permissions

_LAZY: dict[str, str] = {
    "ArgumentShapes": "coalition.governance.rules.arguments",
    "HighImpactToolGate": "coalition.governance.rules.gates",
    "HumanTier": "coalition.governance.rules.gates",
    "ModelBudgetRequest": "coalition.governance.rules.gates",
    "MoneyBudget": "coalition.governance.rules.budgets",
    "Permissions": "coalition.governance.rules.permissions",
    "Rule": "coalition.governance.rules.base",
}
lazy_package(__name__, _LAZY)

__all__ = [
    "ArgumentShapes",
    "HighImpactToolGate",
    "HumanTier",
    "ModelBudgetRequest",
    "MoneyBudget",
    "Permissions",
    "Rule",
]
