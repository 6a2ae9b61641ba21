"""Commands that load on use: `coalition --help` and a quick command never import what other commands need
(LangChain, the agents, the web console). Each top-level command is named here with where it lives and its
one-line help; the module is imported only when the command runs (or its own `--help` is asked for)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

import typer
from typer._click.core import Command, Context
from typer.core import TyperCommand

from coalition.cli.common import OneLineGroup
from coalition.console import imports_done


@dataclass(frozen=True, slots=True)
class LazyCommand:
    """A top-level command: `module:attribute` is a typer function or a `typer.Typer` sub-app."""

    name: str
    target: str
    help: str


COMMANDS: tuple[LazyCommand, ...] = (
    LazyCommand(
        "run",
        "coalition.cli.run_cmd:run",
        "Run a scenario under governance; prints the run id, a progress bar and a summary.",
    ),
    LazyCommand(
        "demo",
        "coalition.cli.run_cmd:demo",
        "Run the default pack's demo scenario with no key and no server to set up, then show what governance did.",
    ),
    LazyCommand(
        "doctor",
        "coalition.cli.doctor_cmd:doctor",
        "Versions, which LLM provider and why, bus reachability, ledger path and integrity. Exit 1 if a check fails.",
    ),
    LazyCommand("serve", "coalition.cli.serve_cmd:serve", "Start the web console and print its URL; stop with Ctrl-C."),
    LazyCommand(
        "replay",
        "coalition.cli.replay_cmd:replay",
        "Re-execute a recorded run from its ledger alone (scenario, policy, seed, human decisions) into a scratch "
        "ledger and compare entry by entry: IDENTICAL, or the first divergent entry with both versions.",
    ),
    LazyCommand(
        "whatif",
        "coalition.cli.replay_cmd:whatif",
        "Re-run a recorded run's scenario, seed and human decisions under another policy; list the decisions that "
        "change (allowed / denied / escalated) with the rules responsible on each side, and the KPI deltas.",
    ),
    LazyCommand(
        "consistency",
        "coalition.cli.replay_cmd:consistency",
        "Run K variants of a scenario (other seeds; disputes through other channels and days) and report pass^k: "
        "the share of cases whose decision (outcome and amounts, not wording) was identical in every run. Every "
        "variant is narrated by the offline model (no key, no network) unless --models is given.",
    ),
    LazyCommand(
        "drift",
        "coalition.cli.drift_cmd:drift",
        "Compare two runs (two models, prompts or policies) by their decision mix: allowed / denied / escalated rates "
        "per agent and action, and the divergence between the two action distributions.",
    ),
    LazyCommand(
        "sweep",
        "coalition.cli.sweep_cmd:sweep",
        "Run a grid of scenario × seed × policy as jobs on a Redis stream; print a progress bar, then one row per run.",
    ),
    LazyCommand(
        "sweep-worker",
        "coalition.cli.sweep_cmd:sweep_worker",
        "Take sweep jobs from a queue, run each into the ledger, report the result; on any host with the same Redis "
        "and ledger (COALITION_LEDGER=postgresql://… for several hosts) and the coordinator's keys/runner.pub in its "
        "data directory (jobs not signed with it are refused). Stop with Ctrl-C.",
    ),
    LazyCommand(
        "worker",
        "coalition.cli.worker_cmd:worker",
        "Serve agents for the runs a coordinator announces (coalition run … --agent-workers external), on any host "
        "with the same Redis and the run's keys directory; beats a heartbeat that coalition doctor lists. Stop with "
        "Ctrl-C.",
    ),
    LazyCommand(
        "report",
        "coalition.cli.report_cmd:report",
        "Report a run: KPIs, charts over simulated time with decision markers, decisions, escalations, expectations.",
    ),
    LazyCommand(
        "audit",
        "coalition.cli.report_cmd:audit",
        "Write an audit package: the ledger slice as JSONL, the verification result, the policy in force, the "
        "approvals and a readable summary — by time range or by incident.",
    ),
    LazyCommand(
        "ledger",
        "coalition.cli.ledger_cmd:ledger_app",
        "Audit the decision ledger: list entries, show one, verify the hash chain, digest a run, explain a decision.",
    ),
    LazyCommand(
        "approvals",
        "coalition.cli.approvals_cmd:approvals_app",
        "Decide what the governance gates escalated: list pending escalations, show one, approve or reject it; "
        "review what the sampled approval tier drew (approvals review).",
    ),
    LazyCommand(
        "users",
        "coalition.cli.users_cmd:users_app",
        "Manage web-console users: add one with a role, list them, change a password, remove one.",
    ),
    LazyCommand(
        "keys",
        "coalition.cli.keys_cmd:keys_app",
        "Manage the signing keys of the loop's producers: create the missing ones, list them, rotate one.",
    ),
    LazyCommand(
        "scenario", "coalition.cli.scenario_cmd:scenario_app", "The scenario library: list it, scaffold a new scenario."
    ),
    LazyCommand(
        "pack",
        "coalition.cli.pack_cmd:pack_app",
        "The domain packs: list the installed ones with their agents, actions and gates; scaffold a new one.",
    ),
)


def load(entry: LazyCommand) -> Command:
    """Import the command's module and build its click command under the listed name."""
    module_name, attribute = entry.target.split(":")
    target: Any = getattr(importlib.import_module(module_name), attribute)
    if not isinstance(target, typer.Typer):
        single = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
        single.command(entry.name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = entry.name
    return command


class _Placeholder(TyperCommand):
    """What `--help` lists for a command not loaded yet: its name and one-line help, nothing imported."""

    def __init__(self, entry: LazyCommand) -> None:
        super().__init__(entry.name, help=entry.help, short_help=entry.help)
        self.entry = entry


class LazyGroup(OneLineGroup):
    """The top-level group: every command of `COMMANDS` is listed at once and imported when it is resolved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for entry in COMMANDS:
            self.commands.setdefault(entry.name, _Placeholder(entry))

    def resolve_command(self, ctx: Context, args: list[str]) -> tuple[str | None, Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Placeholder):
            entry = command.entry
            command = self.commands[entry.name] = load(entry)
            imports_done()  # the console script paused the garbage collector for the imports
        return name, command, rest
