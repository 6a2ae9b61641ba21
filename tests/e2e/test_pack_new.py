"""`coalition pack new NAME` scaffolds a pack that works at once: installed the way pip installs any package (its
dist-info carries the `coalition.packs` entry point; `pip install --target`, then on PYTHONPATH), it is listed,
its scenario runs governed with every expectation held and replays IDENTICAL, and its own generated tests pass.
From the side: the same pack with a handler that raises still completes its run — that one order fails, recorded
with the error's line, the world unchanged by it — and a bad NAME or target is one line, exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ledger_attacks import rewrite_chain

pytestmark = pytest.mark.e2e

PYTHON = sys.executable
COALITION = str(Path(sys.executable).with_name("coalition"))
NAME = "shop_e2e"
SCENARIO = f"{NAME}-first-orders"
RUN = "shop-1"


def run(
    *args: str, cwd: Path, site: Path | None = None, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "COALITION_BUS", "COALITION_LEDGER"}}
    env["COALITION_DATA_DIR"] = str(cwd)
    if site is not None:
        env["PYTHONPATH"] = str(site)
    env.update(extra or {})
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, env=env, check=False, cwd=cwd)


def install(project: Path, site: Path) -> None:
    """pip's own install of the generated project (no dependencies: Coalition is already here)."""
    done = run(PYTHON, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(site),
               str(project), cwd=project)  # fmt: skip
    assert done.returncode == 0, done.stderr


def scaffold(name: str, where: Path) -> Path:
    project = where / name.replace("_", "-")
    done = run(COALITION, "pack", "new", name, "--dir", str(project), cwd=where)
    assert done.returncode == 0, done.stderr
    assert f"coalition run {name}-first-orders" in done.stdout
    return project


