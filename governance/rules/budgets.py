"""Money budgets per agent and period: reserve before spend; an overrun asks for more instead of failing."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from coalition.bus.messages import ActionProposed
from coalition.governance.money import usd
from coalition.governance.policy import AgentBudget, Gate, charged_args
from coalition.governance.rules.arguments import number
from coalition.governance.rules.gates import escalation
from coalition.governance.state import GovernanceState
from coalition.governance.verdict import Finding

ZERO = Decimal(0)


def overrun(state: GovernanceState, agent: str, limit: Decimal, amount: Decimal, period: str | None = None) -> Decimal:
    """How far committing `amount` would take the agent past its budget (limit + increases) in the period (the
    current one by default); 0 if it fits."""
    period = period or state.period_key()
    over = state.committed(agent, period) + amount - (limit + state.increase(agent, period))
    return over if over > ZERO else ZERO


class MoneyBudget:
    """Escalate (gate budget_overrun) a charged action that would take spend + reservations over budget."""

    rule_id = "budget.money"

    def __init__(self, budgets: Mapping[str, AgentBudget], gate: Gate) -> None:
        self._charges = charged_args()
        self.actions: frozenset[str] | None = frozenset(self._charges)
        self._limits = {agent: budget.money_usd for agent, budget in budgets.items()}
        self._gate = gate

    def limit(self, agent: str) -> Decimal:
        """An agent without a budget has none to spend (deny by default, expressed as a zero budget)."""
        return self._limits.get(agent, ZERO)

    def __call__(self, proposal: ActionProposed, state: GovernanceState) -> Finding | None:
        agent = proposal.agent
        amount = number(proposal, self._charges[proposal.action])
        limit = self.limit(agent)
        period = state.period_key()  # once: every figure below is of this period
        over = overrun(state, agent, limit, amount, period)
        if not over:
            return None
        budget = limit + state.increase(agent, period)
        committed = state.committed(agent, period)
        reason = (
            f"budget: {agent} would commit {usd(committed + amount)} of its {usd(budget)} budget "
            f"for {period} (committed {usd(committed)}, asks {usd(amount)}): overrun {usd(over)}"
        )
        return escalation(self.rule_id, "budget_overrun", self._gate, reason, over)
