"""The installed layout matches the folders: every sub-package is listed and importable under coalition.*."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def _pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)


def _declared() -> tuple[dict[str, str], list[str]]:
    setuptools = _pyproject()["tool"]["setuptools"]  # type: ignore[index]
    return setuptools["package-dir"], setuptools["packages"]  # type: ignore[index]


class TestPackageLayout:
    """setuptools package-dir maps the top-level folders; a forgotten sub-package would not be installed."""

    def test_every_folder_with_an_init_is_a_declared_package(self) -> None:
        package_dir, packages = _declared()
        expected: set[str] = set()
        for name, folder in package_dir.items():
            for init in (ROOT / folder).rglob("__init__.py"):
                rel = init.parent.relative_to(ROOT / folder)
                expected.add(".".join([name, *rel.parts]) if rel.parts else name)
        assert sorted(expected - set(packages)) == []

    @pytest.mark.parametrize("name", _declared()[1])
    def test_declared_package_imports(self, name: str) -> None:
        module = importlib.import_module(name)
        assert module.__name__ == name

    def test_no_generic_top_level_names_are_installed(self) -> None:
        package_dir, _ = _declared()
        assert all(name == "coalition" or name.startswith("coalition.") for name in package_dir)
