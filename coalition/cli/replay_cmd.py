"""`coalition replay`, `coalition whatif` and `coalition consistency`: rehearse decisions again, under another
policy, or across channels and seeds."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import orjson
import typer
from rich.markup import escape
from rich.table import Table

from coalition.agents.errors import AgentError
from coalition.bus.errors import BusError
from coalition.cli.common import JsonFlag, LedgerPath, fail, open_ledger, run_or_latest, settings
from coalition.cli.terminal import TerminalConsole, clean, json_text
from coalition.governance.errors import PolicyError
from coalition.governance.policy import load_policy
from coalition.logs import configure_logging
from coalition.scenarios.consistency import consistency as run_consistency
from coalition.scenarios.consistency import decision_args
from coalition.scenarios.errors import ScenarioError, ScenariosError
from coalition.scenarios.replay import replay as run_replay
from coalition.scenarios.spec import load_scenario
from coalition.scenarios.whatif import whatif as run_whatif

if TYPE_CHECKING:
    from coalition.bootstrap import OpenLedger

RunArg = Annotated[str | None, typer.Argument(metavar="RUN", help="Run id (default: the most recent run).")]


def _quiet_logs() -> None:
    cfg = settings()
    configure_logging("warning" if cfg.log_level in ("debug", "info") else cfg.log_level, cfg.log_format)


def _echo_json(doc: Any) -> None:
    typer.echo(json_text(orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()))


def replay(
    run: RunArg = None,
    ledger_path: LedgerPath = None,
    as_json: JsonFlag = False,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Do not re-run the agents: re-derive every verdict, authorization and effect from the recorded"
            " proposals, model answers and human decisions, and check them against the ledger (fast).",
        ),
    ] = False,
) -> None:
    """Re-execute a recorded run from its ledger alone (scenario, policy, seed, human decisions) into a scratch
    ledger and compare entry by entry: IDENTICAL, or the first divergent entry with both versions.

    With --verify, governance, the executor and the world run again but the agents do not (what they said is taken
    from the ledger): IDENTICAL, or one line naming the first divergent entry (seq, kind, what differed).

    Exit 0 identical, 1 divergent, 2 bad input.

    Example: coalition replay my-scenario-20250303-101500-ab12 --ledger .coalition/ledger.db --verify
    """
    _quiet_logs()
    ledger = open_ledger(ledger_path, read_only=True)
    run_id = run_or_latest(ledger, run)
    if verify:
        _verify(ledger, run_id, as_json=as_json)
    try:
        result = run_replay(ledger, run_id)
    except (ScenariosError, AgentError) as exc:
        fail(str(exc))
    if as_json:
        _echo_json(result.to_json())
    elif result.identical:
        typer.echo(f"IDENTICAL: {result.entries} entries, digest {result.digest} ({result.replay_seconds:.2f} s)")
    else:
        div = result.divergence
        assert div is not None
        console = TerminalConsole()
        console.print(f"[red]DIVERGENT[/] at entry {div.index + 1} of run {run_id}: fields {', '.join(div.fields)}")
        table = Table("field", "recorded", "replayed")
        for key in div.fields:
            table.add_row(key, str((div.original or {}).get(key))[:200], str((div.replayed or {}).get(key))[:200])
        console.print(table)
    raise typer.Exit(0 if result.identical else 1)


def _verify(ledger: OpenLedger, run_id: str, *, as_json: bool) -> NoReturn:
    from coalition.scenarios.replay_verify import verify_run

    try:
        result = verify_run(ledger, run_id)
    except (ScenariosError, AgentError) as exc:
        fail(str(exc))
    if as_json:
        _echo_json(result.to_json())
    else:
        typer.echo(clean(result.line()))
    raise typer.Exit(0 if result.identical else 1)


def whatif(
    run: RunArg = None,
    policy_path: Annotated[
        Path | None, typer.Option("--policy", help="The policy file to re-run under.", dir_okay=False)
    ] = None,
    ledger_path: LedgerPath = None,
    as_json: JsonFlag = False,
) -> None:
    """Re-run a recorded run's scenario, seed and human decisions under another policy; list the decisions that
    change (allowed / denied / escalated) with the rules responsible on each side, and the KPI deltas.

    Models only word decisions, so the what-if is narrated by the offline model (no key, no network) and
    free-text arguments (messages, copy, reasons) are not compared.

    Example: coalition whatif my-scenario-20250303-101500-ab12 --policy my-policy.yaml
    """
    _quiet_logs()
    if policy_path is None:
        fail("--policy OTHER.yaml is required")
    try:
        policy = load_policy(policy_path)
    except PolicyError as exc:
        fail(str(exc))
    ledger = open_ledger(ledger_path, read_only=True)
    run_id = run_or_latest(ledger, run)
    try:
        result = run_whatif(ledger, run_id, policy)
    except (ScenariosError, AgentError) as exc:
        fail(str(exc))
    if as_json:
        _echo_json(result.to_json())
        return
    console = TerminalConsole()
    outcomes = sum(1 for c in result.changes if "outcome" in c.what_changed or c.before is None or c.after is None)
    amounts = sum(1 for c in result.changes if c.changed_args)
    console.print(
        f"What-if for [b]{escape(run_id)}[/b]: policy {result.policy_before[:16]} → {result.policy_after[:16]}; "
        f"{len(result.changes)} decision(s) change — {outcomes} in outcome, {amounts} in amounts or arguments "
        "(narrated offline; wording is not compared)."
    )
    table = Table("agent", "action", "what changed", "before", "rules before", "after", "rules after")
    for c in result.changes:
        b, a = c.before, c.after

        def side(d: Any) -> str:
            if d is None:
                return "not proposed"
            return str(d.outcome) + (f" → {d.resolution}" if d.resolution else "")

        shown = (
            c.what_changed
            if c.changed_args or b is None or a is None
            else (f"outcome; arguments {orjson.dumps(decision_args(c.args)).decode()[:80]}")
        )
        table.add_row(
            c.agent,
            c.action,
            escape(shown),
            side(b),
            ", ".join(b.rule_ids) if b else "",
            side(a),
            ", ".join(a.rule_ids) if a else "",
        )
    console.print(table)
    kpis = Table("KPI", "recorded", "what-if", "delta")
    for key, delta in result.kpi_deltas.items():
        kpis.add_row(key, f"{result.kpis_before[key]:,.2f}", f"{result.kpis_after[key]:,.2f}", f"{delta:+,.2f}")
    console.print(kpis)


def _model_options(scenario: Any) -> Any:
    """Runner options with the models a run of this scenario would use; a missing key is one line (exit 2)."""
    from coalition.cli.run_cmd import check_keys, model_plan
    from coalition.scenarios.runner import RunnerOptions

    plan = model_plan(settings(), scenario)
    check_keys(plan)
    return RunnerOptions(models=plan.choices, provider_access=plan.access, prices=plan.prices)


def _consistency_sweep(scenario: Any, runs: int, jobs: int) -> Any:
    """The K variants as sweep jobs on `jobs` local workers, recorded in a scratch ledger, then compared."""
    import secrets
    import tempfile

    from coalition.bootstrap import BusChoice
    from coalition.cli.sweep_cmd import run_sweep
    from coalition.ledger.sqlite import SqliteLedger
    from coalition.scenarios.consistency import case_decisions, compare_runs, variant
    from coalition.scenarios.sweep import make_job

    cfg = settings()
    choice = BusChoice.parse(None, cfg)
    if choice.kind == "memory":
        fail("consistency --jobs needs Redis (its workers are other processes): unset COALITION_BUS=memory")
    policy = scenario.load_policy()
    planned = [make_job(v, v.seed, policy) for v in (variant(scenario, i) for i in range(runs))]
    with tempfile.TemporaryDirectory(prefix="coalition-consistency-") as scratch:
        location = Path(scratch) / "consistency.db"
        SqliteLedger(location).close()
        try:
            results = run_sweep(
                planned,
                choice,
                f"consistency-{secrets.token_hex(4)}",
                location,
                jobs,
                60.0,
                cfg.data_dir,
                TerminalConsole(stderr=True),
                quiet=True,
            )
        except (BusError, RuntimeError) as exc:
            fail(str(exc))
        failed = [r for r in results if r.status != "completed"]
        if failed:
            fail(f"variant {failed[0].job_id} failed: {failed[0].error}")
        with SqliteLedger(location, create=False) as ledger:
            per_run = [case_decisions(ledger, job.job_id) for job in planned]
    return compare_runs(scenario.name, per_run)


def consistency(
    scenario_ref: Annotated[str, typer.Argument(metavar="SCENARIO", help="A library name or a scenario file.")],
    runs: Annotated[int, typer.Option("--runs", min=2, max=50, help="How many variants to run (K).")] = 4,
    target: Annotated[float, typer.Option("--target", min=0.0, max=1.0, help="pass^k needed for exit 0.")] = 1.0,
    jobs: Annotated[
        int,
        typer.Option(
            "--jobs", "-j", min=1, max=256, help="Run the variants as a sweep on this many worker processes (Redis)."
        ),
    ] = 1,
    as_json: JsonFlag = False,
    policy_path: Annotated[
        Path | None,
        typer.Option("--policy", metavar="FILE", help="Govern with this policy file (e.g. one with model lanes)."),
    ] = None,
    with_models: Annotated[
        bool,
        typer.Option(
            "--models",
            help="Use the models a run would (COALITION_LLM…, the scenario's agents:) instead of the offline model.",
        ),
    ] = False,
) -> None:
    """Run K variants of a scenario (other seeds; disputes through other channels and days) and report pass^k:
    the share of cases whose decision (outcome and amounts, not wording) was identical in every run. Every
    variant is narrated by the offline model (no key, no network) unless --models is given.

    With a policy whose lanes let a model choose actions (--policy) and --models, pass^k measures the model
    lane's consistency. Exit 0 at or above the target (100% by default), 1 below, 2 bad input.

    Example: coalition consistency billing-disputes --runs 5
    """
    _quiet_logs()
    if jobs > 1 and (policy_path is not None or with_models):
        fail("--policy and --models run the variants in this process: leave out --jobs")
    try:
        scenario = load_scenario(scenario_ref)
        policy = load_policy(policy_path) if policy_path is not None else None
        options = _model_options(scenario) if with_models else None
        result = (
            run_consistency(scenario, runs, policy=policy, options=options)
            if jobs == 1
            else _consistency_sweep(scenario, runs, jobs)
        )
    except (ScenarioError, ScenariosError, AgentError, PolicyError) as exc:
        fail(str(exc))
    if as_json:
        _echo_json(result.to_json())
    else:
        typer.echo(
            f"pass^{result.runs} = {result.pass_k:.0%} ({result.consistent}/{result.cases} cases identical in every "
            f"run of {scenario.name}; {'with the models a run would use' if with_models else 'narrated offline'}"
            f"{'' if policy_path is None else ', under ' + policy_path.name})"
        )
        for case in result.differing:
            typer.echo(f"  differs: {case}")
    raise typer.Exit(0 if result.pass_k >= target else 1)
