"""`coalition run` and `coalition demo`: run a scenario end to end under governance and show what happened."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import orjson
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from coalition.agents.errors import ModelConfigError
from coalition.agents.model_choice import ModelChoice, choose_models
from coalition.agents.prices import PriceTable, load_prices
from coalition.agents.providers import SLOW_CALL_S, ProviderAccess, missing_keys
from coalition.agents.recording import ReplayChatModel
from coalition.bootstrap import BusChoice, approver_keys, build_run, run_keyring
from coalition.bus.errors import KeyStoreError
from coalition.bus.keys import Keyring
from coalition.cli.common import JsonFlag, LedgerPath, check_run_id, fail, open_ledger, settings
from coalition.cli.resume import resume_command
from coalition.cli.stops import stops_cleanly
from coalition.cli.summary import escalations, render_summary
from coalition.cli.terminal import TerminalConsole, clean
from coalition.cli.worker_cmd import DeadlineOption, LocalAgentWorkers, WorkersOption, parse_workers
from coalition.console import setup_done
from coalition.domain import load_pack
from coalition.governance.decision_signatures import DIRECTORY_SETTING
from coalition.governance.errors import PolicyError
from coalition.governance.policy import Policy, load_policy
from coalition.ledger.base import LedgerQuery
from coalition.ledger.digest import run_digest
from coalition.ledger.errors import LedgerError
from coalition.logs import bind_context, configure_logging
from coalition.scenarios.assembly import run_agent_names
from coalition.scenarios.board_divergence import board_check, names_human_decisions
from coalition.scenarios.errors import ScenarioError
from coalition.scenarios.replay import ReplayError, recorded_run, resume_models
from coalition.scenarios.runner import DayProgress, RemoteRun, RemoteStep, RunnerOptions, RunResult, recorded_choices
from coalition.scenarios.spec import MAX_SEED, Scenario, load_scenario, policy_misfit
from coalition.settings import Settings

if TYPE_CHECKING:
    from coalition.bootstrap import OpenLedger

BusOption = Annotated[
    str | None,
    typer.Option("--bus", help="memory, redis (embedded, or REDIS_URL when set) or a redis:// / unix:// URL."),
]


def _new_run_id(scenario: Scenario) -> str:
    return f"{scenario.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def _load(scenario_ref: str, policy_path: Path | None) -> tuple[Scenario, Policy]:
    try:
        scenario = load_scenario(scenario_ref)
        policy = load_policy(policy_path) if policy_path is not None else scenario.load_policy()
    except (ScenarioError, PolicyError) as exc:
        fail(str(exc))
    misfit = policy_misfit(scenario, policy)
    if misfit is not None:
        fail(f"{policy_path}: {misfit}")
    return scenario, policy


class ModelPlan:
    """Which model each agent uses (and why), with the keys, endpoints and prices to reach them."""

    def __init__(self, choices: dict[str, ModelChoice], access: ProviderAccess, prices: PriceTable) -> None:
        self.choices = choices
        self.access = access
        self.prices = prices
        self.replay: dict[str, ReplayChatModel] | None = None  # a resumed run: recorded answers first


def model_plan(cfg: Settings, scenario: Scenario | None, recorded: dict[str, ModelChoice] | None = None) -> ModelPlan:
    """Resolve the per-agent models; a bad choice, price table or a missing key is a one-line error (exit 2)."""
    access = ProviderAccess(
        openai_api_key=cfg.openai_api_key,
        anthropic_api_key=cfg.anthropic_api_key,
        openai_base_url=cfg.openai_base_url,
        anthropic_base_url=cfg.anthropic_base_url,
        timeout_s=cfg.llm_timeout,
        slow_call_s=min(SLOW_CALL_S, cfg.llm_timeout / 2),  # announced well before it is given up on
        max_answer_chars=cfg.llm_max_answer_chars,
    )
    try:
        choices = recorded or choose_models(
            default=cfg.llm,
            per_agent=cfg.per_agent_models(),
            scenario={name: a.model for name, a in scenario.agents.items()} if scenario is not None else None,
        )
        prices = load_prices(cfg.prices)
        for choice in choices.values():
            prices.price(choice.spec if choice.provider != "offline" else "offline:*")
    except ModelConfigError as exc:
        fail(str(exc))
    return ModelPlan(choices, access, prices)


def check_keys(plan: ModelPlan) -> None:
    problems = missing_keys(plan.choices, plan.access)
    if problems:
        fail("; ".join(problems))


def _check_run_id(ledger: OpenLedger, run_id: str, *, resume: bool) -> None:
    finished = ledger.count(LedgerQuery(run_id=run_id, kind="run", outcome="completed"))
    exists = ledger.count(LedgerQuery(run_id=run_id, limit=1)) > 0
    if resume and not exists:
        fail(f"no run {run_id!r} in {ledger.path} to resume")
    if resume and finished:
        fail(f"run {run_id!r} already completed; nothing to resume")
    if not resume and exists:
        fail(f"run id {run_id!r} is already in {ledger.path}; pick another --run-id (or --resume it)")


def _resume_hint(ledger: OpenLedger, run_id: str, command: str) -> str:
    """The command that continues the run, or the advice to start again when nothing of it was recorded."""
    try:
        recorded = ledger.count(LedgerQuery(run_id=run_id, limit=1)) > 0
    except LedgerError:  # a lost or unreadable ledger: the resume command is still the way on
        recorded = True
    if not recorded:
        return "nothing was recorded yet; run the same command again"
    return command


def execute(
    scenario: Scenario,
    policy: Policy,
    *,
    bus_choice: BusChoice,
    ledger: OpenLedger,
    run_id: str,
    seed: int | None,
    interactive: bool,
    approval_wait: float,
    console: Console,
    quiet: bool = False,
    plan: ModelPlan | None = None,
    run_settings: dict[str, object] | None = None,
    bus_option: str | None = None,
    shadow_policy: Policy | None = None,
    agent_workers: int | None = None,
    agent_deadline: float = 300.0,
) -> RunResult:
    """Run one scenario with a progress bar over simulated days; shared by `run` and `demo`."""
    resume = resume_command(
        run_id,
        ledger_path=ledger.path,
        bus=bus_choice,
        bus_option=bus_option,
        interactive=interactive,
        approval_wait=approval_wait,
        data_dir=settings().data_dir,
    )
    with stops_cleanly(console, lambda: _resume_hint(ledger, run_id, resume)):
        data_dir = settings().data_dir
        attempts = f"run-{run_id.replace(':', '_')}"
        namespace = f"{attempts}-{secrets.token_hex(3)}"  # fresh streams per attempt
        stale = re.sub(r"([][*?\\])", r"\\\1", attempts) + "-" + "[0-9a-f]" * 6  # killed attempts' streams
        bind_context(run_id=run_id)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            console=console,
            disable=quiet,
            transient=False,
        ) as progress:
            task = progress.add_task(f"{scenario.name} (simulated days)", total=scenario.days, status="")

            def on_day(p: DayProgress) -> None:
                if p.waiting_for_human:
                    status = (
                        f"[yellow]waiting for a human: {p.pending_escalations} escalation(s) — "
                        f"coalition approvals list --run {run_id}[/]"
                    )
                    progress.update(task, status=status)
                    return
                status = f"{p.sim_time:%Y-%m-%d}  step {p.superstep}  pending {p.pending_escalations}"
                progress.update(task, completed=p.day + 1, status=status)

            def on_slow_call(agent: str, model_id: str, waited: float) -> None:
                """A paid model is slow: say so (once per call) instead of a silent stall."""
                limit = plan.access.timeout_s if plan is not None else 0
                text = f"waiting for model {model_id} ({agent}): {waited:.0f} s so far, gives up at {limit:g} s …"
                progress.update(task, status=f"[yellow]{text}[/]")
                progress.console.print(clean(text), markup=False, highlight=False)

            access = plan.access.model_copy(update={"on_slow_call": on_slow_call}) if plan is not None else None

            keys, recorded = _identities(data_dir, policy, interactive=interactive, console=console)
            options = RunnerOptions(
                interactive=interactive,
                approval_wait_seconds=approval_wait,
                on_day=on_day,
                models=plan.choices if plan is not None else None,
                provider_access=access,
                prices=plan.prices if plan is not None else None,
                replay=plan.replay if plan is not None else None,
                settings={**(run_settings or {}), **recorded},
                keyring=keys,
                shadow_policy=shadow_policy,
                agent_workers=_remote(bus_choice, agent_workers, agent_deadline, progress.console),
            )
            with build_run(
                scenario,
                bus=bus_choice,
                namespace=namespace,
                data_dir=data_dir,
                stale_namespaces=stale,
                ledger=ledger,
                run_id=run_id,
                seed=seed,
                policy=policy,
                options=options,
            ) as runner:
                setup_done()  # what the run keeps is built: out of its collections (coalition.console)
                if not agent_workers:  # in this process, or external workers
                    return runner.run()
                url = str(bus_choice.url or getattr(runner.raw_bus, "url", ""))
                local = LocalAgentWorkers(
                    run_agent_names(runner.scenario, runner.pack),
                    agent_workers,
                    url=url,
                    run_id=run_id,
                    log_dir=data_dir / "workers" / run_id.replace(":", "_"),
                )
                try:
                    return runner.run()
                finally:
                    local.stop()


def _remote(
    bus: BusChoice, workers: int | None, deadline: float, console: Console
) -> Callable[[RemoteRun], RemoteStep] | None:
    """RunnerOptions.agent_workers for workers on the run's Redis (None: the agents run in this process)."""
    if workers is None:
        return None
    from coalition.scenarios.agent_workers import remote_agents

    return remote_agents(bus.url, deadline_s=deadline, on_wait=lambda text: console.print(text, markup=False))


