"""`coalition pack new`: which names and targets are refused (one line each), and what the templates render."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coalition.cli.pack_scaffold import FILES, PackNames, ScaffoldProblem, check_name, check_target, render, scaffold
from coalition.domain import catalog
from coalition.governance.policy import Policy

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Tea-Shop", "is not a lowercase Python identifier"),
        ("tea shop", "is not a lowercase Python identifier"),
        ("1shop", "is not a lowercase Python identifier"),
        ("", "is not a lowercase Python identifier"),
        ("class", "is not a lowercase Python identifier"),
        ("a" * 41, "is not a lowercase Python identifier"),
        ("helios", "clashes with the installed pack 'helios'"),
        ("billing_desk", "clashes with the installed pack 'billing-desk'"),
        ("json", "clashes with the importable module 'json'"),
        ("coalition", "clashes with the importable module 'coalition'"),
    ],
)
def test_a_bad_name_is_refused(name: str, expected: str) -> None:
    with pytest.raises(ScaffoldProblem, match=expected) as problem:
        check_name(name, catalog())
    assert "\n" not in str(problem.value)


def test_a_good_name_gives_every_name_the_templates_use() -> None:
    names = check_name("tea_shop", catalog())
    context = names.context()
    assert context["agent"] == "tea_shop_clerk"
    assert context["action"] == "tea_shop_ship"
    assert context["world_class"] == "TeaShopWorld"
    assert context["scenario"] == "tea_shop-first-orders"
    for taken in (context["agent"], context["action"]):
        assert taken not in catalog().agents
        assert taken not in catalog().actions


def test_a_target_that_is_a_file_or_not_empty_is_refused(tmp_path: Path) -> None:
    check_target(tmp_path / "new")  # absent: fine
    check_target(tmp_path)  # empty: fine
    (tmp_path / "f").write_text("x")
    with pytest.raises(ScaffoldProblem, match="is not empty"):
        check_target(tmp_path)
    with pytest.raises(ScaffoldProblem, match="is not a directory"):
        check_target(tmp_path / "f")


def test_a_refused_scaffold_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(ScaffoldProblem):
        scaffold("helios", tmp_path / "p", catalog())
    assert not (tmp_path / "p").exists()


def test_every_template_renders_completely() -> None:
    files = render(PackNames("tea_shop"))
    assert len(files) == len(FILES)
    assert "tea_shop/actions.py" in files
    assert "tests/test_tea_shop.py" in files
    for path, text in files.items():
        assert "{{" not in text, path
        assert "{%" not in text, path
        if path.endswith(".py"):
            compile(text, path, "exec")  # valid Python


def test_the_rendered_policy_is_a_valid_policy_of_the_pack() -> None:
    files = render(PackNames("tea_shop"))
    document = yaml.safe_load(files["tea_shop/policy.yaml"])
    assert document["pack"] == "tea_shop"
    assert set(document["gates"]) == {"large_order", "budget_overrun"}
    assert document["permissions"] == {"tea_shop_clerk": ["tea_shop_ship"]}
    scenario = yaml.safe_load(files["tea_shop/scenarios/first-orders.yaml"])
    assert scenario["name"] == "tea_shop-first-orders"
    assert {e["kind"] for e in scenario["events"]} == {"tea_shop.order"}
    assert document.keys() <= Policy.model_fields.keys()  # no key the policy model does not know


def test_without_dir_the_pack_goes_to_a_folder_named_after_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from coalition.cli.pack_cmd import pack_app

    monkeypatch.chdir(tmp_path)
    done = CliRunner().invoke(pack_app, ["new", "tea_shop"])
    assert done.exit_code == 0, done.output
    assert (tmp_path / "tea_shop" / "tea_shop" / "actions.py").is_file()
    assert (tmp_path / "tea_shop" / "pyproject.toml").is_file()
    again = CliRunner().invoke(pack_app, ["new", "tea_shop"])  # the folder is no longer empty
    assert again.exit_code == 2
