"""The agents of a run, as every process that runs them builds them: the pack's agents with their narrators (model,
the policy's model budget, prices, recorded answers) and the policy's lanes, and the scenario's own graphs.

Apart from the run's wiring (scenarios/assembly.py) so that a run whose agents are not run here (a verifying replay
publishes what they recorded) never loads them, nor LangChain.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.language_models import BaseChatModel

from coalition.agents.base import Agent
from coalition.agents.lanes import Preview
from coalition.agents.model_budget import ModelLimits
from coalition.agents.model_choice import ModelChoice
from coalition.agents.model_setup import build_narrators
from coalition.agents.narrator import Narrator
from coalition.agents.registry import build_agents
from coalition.agents.runtime import AgentRuntime
from coalition.bus.base import Bus
from coalition.bus.clock import IdFactory
from coalition.domain import Pack
from coalition.governance.policy import Policy
from coalition.governance.service import GovernanceService
from coalition.scenarios.agent_lanes import governance_preview, use_lanes
from coalition.scenarios.graph_agents import graph_agents
from coalition.scenarios.runner import AgentStep, RunnerOptions
from coalition.scenarios.spec import Scenario


def model_limits(policy: Policy) -> dict[str, ModelLimits]:
    """Each agent's model token / cost budget and period, as governance's policy sets them."""
    return {
        agent: ModelLimits(tokens=budget.llm_tokens, cost_usd=budget.llm_cost_usd, period=policy.budgets.period)
        for agent, budget in policy.budgets.agents.items()
    }


def run_narrators(
    choices: dict[str, ModelChoice], policy: Policy, seed: int, ids: IdFactory, options: RunnerOptions
) -> dict[str, Narrator]:
    """Each agent's narrator as a run gives it (its model, the policy's model budget, prices, recorded answers)."""
    return build_narrators(
        choices,
        access=options.provider_access,
        seed=seed,
        limits=model_limits(policy),
        prices=options.prices,
        replay=options.replay,
        ids=ids,
    )


def run_agents(
    scenario: Scenario,
    pack: Pack,
    policy: Policy,
    *,
    seed: int,
    model: BaseChatModel | None,
    narrators: dict[str, Narrator] | None,
    preview: Preview | None,
    names: Sequence[str] | None = None,
) -> dict[str, Agent]:
    """The agents of a run (or only `names`), as every process that runs them builds them: the pack's agents (their
    models narrating, or `model` for every one) with the policy's lanes, and the scenario's own graphs."""
    own = {
        name: a.graph for name, a in scenario.agents.items() if a.graph is not None and (names is None or name in names)
    }
    wanted = [name for name in pack.agent_names if name not in own and (names is None or name in names)]
    agents: dict[str, Agent] = dict(build_agents(model, seed, narrators=narrators, names=wanted))
    use_lanes(agents, policy, preview=preview)
    agents |= graph_agents(own, pack, policy, narrators=narrators or {}, model=model, seed=seed)
    return agents


def agent_runtimes(
    scenario: Scenario,
    pack: Pack,
    policy: Policy,
    *,
    bus: Bus,
    run_id: str,
    seed: int,
    ids: IdFactory,
    options: RunnerOptions,
    model_choices: dict[str, ModelChoice],
    governance: GovernanceService,
) -> list[AgentStep]:
    """The agents of a run, each driven by its runtime over `bus`, in canonical (name) order."""
    narrators = None if options.model is not None else run_narrators(model_choices, policy, seed, ids, options)
    agents = run_agents(
        scenario,
        pack,
        policy,
        seed=seed,
        model=options.model,
        narrators=narrators,
        preview=governance_preview(policy, lambda: governance.state),
    )
    return [AgentRuntime(agents[name], bus, run_id=run_id, ids=ids) for name in sorted(agents)]
