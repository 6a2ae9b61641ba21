"""Which voice an agent speaks with: the one its pack declares (coalition.domain.Voice), found by the agent's name,
so that the narrator's instructions and the offline model's wording name the agent's own business."""

from __future__ import annotations

from coalition.agents.offline_model import MODEL_ID, SIGN_OFF, OfflineChatModel
from coalition.domain import Voice, catalog

# An agent no installed pack declares (a test's, a graph of the user's own under another name).
NEUTRAL = Voice(business="the business", sign_off=SIGN_OFF, offline_model=MODEL_ID)


def voice_of(agent: str | None) -> Voice:
    """The voice of the pack declaring `agent` (NEUTRAL for an agent no pack declares)."""
    installed = catalog()
    pack = installed.pack_of.get(agent) if agent else None
    return installed.pack(pack).speaks if pack is not None and agent in installed.agents else NEUTRAL


def offline_model(agent: str | None, seed: int = 0) -> OfflineChatModel:
    """The offline model speaking with the agent's voice (its pack's model id and sign-off)."""
    voice = voice_of(agent)
    return OfflineChatModel(seed=seed, model_id=voice.offline_model, sign_off=voice.sign_off)
