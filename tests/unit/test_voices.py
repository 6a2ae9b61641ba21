"""A pack's voice: the narrator's instructions and the offline model's wording name the agent's own business."""

from __future__ import annotations

import pytest

from coalition.agents import Facts, Narrator, ScriptedModel
from coalition.agents.model_choice import ModelChoice
from coalition.agents.model_setup import build_narrators
from coalition.agents.voices import NEUTRAL, voice_of

pytestmark = pytest.mark.unit

FACTS = Facts(intent="inform", decision="credit account A-17 25.00 USD", reasons=["the fee was charged twice"])


def _offline(*agents: str) -> dict[str, ModelChoice]:
    return {a: ModelChoice(agent=a, spec="offline", provider="offline", source="default", why="test") for a in agents}


def _instructions(agent: str) -> str:
    model = ScriptedModel(responses=["Worded."])
    Narrator(model, agent=agent).rationale(agent, FACTS)
    ((system, _human),) = model.calls
    return str(system.content)


class TestInstructions:
    """The system instruction names the business of the pack that declares the agent."""

    def test_a_helios_agent_works_for_helios(self) -> None:
        """Recorded runs hash these instructions: Helios's must read as before (the golden ledger holds it too)."""
        assert _instructions("finance").startswith("You are the finance agent of Helios Renewables Exchange. ")

    def test_a_billing_desk_agent_works_for_the_desk(self) -> None:
        text = _instructions("billing")
        assert text.startswith("You are the billing agent of a utility's billing desk. ")
        assert "Helios" not in text

    def test_an_agent_no_pack_declares_gets_the_neutral_voice(self) -> None:
        assert voice_of("someone-else") == voice_of(None) == NEUTRAL
        assert "Helios" not in _instructions("someone-else")


class TestOfflineWording:
    """The offline model of a run speaks with each agent's pack: its model id and the sign-off of its notices."""

    def test_each_agent_gets_its_packs_offline_model(self) -> None:
        narrators = build_narrators(_offline("finance", "billing"), seed=1)
        assert narrators["finance"].model_id == "offline:helios-narrator-v1"
        assert narrators["billing"].model_id == "offline:billing-desk-narrator-v1"
        assert narrators["billing"].copy("billing", FACTS, audience="A-17").model_id == narrators["billing"].model_id

    def test_a_desk_notice_never_speaks_for_helios(self) -> None:
        """Over many seeds every opener is used: the desk's notices sign with its own name, Helios's with Helios."""
        desk = {
            build_narrators(_offline("billing"), seed=s)["billing"].copy("billing", FACTS, audience="A-17").text
            for s in range(24)
        }
        helios = {
            build_narrators(_offline("ops"), seed=s)["ops"].copy("ops", FACTS, audience="TX").text for s in range(24)
        }
        assert not [t for t in desk if "Helios" in t]
        assert [t for t in desk if "An update from your billing desk: we credit account A-17" in t]
        assert [t for t in helios if "An update from Helios: we credit account A-17" in t]
