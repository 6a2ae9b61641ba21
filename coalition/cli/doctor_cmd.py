"""`coalition doctor`: what this installation would use, and whether it works — before a run finds out."""

from __future__ import annotations

import importlib.metadata
import platform
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from coalition.agents.providers import missing_keys
from coalition.bootstrap import (
    BusChoice,
    LedgerLocation,
    describe_ledger,
    is_postgres,
    ledger_location,
    ledger_trust,
    open_bus,
    open_ledger,
)
from coalition.bus.errors import BusError
from coalition.bus.redaction import redactor
from coalition.cli.common import JsonFlag, LedgerPath, fail, settings
from coalition.cli.run_cmd import ModelPlan, model_plan
from coalition.cli.terminal import TerminalConsole
from coalition.domain import PackError, catalog
from coalition.ledger.errors import LedgerError
from coalition.scenarios.errors import ScenarioError
from coalition.scenarios.spec import load_scenario

PACKAGES = ("coalition", "langgraph", "langchain-core", "redis", "pydantic", "openai", "anthropic")


def _models(scenario_ref: str | None) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Each agent's model and why (for the scenario when given), and the missing keys."""
    cfg = settings()
    scenario = None
    if scenario_ref is not None:
        try:
            scenario = load_scenario(scenario_ref)
        except ScenarioError as exc:
            fail(str(exc))
    plan = model_plan(cfg, scenario)
    models = {
        agent: {"model": c.spec, "source": c.source, "why": c.why, "key": _key_state(plan, c.provider)}
        for agent, c in sorted(plan.choices.items())
    }
    return models, missing_keys(plan.choices, plan.access)


def _key_state(plan: ModelPlan, provider: str) -> str:
    if provider == "offline":
        return "not needed"
    where = plan.access.base_url(provider) or "the provider's default endpoint"
    return f"{'set' if plan.access.key(provider) else 'MISSING'} ({where})"


def _check_bus(choice: BusChoice, data_dir: Path) -> tuple[bool, str]:
    try:
        with tempfile.TemporaryDirectory(prefix="coalition-doctor-") as scratch:
            where = data_dir if choice.url else Path(scratch)
            with open_bus(choice, namespace=f"doctor-{secrets.token_hex(3)}", data_dir=where) as bus:
                bus.ensure_group("doctor", "doctor")
                return True, f"{choice.describe()}: reachable (consumer group created)"
    except (BusError, OSError) as exc:
        return False, f"{choice.describe()}: {exc}"


def _workers(choice: BusChoice) -> list[dict[str, object]] | str:
    """The agent workers alive on the bus's Redis (coalition worker), or why none can be listed."""
    if choice.kind != "redis" or choice.url is None:
        return "none: agent workers need a shared Redis (--bus redis://… or REDIS_URL)"
    from coalition.bus.worker_control import WorkerControl

    try:
        control = WorkerControl(choice.url)
        try:
            alive = control.alive()
        finally:
            control.close()
    except BusError as exc:
        return f"cannot list: {exc}"
    now = datetime.now(UTC)
    return [
        {
            "name": beat.name,
            "host": beat.host,
            "pid": beat.pid,
            "agents": beat.agents,
            "runs": beat.runs,
            "last_heartbeat": beat.beat_at,
            "seconds_ago": round((now - datetime.fromisoformat(beat.beat_at)).total_seconds(), 1),
        }
        for beat in alive.values()
    ]


def _check_ledger(location: LedgerLocation) -> tuple[bool, str]:
    """The chain, the Merkle tree, every checkpoint's signature and root, and consistency with the witness and the
    CLI's memory (`ledger verify` without the derived-data rebuild, which is slow on a large ledger)."""
    from coalition.ledger.integrity import check_ledger

    where = describe_ledger(location)
    if isinstance(location, Path) and not location.exists():
        return True, f"{where}: not created yet (the first run creates it)"
    try:
        ledger = open_ledger(location, create=False, read_only=True)
    except LedgerError as exc:
        return False, str(exc)
    try:
        trust = ledger_trust(settings(), ledger, client="cli")
        seen = trust.seen.load() if trust.seen is not None else None
        report = check_ledger(
            ledger, verifiers=trust.verifiers, witness=trust.witness, seen=seen, seen_name="the cli", derived=False
        )
    except (LedgerError, OSError) as exc:
        return False, f"{where}: {exc}"
    finally:
        ledger.close()
    if not report.ok:
        return False, f"{where}: {report.line()}"
    root = report.root.hex()[:16] if report.root is not None else "none"
    newest = report.newest
    checkpoint = (
        "no signed checkpoint yet"
        if newest is None
        else f"newest checkpoint {newest.size} entries signed by {newest.signer} from {report.newest_source}"
        f" ({report.checkpoints_checked} checked)"
    )
    chains = f"; {report.chains.line()}" if report.chains is not None else ""
    return True, f"{where}: intact, {report.entries} entries{chains}; Merkle tree root {root}…; {checkpoint}"


