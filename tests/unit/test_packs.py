"""Domain packs: the core names no business, packs are found through entry points, `coalition pack list`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from coalition.domain import Action, ActionArgs, Catalog, Pack, PackError, Text, catalog, load_pack

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CORE = ("bus", "ledger", "domain", "governance", "agents", "scenarios", "coalition")
HELIOS_AGENTS = {"research", "finance", "marketing", "legal", "ops", "sales", "liquidity"}
# Words only Helios Renewables Exchange uses: none may appear in a core module.
HELIOS_WORDS = (
    "helios",
    "settlement",
    "mwh",
    "megawatt",
    "issue_credit",
    "market_entry",
    "enter_market",
    "set_price",
    "jurisdiction",
    "campaign",
    "outage",
    "surge",
    "credit_tier",
    "demand_mw",
    "supply_mw",
    "reserve_ratio",
    # the sales and liquidity agents' vocabulary (added touching only pack files)
    "sign_partnership",
    "make_liquidity_offer",
    "partner.pipeline",
    "market.sides",
)
# What may still name Helios in the core: only the default pack's name (domain/catalog.py: a scenario file without
# `pack:` was written for helios). Reports, dashboards and the console draw what a pack's Reporting declares. An
# entry that is no longer needed fails too, so the list only shrinks.
ALLOWED: dict[str, set[str]] = {
    "domain/catalog.py": {"helios"},
}


def _core_files() -> list[Path]:
    return [path for top in CORE for path in sorted((ROOT / top).rglob("*.py"))]


def _words(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8").lower()
    return {word for word in HELIOS_WORDS if word in text}


class TestCoreVocabulary:
    """The core names no business: Helios words live in the pack (allow-listed debt excepted)."""

    def test_no_new_pack_words_in_the_core(self) -> None:
        """Every Helios word in a core module is allow-listed for that module."""
        found = {str(p.relative_to(ROOT)): _words(p) for p in _core_files()}
        extra = {path: sorted(words - ALLOWED.get(path, set())) for path, words in found.items()}
        assert {path: words for path, words in extra.items() if words} == {}

    def test_the_allow_list_only_shrinks(self) -> None:
        """An allow-listed word a module no longer uses must leave the list."""
        stale = {}
        for path, words in ALLOWED.items():
            file = ROOT / path
            gone = words - (_words(file) if file.exists() else set())
            if gone:
                stale[path] = sorted(gone)
        assert stale == {}

    def test_the_scan_sees_the_pack_words(self) -> None:
        """The scan is not blind: the Helios pack itself is full of them."""
        assert _words(ROOT / "packs" / "helios" / "actions.py") >= {"issue_credit", "enter_market", "settlement"}


class TestCatalog:
    """Packs are found through the coalition.packs entry points; a clash is one line naming both packs."""

    def test_helios_is_installed_through_its_entry_point(self) -> None:
        helios = catalog().pack("helios")
        assert helios.title == "Helios Renewables Exchange"
        assert set(helios.agent_names) == HELIOS_AGENTS
        assert catalog().pack_of["issue_credit"] == "helios"

    def test_the_default_pack_names_the_demo_scenario_of_its_library(self) -> None:
        """`coalition demo` runs what the default pack declares, not a scenario name written into the CLI."""
        from coalition.scenarios.spec import library

        assert load_pack().demo == "helios-launch"
        assert load_pack().demo in library()

    def test_an_unknown_pack_is_one_line(self) -> None:
        with pytest.raises(PackError) as problem:
            catalog().pack("billing-desk-typo")
        assert str(problem.value).startswith("pack 'billing-desk-typo': is not installed (installed packs: ")
        assert "helios" in str(problem.value)
        assert "\n" not in str(problem.value)

    def test_two_packs_declaring_one_action_clash(self) -> None:
        class Note(ActionArgs):
            text: Text

        def note(world: object, args: Note, ctx: object) -> dict[str, object]:
            return {}

        other = Pack(name="other", title="Other", actions=(Action("issue_credit", Note, note),))
        with pytest.raises(PackError) as problem:
            Catalog.of([catalog().pack("helios"), other])
        assert str(problem.value) == "pack 'other': action 'issue_credit' is already declared by helios"

    def test_a_declaration_naming_a_missing_argument_fails_at_once(self) -> None:
        class Note(ActionArgs):
            text: Text

        with pytest.raises(ValueError, match="charges 'amount_usd' is not one of its arguments"):
            Action("note", Note, lambda w, a, c: {}, charges="amount_usd")
        with pytest.raises(ValueError, match="credit 'customer_id' is not one of its arguments"):
            Action("note", Note, lambda w, a, c: {}, credit=("customer_id", "text"))


class TestAgentDeclarations:
    """A pack names its agents as data; their classes load only when agents are built."""

    def test_each_declared_agent_is_the_class_it_names(self) -> None:
        for pack in catalog().packs.values():
            for agent in pack.agents:
                built = agent.builder()
                assert getattr(built, "NAME", None) == agent.name, f"{pack.name}: {agent.build}"
                assert agent.doc, f"{pack.name}: {agent.name} has no doc line"

    def test_reading_the_vocabulary_loads_no_langchain(self) -> None:
        """Every command that validates a policy reads the catalog: it must stay quick (no LangChain, LangGraph)."""
        code = (
            "import sys\n"
            "from coalition.domain import catalog\n"
            "from coalition.governance.policy import default_policy\n"
            "catalog(); default_policy()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('langchain', 'langchain_core', 'langgraph')))"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
        assert done.stdout.strip() == "[]"


class TestPackList:
    """`coalition pack list` shows the installed packs, as a table or JSON."""

    def test_json(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "coalition", "pack", "list", "--json"], capture_output=True, text=True, check=True
        )
        (helios,) = [p for p in orjson.loads(out.stdout) if p["name"] == "helios"]
        assert helios["name"] == "helios"
        assert "issue_credit" in helios["actions"]
        assert helios["agents"] == ["research", "finance", "marketing", "legal", "ops", "sales", "liquidity"]

    def test_table(self) -> None:
        out = subprocess.run(
            [sys.executable, "-m", "coalition", "pack", "list"], capture_output=True, text=True, check=True
        )
        assert "helios" in out.stdout
        assert "Helios Renewables" in out.stdout