def _identities(
    data_dir: Path, policy: Policy, *, interactive: bool, console: Console
) -> tuple[Keyring, dict[str, object]]:
    """The producers' signing keys, and (interactive runs) the approver directory the run records: the public
    keys that human decisions must verify against. A run without a human records none (its ledger content
    then depends on nothing of this machine: scripted boards sign with declared test identities)."""
    try:
        keys = run_keyring(data_dir)
        if not interactive:
            return keys, {}
        directory = approver_keys(data_dir).directory_for(policy.approvers)
    except KeyStoreError as exc:
        fail(str(exc))
    if not directory:
        console.print(
            "[yellow]no approver of the policy has a key: add one with "
            "`coalition users add NAME --role approver` before the run (its directory is recorded at start)[/]"
        )
    return keys, {DIRECTORY_SETTING: directory}


def _print_result(
    console: Console,
    ledger: OpenLedger,
    result: RunResult,
    *,
    as_json: bool,
    scenario: Scenario,
    policy: Policy,
    seed: int | None,
) -> bool:
    """Print the run's summary; True when it counts as a success (every expectation held, or the failed ones
    differ only because humans decided escalations otherwise than the scenario's scripted board)."""
    entries = list(ledger.iter_entries(run_id=result.run_id))
    failed = [r.id for r in result.expectations if not r.passed]
    check = board_check(failed, entries, scenario, policy, scenario.seed if seed is None else seed)
    board_ids = set(check.board_only) | {e.id for e in scenario.expectations if names_human_decisions(e)}
    if as_json:
        doc = {
            "run_id": result.run_id,
            "status": result.status,
            "digest": run_digest(ledger, result.run_id),
            "entries": len(entries),
            "supersteps": result.supersteps,
            "wall_seconds": round(result.wall_seconds, 3),
            "summary": result.summary,
            "escalations": escalations(entries),
            "expectations": [r.model_dump(mode="json") for r in result.expectations],
            "scripted_board": check.to_json(),
            "ledger": ledger.path,
        }
        typer.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return not check.failed
    render_summary(console, entries, result.summary["kpis"], result.expectations, board_ids, set(check.board_only))
    passed = sum(r.passed for r in result.expectations)
    if not failed:
        verdict = "[green]all held[/]"
    elif not check.failed:
        verdict = f"[yellow]{check.summary}[/]"
    else:
        verdict = f"[red]{len(check.failed)} FAILED[/]" + (f"; {check.summary}" if check.summary else "")
    console.print(
        f"\nRun [b]{result.run_id}[/b]: {len(entries)} ledger entries, {result.supersteps} supersteps, "
        f"{result.wall_seconds:.1f} s; expectations {passed}/{len(result.expectations)} {verdict}."
    )
    for d in check.divergences:
        line = f"  decided otherwise: {d.agent} {d.action} (gate {d.gate}) — the scripted board: {d.scripted}, "
        line += f"this run: {d.decided}" + (f" by {', '.join(d.deciders)}" if d.deciders else "")
        console.print(escape(line), soft_wrap=True)
    return not check.failed


