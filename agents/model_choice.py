"""Which chat model each agent speaks through, chosen explicitly (never by trying providers until one works).

Precedence, most specific first: `COALITION_LLM_<AGENT>` (the operator, per agent) > the scenario's
`agents: {name: {model: …}}` block (the scenario author) > `COALITION_LLM` (the operator, for all) >
`offline`. The choice and the reason for it are kept so that `coalition doctor` and the run record show them.
Choosing needs no model library: a scenario, a run record or a replay reads choices without loading LangChain
(coalition.agents.providers builds the chosen models).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict

from coalition.agents.errors import ModelConfigError
from coalition.domain import catalog

Provider = Literal["offline", "openai", "anthropic"]


def parse_model_spec(spec: str, where: str = "model") -> tuple[Provider, str]:
    """`offline` | `openai:<model>` | `anthropic:<model>` → (provider, model name); a one-line error otherwise."""
    if spec == "offline":
        return "offline", ""
    provider, _, name = spec.partition(":")
    if provider == "openai" and name:
        return "openai", name
    if provider == "anthropic" and name:
        return "anthropic", name
    reason = f"unknown model {spec!r} (use offline, openai:<model> or anthropic:<model>)"
    raise ModelConfigError(f"{where}: {reason}", reason=reason)


class ModelChoice(BaseModel):
    """One agent's model, where the choice came from, and a sentence saying why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str
    spec: str
    provider: Provider
    source: str  # the variable or file that decided: COALITION_LLM_FINANCE, scenario, COALITION_LLM, default
    why: str


def agent_variable(agent: str) -> str:
    return f"COALITION_LLM_{agent.upper()}"


def choose_models(
    *,
    default: str = "offline",
    per_agent: Mapping[str, str] | None = None,
    scenario: Mapping[str, str | None] | None = None,
    agents: tuple[str, ...] | None = None,
) -> dict[str, ModelChoice]:
    """The model of every agent: per-agent setting > scenario > COALITION_LLM default > offline.

    A scenario entry of None means "not set" (COALITION_LLM applies); an explicit "offline" is a choice and wins."""
    per_agent = {k: v for k, v in (per_agent or {}).items() if v}
    chosen = {k: v for k, v in (scenario or {}).items() if v is not None}
    choices: dict[str, ModelChoice] = {}
    for agent in sorted(agents if agents is not None else catalog().agent_names):
        if agent in per_agent:
            spec, source = per_agent[agent], agent_variable(agent)
            why = f"{source}={spec} (an operator setting for this agent wins over the scenario and COALITION_LLM)"
        elif agent in chosen:
            spec, source = chosen[agent], "scenario"
            why = f"the scenario's agents.{agent}.model is {spec}"
        elif default != "offline":
            spec, source = default, "COALITION_LLM"
            why = f"COALITION_LLM={spec} applies to every agent without its own setting"
        else:
            spec, source = "offline", "default"
            why = "nothing chose a provider: the deterministic offline model (no key, no network)"
        provider, _ = parse_model_spec(spec, source if source != "scenario" else f"scenario agents.{agent}.model")
        choices[agent] = ModelChoice(agent=agent, spec=spec, provider=provider, source=source, why=why)
    return choices
