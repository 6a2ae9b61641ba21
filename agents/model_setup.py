"""Give every agent its narrator: the chosen model (recorded, or answered from a recording), limits and prices."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from langchain_core.language_models import BaseChatModel

from coalition.agents.model_budget import ModelGuard, ModelLimits
from coalition.agents.model_choice import ModelChoice
from coalition.agents.narrator import Narrator
from coalition.agents.prices import PriceTable
from coalition.agents.providers import ProviderAccess, make_model, model_parameters
from coalition.agents.recording import CallLog, RecordingChatModel, ReplayChatModel
from coalition.agents.voices import offline_model
from coalition.bus.clock import IdFactory


def _call_ids(ids: IdFactory) -> Callable[[int], str]:
    """Call ids derived from the run's ids: the same run makes the same ids (so its replay does too)."""

    def call_id(n: int) -> str:
        return ids.derive("call", str(n))

    return call_id


def build_narrators(
    choices: Mapping[str, ModelChoice],
    *,
    access: ProviderAccess | None = None,
    seed: int = 0,
    limits: Mapping[str, ModelLimits] | None = None,
    prices: PriceTable | None = None,
    replay: Mapping[str, ReplayChatModel] | None = None,
    ids: IdFactory | None = None,
    url_allowlist: tuple[str, ...] = (),
) -> dict[str, Narrator]:
    """One narrator per agent. Paid models are wrapped for recording; with `replay`, the recorded answers
    stand in for the provider (same model id and parameters, so requests hash the same and no key is needed)."""
    access = access or ProviderAccess()
    prices = prices or PriceTable()
    narrators: dict[str, Narrator] = {}
    for agent, choice in sorted(choices.items()):
        fallback = offline_model(agent, seed)
        if choice.provider == "offline":
            narrators[agent] = Narrator(fallback, agent=agent, fallback=fallback, url_allowlist=url_allowlist)
            continue
        inner: BaseChatModel
        if replay is not None:
            inner = replay.get(agent) or ReplayChatModel(
                agent=agent, model_id=choice.spec, params=model_parameters(choice.provider)
            )
        else:
            inner = make_model(choice, access, seed=seed)
        agent_ids = (ids or IdFactory(f"models:{seed}")).child(f"model:{agent}")
        model = RecordingChatModel(
            inner=inner,
            model_id=choice.spec,
            params=model_parameters(choice.provider),
            log=CallLog(agent, _call_ids(agent_ids)),
            prices=prices,
            timeout_s=access.timeout_s,
            max_answer_chars=access.max_answer_chars,
            slow_after_s=access.slow_call_s,
            on_slow=access.on_slow_call,
        )
        guard = ModelGuard(agent, (limits or {}).get(agent))
        narrators[agent] = Narrator(
            model, agent=agent, guard=guard, prices=prices, fallback=fallback, url_allowlist=url_allowlist
        )
    return narrators