def run(
    scenario_ref: Annotated[
        str | None,
        typer.Argument(
            metavar="SCENARIO", help="A library name (scenario list) or a file; with --resume, taken from the ledger."
        ),
    ] = None,
    bus: BusOption = None,
    ledger_path: LedgerPath = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, max=MAX_SEED, help="Override the scenario's seed (0 … 2^64 − 1).")
    ] = None,
    run_id: Annotated[str | None, typer.Option("--run-id", help="Run id (default: generated).")] = None,
    interactive: Annotated[
        bool | None,
        typer.Option(
            "--interactive/--no-interactive",
            help="Escalations wait for a human (coalition approvals …); with --resume, as the run was started.",
        ),
    ] = None,
    approval_wait: Annotated[
        float,
        typer.Option(
            "--approval-wait",
            min=0.0,
            help="Interactive: seconds to wait for humans before the clock moves on (pending ones then expire "
            "as deny at their policy deadline).",
        ),
    ] = 600.0,
    policy_path: Annotated[
        Path | None, typer.Option("--policy", help="Govern with this policy file instead of the scenario's.")
    ] = None,
    shadow_policy_path: Annotated[
        Path | None,
        typer.Option(
            "--shadow-policy",
            help="Also evaluate every proposal under this policy and record its would-be verdict beside the real "
            "one (it never decides); coalition report shows where they differ.",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue the interrupted run given by --run-id (replays, then goes on).")
    ] = False,
    agent_workers: WorkersOption = None,
    agent_deadline: DeadlineOption = 300.0,
    as_json: JsonFlag = False,
) -> None:
    """Run a scenario under governance; prints the run id, a progress bar and a summary.

    Exit 0 when the run completed and its expectations held — or the only ones that failed are written for the
    scenario's scripted board and hold with it, because people decided escalations otherwise (the summary says
    "expectations written for the scripted board: N differ because humans decided otherwise"); 1 when an
    expectation failed for any other reason; 2 for bad input.

    Example: coalition run my-scenario --bus memory --seed 7
    """
    cfg = settings()
    configure_logging(cfg.log_level, cfg.log_format)
    try:
        choice = BusChoice.parse(bus, cfg)
    except ValueError as exc:
        fail(str(exc))
    try:
        workers = parse_workers(agent_workers)
    except ValueError as exc:
        fail(str(exc))
    if workers is not None and choice.kind != "redis":
        fail("--agent-workers needs --bus redis (or a redis:// URL): the workers are other processes")
    if workers is not None and resume:
        fail("--agent-workers cannot resume a run: resume it in one process (without --agent-workers)")
    if resume and run_id is None:
        fail("--resume needs the --run-id of the run to continue")
    if run_id is not None:
        check_run_id(run_id)
    if resume and shadow_policy_path is not None:
        fail("--shadow-policy cannot be given with --resume: the run goes on with the shadow policy it started with")
    shadow = None
    if shadow_policy_path is not None:
        try:  # a bad shadow policy is one line before anything runs
            shadow = load_policy(shadow_policy_path)
        except PolicyError as exc:
            fail(f"--shadow-policy: {exc}")
    ledger = open_ledger(ledger_path, create=True)
    recorded: dict[str, ModelChoice] | None = None
    run_settings: dict[str, object] = {}
    if resume:
        assert run_id is not None
        try:  # the scenario, policy and seed the run was started with, as its ledger recorded them
            original = recorded_run(ledger, run_id)
        except ReplayError as exc:
            fail(str(exc))
        scenario, policy, seed = original.scenario, original.policy, original.seed
        shadow = original.shadow_policy
        if interactive is None:  # a human in the loop stays in the loop
            interactive = original.started.settings.get("interactive") is True
        # an all-offline run records no model choices: it resumes offline, whatever the environment says now
        recorded = recorded_choices(dict(original.started.settings)) or choose_models()
    elif scenario_ref is None:
        fail("SCENARIO is required (a library name, see scenario list, or a file); --resume reads it from the ledger")
    else:
        scenario, policy = _load(scenario_ref, policy_path)
        misfit = policy_misfit(scenario, shadow) if shadow is not None else None
        if misfit is not None:
            fail(f"--shadow-policy: {shadow_policy_path}: {misfit}")
    plan = model_plan(cfg, scenario, recorded)
    check_keys(plan)  # before anything runs: never a traceback mid-run for a missing key
    if resume:
        assert run_id is not None
        assert seed is not None
        try:  # what the run already asked its models is answered from the ledger: never paid for twice
            plan.replay = resume_models(ledger, run_id, plan.choices, plan.access, seed=seed)
        except ModelConfigError as exc:
            fail(str(exc))
    run_id = run_id or _new_run_id(scenario)
    _check_run_id(ledger, run_id, resume=resume)
    console = TerminalConsole(stderr=as_json)
    console.print(f"run id: [b]{run_id}[/b]   bus: {choice.describe()}   ledger: {ledger.path}")
    result = execute(
        scenario,
        policy,
        bus_choice=choice,
        ledger=ledger,
        run_id=run_id,
        seed=seed,
        interactive=bool(interactive),
        approval_wait=approval_wait,
        console=console,
        quiet=as_json,
        plan=plan,
        run_settings=run_settings,
        bus_option=bus,
        shadow_policy=shadow,
        agent_workers=workers,
        agent_deadline=agent_deadline,
    )
    ok = _print_result(console, ledger, result, as_json=as_json, scenario=scenario, policy=policy, seed=seed)
    raise typer.Exit(0 if ok else 1)


