"""Model choice per agent (precedence, one-line errors, missing keys), provider construction, and prices."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_openai import ChatOpenAI

from coalition.agents.errors import ModelConfigError
from coalition.agents.model_choice import choose_models, parse_model_spec
from coalition.agents.offline_model import OfflineChatModel
from coalition.agents.prices import Price, PriceTable, load_prices
from coalition.agents.providers import ProviderAccess, make_model, missing_keys
from coalition.domain import catalog
from coalition.scenarios import load_scenario, parse_scenario

pytestmark = pytest.mark.unit


class TestChoice:
    """Which model each agent gets, and why."""

    def test_everyone_is_offline_by_default(self) -> None:
        """Nothing chosen: every installed pack's agents (Helios's five among them) use the offline model, source
        'default'."""
        choices = choose_models()
        assert sorted(choices) == sorted(catalog().agent_names)
        assert {"finance", "legal", "marketing", "ops", "research"} <= set(choices)
        assert {c.spec for c in choices.values()} == {"offline"}
        assert {c.source for c in choices.values()} == {"default"}

    def test_per_agent_setting_beats_scenario_beats_global(self) -> None:
        """COALITION_LLM_<AGENT> > scenario agents block > COALITION_LLM."""
        choices = choose_models(
            default="openai:gpt-4o-mini",
            per_agent={"finance": "anthropic:claude-sonnet-4-5"},
            scenario={"finance": "openai:gpt-4o", "legal": "anthropic:claude-haiku-4-5"},
        )
        assert (choices["finance"].spec, choices["finance"].source) == (
            "anthropic:claude-sonnet-4-5",
            "COALITION_LLM_FINANCE",
        )
        assert (choices["legal"].spec, choices["legal"].source) == ("anthropic:claude-haiku-4-5", "scenario")
        assert (choices["ops"].spec, choices["ops"].source) == ("openai:gpt-4o-mini", "COALITION_LLM")
        assert "COALITION_LLM_FINANCE" in choices["finance"].why

    def test_an_explicit_offline_in_the_scenario_beats_coalition_llm(self) -> None:
        """docs/models.md: the scenario's choice wins over the global default, offline included; unset does not."""
        source = load_scenario("helios-launch").source
        assert source is not None
        text = source.read_text(encoding="utf-8") + "agents: {legal: {model: offline}, ops: {}}\n"
        scenario = parse_scenario(text, source=source)
        choices = choose_models(
            default="openai:gpt-4o-mini", scenario={name: a.model for name, a in scenario.agents.items()}
        )
        assert (choices["legal"].spec, choices["legal"].source) == ("offline", "scenario")
        assert (choices["ops"].spec, choices["ops"].source) == ("openai:gpt-4o-mini", "COALITION_LLM")
        assert (choices["finance"].spec, choices["finance"].source) == ("openai:gpt-4o-mini", "COALITION_LLM")

    def test_an_unknown_provider_is_one_line_naming_where(self) -> None:
        """A typo in a per-agent setting names the variable and the accepted forms."""
        with pytest.raises(ModelConfigError, match=r"COALITION_LLM_OPS: unknown model 'gpt4'"):
            choose_models(per_agent={"ops": "gpt4"})
        with pytest.raises(ModelConfigError, match="openai:"):
            parse_model_spec("openai:")

    def test_missing_keys_name_the_agents_and_the_variable(self) -> None:
        """Two agents on openai without OPENAI_API_KEY: one line naming both; anthropic with its key is fine."""
        choices = choose_models(
            per_agent={"finance": "openai:gpt-4o-mini", "ops": "openai:gpt-4o-mini", "legal": "anthropic:x"}
        )
        problems = missing_keys(choices, ProviderAccess(anthropic_api_key="k"))
        assert problems == [
            "finance, ops use openai but OPENAI_API_KEY is not set (export it or put it in .env, or choose offline)"
        ]
        assert missing_keys(choices, ProviderAccess(openai_api_key="a", anthropic_api_key="b")) == []

    def test_access_reads_the_conventional_variables(self) -> None:
        """OPENAI_API_KEY / ANTHROPIC_API_KEY / *_BASE_URL are respected; empty values count as unset."""
        access = ProviderAccess.from_env(
            {"OPENAI_API_KEY": "sk", "ANTHROPIC_API_KEY": "", "OPENAI_BASE_URL": "http://x/v1"}
        )
        assert (access.key("openai"), access.key("anthropic"), access.base_url("openai")) == ("sk", None, "http://x/v1")


