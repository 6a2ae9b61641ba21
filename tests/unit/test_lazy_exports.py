"""Packages whose names load on first use (coalition.lazy_exports): a name means what it meant when the package
imported everything, and importing one submodule loads only that one. Each check runs in a new interpreter."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit


def _run(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_one_submodule_loads_only_what_it_imports() -> None:
    loaded = _run(
        "import sys\n"
        "import coalition.ledger.errors, coalition.bus.canonical\n"
        "import coalition.governance.errors, coalition.domain.errors\n"
        "print(sorted(m for m in sys.modules if m.startswith(('structlog', 'coalition.bus.consumer',"
        " 'coalition.ledger.sqlite', 'coalition.governance.policy', 'coalition.domain.catalog', 'pydantic'))))"
    )
    assert loaded == "[]"


def test_a_function_named_like_its_module_stays_the_function_once_the_module_is_loaded() -> None:
    """coalition.domain.catalog is a module and the package's catalog() function: importing the module binds it on
    the package, as the import system does with every submodule, but the package's name keeps the function."""
    kinds = _run(
        "import coalition.domain.catalog, coalition.ledger.explain, coalition.governance.evaluate\n"
        "from coalition.domain import catalog\n"
        "from coalition.ledger import explain\n"
        "from coalition.governance import evaluate\n"
        "print(callable(catalog), callable(explain), callable(evaluate), type(catalog()).__name__)"
    )
    assert kinds == "True True True Catalog"


def test_bare_package_import_reaches_names_and_listed_submodules() -> None:
    names = _run(
        "import coalition.bus, coalition.ledger\n"
        "print(coalition.bus.MemoryBus.__name__, coalition.bus.topics.__name__, coalition.ledger.SqliteLedger.__name__)"
    )
    assert names == "MemoryBus coalition.bus.topics SqliteLedger"


def test_an_unknown_name_is_an_attribute_error() -> None:
    error = _run(
        "import coalition.ledger\ntry:\n    coalition.ledger.Nope\nexcept AttributeError as exc:\n    print(exc)"
    )
    assert error == "module 'coalition.ledger' has no attribute 'Nope'"


def test_a_message_type_is_known_without_importing_the_messages_module_first() -> None:
    """The codec finds every core message type although nothing imported coalition.bus.messages (the package used
    to, and the registry relied on it)."""
    found = _run(
        "from coalition.bus.message import message_class, registered_types\n"
        "print(message_class('run.started').__name__, 'proposal' in ' '.join(registered_types()))"
    )
    assert found == "RunStarted True"


LAZY_PACKAGES = (
    "coalition.agents",
    "coalition.bus",
    "coalition.domain",
    "coalition.governance",
    "coalition.governance.rules",
    "coalition.ledger",
    "coalition.scenarios",
)


@pytest.mark.parametrize("package", LAZY_PACKAGES)
def test_every_name_a_package_exports_resolves(package: str) -> None:
    """A misspelt module or name in a package's table would only fail in the command that first asks for it."""
    import importlib

    module = importlib.import_module(package)
    table = module.__dict__["__lazy_exports__"]
    assert table, f"{package} exports nothing lazily"
    missing = [name for name in table if getattr(module, name, None) is None]
    assert missing == []
    exported = getattr(module, "__all__", None)
    if exported is not None:
        assert set(exported) <= set(table) | set(module.__dict__)