def doctor(
    bus: Annotated[str | None, typer.Option("--bus", help="Check this bus instead of the configured one.")] = None,
    ledger_path: LedgerPath = None,
    scenario_ref: Annotated[
        str | None, typer.Option("--scenario", help="Show the models this scenario's agents would use.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Versions, which LLM provider and why, bus reachability, ledger path and integrity. Exit 1 if a check fails.

    Example: coalition doctor --bus memory
    """
    cfg = settings()
    try:
        choice = BusChoice.parse(bus, cfg)
    except ValueError as exc:
        fail(str(exc))
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    try:
        packs_ok, packs_detail = True, ", ".join(catalog().packs)
        models, key_problems = _models(scenario_ref)
    except PackError as exc:  # a broken third-party pack: a failed check, and no models to show without the packs
        packs_ok, packs_detail, models, key_problems = False, str(exc), {}, []
    bus_ok, bus_detail = _check_bus(choice, cfg.data_dir)
    backend = "unknown"
    try:
        location = ledger_location(ledger_path, cfg)
        backend = "postgresql" if is_postgres(location) else "sqlite"
        ledger_ok, ledger_detail = _check_ledger(location)
    except LedgerError as exc:
        ledger_ok, ledger_detail = False, str(exc)
    report = {
        "versions": versions,
        "llm": {"choice": cfg.llm, "why": "COALITION_LLM: the default for agents without their own choice"},
        "packs": {"ok": packs_ok, "detail": packs_detail},
        "models": models,
        "model_keys": {"ok": not key_problems, "problems": key_problems},
        "bus": {"ok": bus_ok, "detail": bus_detail},
        "ledger": {"ok": ledger_ok, "backend": backend, "detail": ledger_detail},
        "workers": _workers(choice) if bus_ok else "none: the bus is not reachable",
        "data_dir": str(cfg.data_dir),
    }
    report = redactor().value(report)  # a password in a base URL or an echoed key is never printed
    models, key_problems = report["models"], report["model_keys"]["problems"]
    bus_detail, ledger_detail, packs_detail = (
        report["bus"]["detail"],
        report["ledger"]["detail"],
        report["packs"]["detail"],
    )
    if as_json:
        typer.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        table = Table(title="coalition doctor", show_header=False, title_justify="left")
        table.add_column("check")
        table.add_column("result", overflow="fold")
        table.add_row("versions", ", ".join(f"{k} {v}" for k, v in versions.items()))
        table.add_row("packs", ("[green]ok[/] " if packs_ok else "[red]FAIL[/] ") + packs_detail)
        for agent, m in models.items():
            table.add_row(f"model {agent}", f"{m['model']} — {m['why']}; key {m['key']}")
        if key_problems:
            table.add_row("model keys", "[red]FAIL[/] " + "; ".join(key_problems))
        table.add_row("bus", ("[green]ok[/] " if bus_ok else "[red]FAIL[/] ") + bus_detail)
        table.add_row("ledger", ("[green]ok[/] " if ledger_ok else "[red]FAIL[/] ") + ledger_detail)
        workers = report["workers"]
        if isinstance(workers, str) or not workers:
            table.add_row("agent workers", escape(workers or "none alive"))
        for w in workers if isinstance(workers, list) else []:
            runs = f"; in {', '.join(w['runs'])}" if w["runs"] else ""
            table.add_row(
                f"worker {escape(w['name'])}",
                escape(f"{w['host']} pid {w['pid']}: {', '.join(w['agents'])}; last heartbeat {w['seconds_ago']} s "
                       f"ago{runs}"),
            )  # fmt: skip
        table.add_row("data dir", str(cfg.data_dir))
        TerminalConsole().print(table)
    raise typer.Exit(0 if packs_ok and bus_ok and ledger_ok and not key_problems else 1)