class TestConstruction:
    """init_chat_model is called explicitly, with temperature 0, the key and the base URL."""

    def test_offline_needs_nothing(self) -> None:
        """The offline choice builds the seeded offline model."""
        model = make_model(choose_models()["ops"], ProviderAccess(), seed=7)
        assert isinstance(model, OfflineChatModel)
        assert model.seed == 7

    def test_openai_and_anthropic_models_get_temperature_zero_and_the_endpoint(self) -> None:
        """The LangChain classes are configured from the access object; no request is made."""
        choices = choose_models(per_agent={"finance": "openai:gpt-4o-mini", "legal": "anthropic:claude-haiku-4-5"})
        access = ProviderAccess(
            openai_api_key="sk-x",
            anthropic_api_key="sk-ant-x",
            openai_base_url="http://127.0.0.1:9/v1",
            anthropic_base_url="http://127.0.0.1:9",
        )
        openai_model = make_model(choices["finance"], access)
        anthropic_model = make_model(choices["legal"], access)
        assert isinstance(openai_model, ChatOpenAI)
        assert isinstance(anthropic_model, ChatAnthropic)
        assert openai_model.temperature == 0
        assert anthropic_model.temperature == 0
        assert openai_model.openai_api_base == "http://127.0.0.1:9/v1"
        assert anthropic_model.anthropic_api_url == "http://127.0.0.1:9"
        assert openai_model.model_name == "gpt-4o-mini"
        assert anthropic_model.model == "claude-haiku-4-5"

    def test_a_missing_key_fails_before_any_request(self) -> None:
        """Both providers: ModelConfigError at construction (the anthropic class alone would fail only at call)."""
        choices = choose_models(per_agent={"finance": "openai:gpt-4o-mini", "legal": "anthropic:claude-haiku-4-5"})
        for agent in ("finance", "legal"):
            with pytest.raises(ModelConfigError, match="_API_KEY is not set"):
                make_model(choices[agent], ProviderAccess())


class TestPrices:
    """Tokens become dollars from a configurable table."""

    def test_known_model_cost_is_exact(self) -> None:
        """gpt-4o-mini: 1M input at 0.15 + 0.5M output at 0.60 = 0.45 USD."""
        assert PriceTable().cost("openai:gpt-4o-mini", 1_000_000, 500_000) == Decimal("0.450000")

    def test_unknown_model_pays_the_dearest_row_of_its_provider(self) -> None:
        """No row: the provider's '*' row; no provider row at all: a one-line error."""
        table = PriceTable()
        assert table.price("openai:some-new-model") == table.price("openai:*")
        assert table.cost("offline:helios-narrator-v1", 10**6, 10**6) == 0
        with pytest.raises(ModelConfigError, match="no price for 'mistral:x'"):
            table.cost("mistral:x", 1, 1)

    def test_a_price_file_overrides_rows(self, tmp_path: Path) -> None:
        """A YAML row replaces the built-in one; a bad row is named with its field."""
        good = tmp_path / "prices.yaml"
        good.write_text("openai:gpt-4o-mini: {input_per_mtok: 1, output_per_mtok: 2}\n")
        assert load_prices(good).price("openai:gpt-4o-mini") == Price(
            input_per_mtok=Decimal(1), output_per_mtok=Decimal(2)
        )
        bad = tmp_path / "bad.yaml"
        bad.write_text("openai:gpt-4o-mini: {input_per_mtok: -1, output_per_mtok: 2}\n")
        with pytest.raises(ModelConfigError, match=r"bad.yaml: openai:gpt-4o-mini.input_per_mtok"):
            load_prices(bad)
