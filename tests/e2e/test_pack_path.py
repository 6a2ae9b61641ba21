"""A pack used from its folder, not pip-installed: `coalition --pack-path DIR …` (or COALITION_PACK_PATH). A pack
scaffolded by `coalition pack new` into a temporary folder runs its scenario — named by its file's path — governed,
with every expectation held, and replays IDENTICAL; its package folder alone works too. A missing folder, a broken
module, a name an installed pack already uses, a module Python already finds elsewhere, a folder holding no pack:
each is one line, exit 2, no traceback."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from test_pack_new import COALITION, run, scaffold

from coalition.domain.pack_paths import PACK_PATH_VARIABLE

pytestmark = pytest.mark.e2e

NAME = "shop_path"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return scaffold(NAME, tmp_path_factory.mktemp("pack-path"))


def one_line_error(done: subprocess.CompletedProcess[str], expected: str) -> None:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in done.stderr


def test_a_scenario_file_runs_with_its_pack_from_a_folder_and_replays_identical(project: Path, tmp_path: Path) -> None:
    scenario = project / NAME / "scenarios" / "first-orders.yaml"
    absent = run(COALITION, "run", str(scenario), "--bus", "memory", "--ledger", "l.db", cwd=tmp_path)
    assert absent.returncode == 2  # not installed, and no --pack-path: the pack is unknown
    assert "a pack's folder is used with --pack-path" in absent.stderr

    done = run(COALITION, "--pack-path", str(project), "run", str(scenario), "--bus", "memory", "--ledger", "l.db",
               "--run-id", "p-1", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert [e["passed"] for e in result["expectations"]] == [True, True, True]
    assert result["summary"]["kpis"] == {"orders_shipped": 2, "units_shipped": 33}

    replayed = run(COALITION, "--pack-path", str(project), "replay", "p-1", "--ledger", "l.db", cwd=tmp_path)
    assert replayed.stdout.startswith("IDENTICAL"), replayed.stdout + replayed.stderr
    for verify in ([], ["--verify"]):  # without the folder: one line naming the pack and the option, not a schema
        missing = run(COALITION, "replay", "p-1", *verify, "--ledger", "l.db", cwd=tmp_path)
        one_line_error(missing, f"run 'p-1' needs pack {NAME!r}: is not installed")
        assert "--pack-path" in missing.stderr


def test_the_package_folder_and_the_environment_variable_work_too(project: Path, tmp_path: Path) -> None:
    listed = run(COALITION, "--pack-path", str(project / NAME), "pack", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert {p["name"] for p in json.loads(listed.stdout)} == {"helios", "billing-desk", NAME}
    env = {PACK_PATH_VARIABLE: str(project)}
    done = run(COALITION, "run", f"{NAME}-first-orders", "--bus", "memory", "--ledger", "l.db", "--json",
               cwd=tmp_path, extra=env)  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads(done.stdout)["status"] == "completed"


def test_a_missing_folder_is_one_line(tmp_path: Path) -> None:
    done = run(COALITION, "--pack-path", str(tmp_path / "nope"), "pack", "list", cwd=tmp_path)
    one_line_error(done, f"pack '{tmp_path / 'nope'}': no such directory (from --pack-path or {PACK_PATH_VARIABLE})")


def test_a_broken_module_is_one_line(project: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    init = broken / NAME / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8").replace("PACK = Pack(", "PACK = Pack(oops", 1), encoding="utf-8")
    done = run(COALITION, "--pack-path", str(broken), "run", f"{NAME}-first-orders", "--bus", "memory", cwd=tmp_path)
    one_line_error(done, f"pack '{NAME}': from {broken}: cannot load {NAME}:PACK (SyntaxError: ")


@pytest.mark.parametrize(
    ("target", "problem"),
    [
        (f"{NAME}.nosuch:DATA", f"cannot load {NAME}.nosuch:DATA (no module named '{NAME}.nosuch')"),
        (f"{NAME}:NOSUCH", f"cannot load {NAME}:NOSUCH (AttributeError: module '{NAME}' has no attribute 'NOSUCH')"),
        (f"{NAME}:ORDER", f"{NAME}:ORDER is a str, not a mapping"),
    ],
    ids=["missing-module", "missing-name", "not-a-mapping"],
)
def test_a_loaded_on_use_table_that_cannot_load_is_one_line(
    project: Path, tmp_path: Path, target: str, problem: str
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(project, broken)
    init = broken / NAME / "__init__.py"
    source = init.read_text(encoding="utf-8")
    assert "data_models={ORDER: OrderData}," in source
    source = source.replace("from coalition.domain import ", "from coalition.domain import LoadedOnUse, ", 1)
    init.write_text(source.replace("data_models={ORDER: OrderData},", f"data_models=LoadedOnUse({target!r}),", 1),
                    encoding="utf-8")  # fmt: skip
    for command in (["scenario", "list"], ["run", f"{NAME}-first-orders", "--bus", "memory", "--ledger", "l.db"]):
        done = run(COALITION, "--pack-path", str(broken), *command, cwd=tmp_path)
        one_line_error(done, f"pack '{NAME}': {problem}")


def test_a_name_an_installed_pack_uses_is_one_line(project: Path, tmp_path: Path) -> None:
    clash = tmp_path / "clash"
    shutil.copytree(project, clash)
    init = clash / NAME / "__init__.py"
    init.write_text(init.read_text(encoding="utf-8").replace(f'name="{NAME}"', 'name="helios"'), encoding="utf-8")
    done = run(COALITION, "--pack-path", str(clash / NAME), "pack", "list", cwd=tmp_path)
    one_line_error(done, f"pack 'helios': from {clash / NAME}: clashes with the installed pack of that name")
    project_file = clash / "pyproject.toml"  # the project names it in its entry point: refused before any import
    text = project_file.read_text(encoding="utf-8").replace(f'{NAME} = "{NAME}:PACK"', f'helios = "{NAME}:PACK"')
    project_file.write_text(text, encoding="utf-8")
    done = run(COALITION, "--pack-path", str(clash), "pack", "list", cwd=tmp_path)
    one_line_error(done, f"pack 'helios': from {clash}: clashes with the installed pack of that name")


def test_two_folders_of_one_module_are_one_line(project: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(project, twin)
    done = run(COALITION, "--pack-path", str(project), "--pack-path", str(twin), "pack", "list", cwd=tmp_path)
    one_line_error(done, f"pack '{NAME}': from {twin}: clashes with the pack from {project} of that name")
    json_module = tmp_path / "json"  # a package folder named like a module Python already has
    shutil.copytree(project / NAME, json_module)
    done = run(COALITION, "--pack-path", str(json_module), "pack", "list", cwd=tmp_path)
    one_line_error(done, f"from {json_module}: its module 'json' clashes with the module Python already finds at ")


def test_a_folder_without_a_pack_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    done = run(COALITION, "--pack-path", str(tmp_path / "notes"), "pack", "list", cwd=tmp_path)
    one_line_error(done, "holds no pack: neither a project whose pyproject.toml names a coalition.packs entry point")


def test_the_option_in_the_wrong_place_or_without_a_folder_is_one_line(tmp_path: Path) -> None:
    done = run(COALITION, "run", "first-orders.yaml", "--pack-path", "shop", cwd=tmp_path)
    one_line_error(done, "No such option: --pack-path: it goes before the command (coalition --pack-path DIR run …)")
    done = run(COALITION, "--pack-path", cwd=tmp_path)
    one_line_error(done, "Option '--pack-path' requires an argument.")
