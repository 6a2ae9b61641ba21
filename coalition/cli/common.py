"""What every command shares: settings, one-line failures (exit 2), opening the ledger, picking a run."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from typer._click.core import Context  # typer ≥ 0.25 vendors click: parsing raises these classes
from typer._click.exceptions import UsageError
from typer._click.globals import get_current_context
from typer.core import TyperGroup

# The composition root, the settings, the ledger and pydantic are imported by the functions that use them, not
# here: `coalition --help` (coalition.cli.lazy) needs OneLineGroup alone, and they are ~0.2 s of its start.
if TYPE_CHECKING:
    from coalition.bootstrap import BusChoice, LedgerTrust, OpenLedger
    from coalition.ledger.checkpoint import SignedCheckpoint
    from coalition.settings import Settings

LedgerPath = Annotated[
    Path | None,
    typer.Option(
        "--ledger",
        help="Ledger: a SQLite file or a postgresql:// URL. Default: COALITION_LEDGER, else ledger.db under"
        " COALITION_DATA_DIR (./.coalition/).",
        dir_okay=False,
        show_default=False,
    ),
]
RunOption = Annotated[str | None, typer.Option("--run", help="Run id. Default: the most recent run.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table or tree.")]


# Exit codes every command shares (the README's table; coalition/cli/stops.py for how a run stops).
EXIT_USAGE = 2  # bad input: a file, an option, a setting
EXIT_COULD_NOT_WRITE = 3  # disk full, a read-only data directory, the ledger lost or unwritable
EXIT_SERVICE_FAILED = 4  # the bus (Redis) or a model provider failed mid-run


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """A user mistake or an unusable input: one line on stderr, exit status 2 (or `code`), no traceback."""
    from coalition.cli.terminal import clean  # rich's console machinery: only when there is something to say

    typer.echo(f"error: {clean(' '.join(message.split()))}", err=True)
    raise typer.Exit(code)


def write_output(out: Path, text: str) -> None:
    """Write a command's output file (its folder made if needed); a path that cannot be written is one line."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")


def _usage_error(exc: UsageError, ctx: Context | None) -> NoReturn:
    message = " ".join(exc.format_message().split())
    if message.startswith("No such option: --pack-path") and ctx is not None and ctx.parent is not None:
        command = ctx.command_path.partition(" ")[2]
        fail(f"{message}: it goes before the command (coalition --pack-path DIR {command} …)")
    where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    fail(message + where)


class OneLineGroup(TyperGroup):
    """The command groups: any usage error below them (an unknown command or option, a missing or bad value)
    is one line on stderr and exit 2, not click's box; asking for help with no arguments still shows help.
    A ledger that cannot be used (locked, altered, unreadable) or an installed pack that cannot be loaded is one line
    and exit 2 too, never a traceback."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """The group's own options (`coalition --pack-path DIR`): a usage error in them is one line too."""
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            _usage_error(exc, exc.ctx or ctx)

    def invoke(self, ctx: Context) -> Any:
        from coalition.domain.errors import PackError
        from coalition.ledger.errors import LedgerError

        _install_secrets()
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                raise
            _usage_error(exc, exc.ctx or ctx)
        except (LedgerError, PackError) as exc:  # a broken third-party pack names itself on one line
            fail(str(exc))


def settings() -> Settings:
    """The settings from the environment and ./.env; anything unusable there is one line naming it (exit 2)."""
    from pydantic import ValidationError

    from coalition.bus.redaction import install
    from coalition.settings import AGENT_MODEL_VARIABLES, Settings, unknown_agent_models

    unknown = sorted(unknown_agent_models(os.environ))
    if unknown:
        fail(f"{unknown[0]}: no such agent (COALITION_LLM_<AGENT> takes {', '.join(AGENT_MODEL_VARIABLES)})")
    try:
        cfg = Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        fail(f"bad setting {_setting_name(first['loc'])}: {first['msg'].removeprefix('Value error, ')}")
    except UnicodeDecodeError as exc:  # pydantic-settings reads .env as UTF-8
        fail(f".env: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start})")
    install(cfg.secrets())
    _export_agent_graph(cfg)
    return cfg