@pytest.fixture(scope="module")
def pack(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    where = tmp_path_factory.mktemp("pack-new")
    project = scaffold(NAME, where)
    site = where / "site"
    install(project, site)
    return project, site


@pytest.fixture(scope="module")
def governed(pack: tuple[Path, Path]) -> tuple[Path, dict[str, Any]]:
    project, site = pack
    data = project.parent / "data"
    data.mkdir()
    done = run(COALITION, "run", SCENARIO, "--bus", "memory", "--ledger", "l.db", "--run-id", RUN, "--json",
               cwd=data, site=site)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return data, json.loads(done.stdout)


def test_the_new_pack_is_listed(pack: tuple[Path, Path]) -> None:
    project, site = pack
    done = run(COALITION, "pack", "list", "--json", cwd=project, site=site)
    assert done.returncode == 0, done.stderr
    listed = {p["name"]: p for p in json.loads(done.stdout)}
    assert listed[NAME]["agents"] == [f"{NAME}_clerk"]
    assert listed[NAME]["actions"] == [f"{NAME}_ship"]
    assert listed[NAME]["gates"] == ["large_order", "budget_overrun"]
    assert {"helios", "billing-desk"} <= set(listed)  # beside the shipped packs, clashing with none


def test_its_scenario_runs_governed_with_every_expectation_held(governed: tuple[Path, dict[str, Any]]) -> None:
    _, result = governed
    assert result["status"] == "completed"
    assert [e["id"] for e in result["expectations"]] == [
        "every-order-proposed",
        "large-order-approved",
        "units-shipped",
    ]
    assert all(e["passed"] for e in result["expectations"]), [e["detail"] for e in result["expectations"]]
    assert result["summary"]["kpis"] == {"orders_shipped": 2, "units_shipped": 33}


def test_its_run_replays_identical(governed: tuple[Path, dict[str, Any]], pack: tuple[Path, Path]) -> None:
    data, _ = governed
    done = run(COALITION, "replay", RUN, "--ledger", "l.db", cwd=data, site=pack[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("IDENTICAL"), done.stdout


def test_its_report_shows_the_kpis_it_declares(governed: tuple[Path, dict[str, Any]], pack: tuple[Path, Path]) -> None:
    """The scaffold declares its reporting (labels and formats of its KPIs, the risk of its gate): a starting point
    for the pack's own report, shown at once."""
    data, _ = governed
    done = run(COALITION, "report", RUN, "--ledger", "l.db", "--format", "md", cwd=data, site=pack[1])
    assert done.returncode == 0, done.stderr
    assert "| Units shipped | 33 units |" in done.stdout
    assert "| Orders shipped | 2 |" in done.stdout


def test_its_generated_tests_pass(pack: tuple[Path, Path]) -> None:
    project, site = pack
    # its scenario-run test is the governed run above, once more through a subprocess: left out to keep this fast
    done = run(PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests", "-k", "not scenario_runs",
               cwd=project, site=site)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 passed, 1 deselected" in done.stdout


def test_a_handler_that_raises_fails_one_order_and_the_run_goes_on(tmp_path: Path) -> None:
    project = scaffold("shop_crash", tmp_path)
    actions = project / "shop_crash" / "actions.py"
    text = actions.read_text()
    bug = (
        "    item.shipped += a.quantity\n"
        '    if a.order_id == "O-1":\n'
        '        raise RuntimeError("ledger of stock is gone")\n'
    )
    actions.write_text(text.replace("    item.shipped += a.quantity\n", bug, 1))  # fails after changing the world
    site = tmp_path / "site"
    install(project, site)
    done = run(COALITION, "run", "shop_crash-first-orders", "--bus", "memory", "--ledger", "l.db", "--run-id", "c-1",
               "--json", cwd=tmp_path, site=site)  # fmt: skip
    assert "Traceback" not in done.stderr
    result = json.loads(done.stdout)
    assert result["status"] == "completed"
    assert result["summary"]["kpis"] == {"orders_shipped": 1, "units_shipped": 30}  # O-3 shipped; O-1 left no trace
    import sqlite3

    with sqlite3.connect(tmp_path / "l.db") as db:
        bodies = [json.loads(body) for (body,) in db.execute("SELECT body FROM entries ORDER BY seq")]
    failed = [b["payload"] for b in bodies if b["kind"] == "execution" and b["payload"]["status"] == "failed"]
    assert [f["detail"] for f in failed if "raised" in f["detail"]] == [
        "failed: the shop_crash_ship handler raised RuntimeError: ledger of stock is gone; nothing changed"
    ]
    replayed = run(COALITION, "replay", "c-1", "--ledger", "l.db", cwd=tmp_path, site=site)
    assert replayed.stdout.startswith("IDENTICAL"), replayed.stdout + replayed.stderr  # the failure is deterministic
    # replay --verify applies what the run recorded as applied without a savepoint, and what failed with one: the
    # failed order's half-done change is put back there too, or the shipped units at the end would differ
    verified = run(COALITION, "replay", "c-1", "--ledger", "l.db", "--verify", cwd=tmp_path, site=site)
    assert verified.stdout.startswith("IDENTICAL"), verified.stdout + verified.stderr
    # the failure rewritten as applied (the chain rehashed) and handed to an auditor: verify applies it unguarded,
    # the handler raises again, and that execution is the first divergence
    seq = next(i for i, b in enumerate(bodies, 1) if b["kind"] == "execution" and "raised" in b["payload"]["detail"])
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    (auditor / "l.db").write_bytes((tmp_path / "l.db").read_bytes())
    rewrite_chain(auditor / "l.db", seq, _recorded_as_applied)
    forged = run(COALITION, "replay", "c-1", "--ledger", "l.db", "--verify", cwd=auditor, site=site)
    assert forged.returncode == 1, forged.stdout + forged.stderr
    assert forged.stdout.startswith(f"DIVERGENT at seq {seq} (execution on "), forged.stdout
    assert "outcome recorded 'applied', re-derived 'failed'" in forged.stdout, forged.stdout


def _recorded_as_applied(fields: dict[str, Any]) -> None:
    fields["outcome"] = "applied"
    fields["payload"]["status"] = "applied"


def test_a_bad_name_is_one_line(tmp_path: Path) -> None:
    # every kind of bad name is checked in tests/unit/test_pack_scaffold.py; here, what the user sees
    done = run(COALITION, "pack", "new", "Tea-Shop", "--dir", str(tmp_path / "p"), cwd=tmp_path)
    assert done.returncode == 2, done.stdout
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, done.stderr
    assert "pack name 'Tea-Shop' is not a lowercase Python identifier" in lines[0]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "p").exists()  # nothing written


def test_a_target_that_is_not_empty_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "notes.txt").write_text("mine")
    done = run(COALITION, "pack", "new", "tea_shop", "--dir", str(tmp_path / "p"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: target directory {tmp_path / 'p'} is not empty"]
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == ["notes.txt"]  # left as it was