def demo(
    bus: BusOption = None,
    ledger_path: LedgerPath = None,
) -> None:
    """Run the default pack's demo scenario with no key and no server to set up, then show what governance did.

    Example: coalition demo
    """
    cfg = settings()
    configure_logging(cfg.log_level, cfg.log_format)
    try:
        choice = BusChoice.parse(bus, cfg)
    except ValueError as exc:
        fail(str(exc))
    default_pack = load_pack()
    demo_name = default_pack.demo
    if not demo_name:
        fail(f"pack {default_pack.name!r} declares no demo scenario (its Pack's `demo`)")
    scenario, policy = _load(demo_name, None)
    ledger = open_ledger(ledger_path, create=True)
    run_id = _new_run_id(scenario)
    console = TerminalConsole()
    console.print(
        f"[b]Coalition demo[/b]: {scenario.description}\n\nrun id: [b]{run_id}[/b]   bus: {choice.describe()}   "
        f"ledger: {ledger.path}   policy: {policy.name} ({policy.short_version})\n"
    )
    result = execute(
        scenario,
        policy,
        bus_choice=choice,
        ledger=ledger,
        run_id=run_id,
        seed=None,
        interactive=False,
        approval_wait=0,
        console=console,
        bus_option=bus,
    )
    ok = _print_result(console, ledger, result, as_json=False, scenario=scenario, policy=policy, seed=None)
    lp = f" --ledger {ledger_path}" if ledger_path else ""
    first_escalation = next(iter(escalations(list(ledger.iter_entries(run_id=run_id)))), None)
    explain_number = first_escalation["number"] if first_escalation else 1
    console.print(
        "\n[b]Next[/b]\n"
        f"  coalition ledger list --run {run_id} --kind verdict{lp}\n"
        f"  coalition ledger explain {explain_number} --run {run_id}{lp}   # why? the causal chain of a decision\n"
        f"  coalition ledger verify{lp}                     # tamper evidence\n"
        f"  coalition run {demo_name} --interactive{lp}   # you approve the escalations\n"
    )
    raise typer.Exit(0 if ok else 1)