def _setting_name(loc: tuple[int | str, ...]) -> str:
    """What the user set: the environment variable of a setting without an alias of its own (`agent_graph` is set
    as COALITION_AGENT_GRAPH), else the name pydantic reports (an alias such as REDIS_URL is that name already)."""
    from coalition.settings import Settings

    where = ".".join(str(p) for p in loc)
    field = Settings.model_fields.get(str(loc[0])) if len(loc) == 1 else None
    if field is None or field.validation_alias is not None:
        return where
    return f"{Settings.model_config.get('env_prefix', '')}{where}".upper()


def _export_agent_graph(cfg: Settings) -> None:
    """A COALITION_AGENT_GRAPH given in ./.env reaches the agents (coalition.agents.pipeline reads the environment,
    as this process's children do); one set in the environment wins, as pydantic-settings has it. Named here, not
    imported: a command that runs no agent loads none of them."""
    if cfg.agent_graph != "straight":
        os.environ.setdefault("COALITION_AGENT_GRAPH", cfg.agent_graph)


def _install_secrets() -> None:
    """Before any command: the settings' secrets (.env included) join the environment's in the one redactor that
    every writer applies; a bad setting is reported by the command that needs it, not here."""
    from pydantic import ValidationError

    from coalition.bus.redaction import install
    from coalition.settings import Settings

    try:
        install(Settings().secrets())
    except (ValidationError, UnicodeDecodeError):
        install({})


def open_ledger(path: Path | None, *, create: bool = False, guard: bool = True, read_only: bool = False) -> OpenLedger:
    """The ledger at `path` (default: COALITION_LEDGER, else the data directory's); a SQLite file must exist
    unless `create`; `read_only` for commands that only read (a SQLite file is then never written: a read-only
    disk or a foreign file is left as it is). Inside a command it is closed when the command ends.

    The ledger (either backend: both keep the Merkle tree) is refused (one line, exit 2) when it is not provably
    consistent with the newest checkpoint this user's CLI has seen or the witness holds (`guard`; `ledger verify`
    makes the full check itself), and it signs checkpoints as it grows (the notary)."""
    from coalition.bootstrap import attach_notary, ledger_location, ledger_trust
    from coalition.bootstrap import open_ledger as open_ledger_at
    from coalition.ledger.errors import LedgerError

    location = ledger_location(path, settings())
    if isinstance(location, Path):
        if not create and not location.exists():
            fail(f"no ledger at {location} (run a scenario first, or pass --ledger PATH)")
        if create:
            _check_writable(location)
            try:
                location.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                fail(str(exc))
    try:
        ledger = open_ledger_at(location, create=create, read_only=read_only)
    except (LedgerError, OSError) as exc:
        fail(str(exc))
    ctx = get_current_context(silent=True)
    if ctx is not None:  # closed when the command ends, whichever way it ends
        ctx.call_on_close(ledger.close)
    trust = ledger_trust(settings(), ledger, client="cli")
    if guard:
        refuse_if_inconsistent(ledger, trust)
    attach_notary(ledger, trust)
    return ledger


def ledger_description(path: Path | None) -> str:
    """Which ledger backend a command would use, and where (no password)."""
    from coalition.bootstrap import describe_ledger, ledger_location
    from coalition.ledger.errors import LedgerError

    try:
        return describe_ledger(ledger_location(path, settings()))
    except LedgerError as exc:
        fail(str(exc))


def refuse_if_inconsistent(ledger: OpenLedger, trust: LedgerTrust) -> None:
    """Fail unless the ledger extends the newest checkpoint the CLI saw and the witness's newest; remember it."""
    from coalition.bus.clock import WallClock
    from coalition.ledger.integrity import guard_problem

    seen = trust.seen.load() if trust.seen is not None else None
    problem, newest = guard_problem(
        ledger, verifiers=trust.verifiers, witness=trust.witness, seen=seen, seen_name="the cli"
    )
    if problem is not None:
        fail(f"refusing the ledger at {ledger.path}: {problem}; see coalition ledger verify")
    if newest is not None and trust.seen is not None and (seen is None or newest.size > seen.size):
        trust.seen.remember(
            origin=trust.origin,
            verifier_key=newest.verifier_key,
            note=newest.note,
            size=newest.size,
            at=WallClock().now(),
            witness=trust.witness.describe(),
        )


RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,119}")  # no path separator, no space, no leading dot or dash


def redis_url_option(bus: str | None, cfg: Settings, needs: str) -> tuple[BusChoice, str]:
    """The Redis URL a worker process reaches its coordinator through (--bus, else REDIS_URL); `needs` is the
    one line said otherwise (an in-process bus, or a Redis this process would start privately)."""
    from coalition.bootstrap import BusChoice

    try:
        choice = BusChoice.parse(bus, cfg)
    except ValueError as exc:
        fail(str(exc))
    if choice.kind != "redis" or choice.url is None:
        fail(needs)
    return choice, choice.url


def check_run_id(run_id: str, *, option: str = "--run-id") -> str:
    """A run id names streams and files (report-RUN.html, audit-RUN/): a safe character set only, or exit 2."""
    if not RUN_ID.fullmatch(run_id):
        fail(
            f"{option} {run_id[:60]!r} is not a valid run id (letters, digits, '.', '_', ':', '-'; "
            "at most 120; starting with a letter or digit)"
        )
    return run_id


def _check_writable(path: Path) -> None:
    """A ledger that will be written to must be writable, with its directory (SQLite adds -wal and -shm files
    beside it): a read-only disk or directory is exit 3 before anything runs, not an error mid-run."""
    existing = next(p for p in (path, *path.parents) if p.exists())
    targets = (path, path.parent) if existing == path else (existing,)
    for target in targets:
        if not os.access(target, os.W_OK):
            fail(f"could not write: {target} is read-only (a ledger needs a writable directory)", EXIT_COULD_NOT_WRITE)


def run_or_latest(ledger: OpenLedger, run: str | None) -> str:
    """The given run id (which must exist in the ledger) or the most recent run."""
    runs = ledger.runs()
    if run is None:
        scenario_runs = [info for info in runs if info.run_id != "keys"]  # key rotations are not a run
        if not scenario_runs:
            fail(f"the ledger at {ledger.path} holds no run yet")
        return max(scenario_runs, key=lambda info: info.first_seq).run_id
    check_run_id(run, option="--run")
    if not any(info.run_id == run for info in runs):
        known = ", ".join(info.run_id for info in runs[-5:]) or "none"
        fail(f"no run {run!r} in {ledger.path} (recent runs: {known})")
    return run


def newest_checkpoint(ledger: OpenLedger, trust: LedgerTrust) -> SignedCheckpoint | None:
    """The newest checkpoint of this ledger signed by its key, from the witness or the ledger, that the ledger
    extends (the open guard has already refused a ledger that does not extend the witness's newest)."""
    from coalition.ledger.checkpoint import open_checkpoint
    from coalition.ledger.signed_note import NoteError
    from coalition.ledger.tree import StoredTree

    notes = [note for _, note in trust.witness.notes(trust.origin)] + ledger.stored_checkpoints()
    size = ledger.head()[0]
    tree = StoredTree(ledger, size)
    best: SignedCheckpoint | None = None
    for note in notes:
        try:
            cp = open_checkpoint(note, trust.verifiers)
        except NoteError:
            continue
        if cp.checkpoint.origin != trust.origin or cp.size > size or (best is not None and cp.size <= best.size):
            continue
        if tree.root(cp.size) == cp.root:
            best = cp
    return best
