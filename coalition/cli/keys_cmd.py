"""`coalition keys …`: the Ed25519 identities that sign the loop's traffic (one per producer) under
<data_dir>/keys/, and the approvers' public keys. A rotation is recorded in the ledger.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import orjson
import typer
from rich.console import Console
from rich.table import Table

from coalition.bootstrap import approver_keys, key_store
from coalition.bus.errors import KeyStoreError
from coalition.bus.keys import LEDGER_IDENTITY, fingerprint, parse_public, producer_identities
from coalition.cli.common import JsonFlag, LedgerPath, OneLineGroup, fail, open_ledger, settings
from coalition.domain import catalog
from coalition.ledger.entry import EntryDraft

KEYS_RUN = "keys"  # the ledger's stream of key administration (rotations), beside the runs

keys_app = typer.Typer(
    help="Manage the signing keys of the loop's producers: create the missing ones, list them, rotate one.",
    no_args_is_help=True,
    cls=OneLineGroup,
)


@keys_app.command("init")
def init() -> None:
    """Create every producer's key that is missing (files 0600; existing keys are kept).

    Example: coalition keys init
    """
    store = key_store(settings().data_dir)
    producers = producer_identities(catalog().agent_names)
    try:
        created = store.init(producers)
    except (KeyStoreError, OSError) as exc:
        fail(str(exc))
    for identity in created:
        typer.echo(f"created {identity}")
    typer.echo(f"{len(created)} created, {len(producers) - len(created)} kept in {store.directory}")


@keys_app.command("list")
def list_keys(as_json: JsonFlag = False) -> None:
    """List the producers' keys (identity, fingerprint, file mode) and the approvers' public keys.

    Example: coalition keys list --json
    """
    data_dir = settings().data_dir
    try:
        producers = key_store(data_dir).list()
        approvers = approver_keys(data_dir)
        humans = {name: approvers.public(name) for name in approvers.names()}
    except (KeyStoreError, OSError) as exc:
        fail(str(exc))
    rows = [
        {
            "identity": k.identity,
            "kind": "producer",
            "fingerprint": k.fingerprint,
            "mode": f"{k.mode:o}",
            "public": k.public,
        }
        for k in producers
    ]
    rows += [
        {
            "identity": f"human:{name}",
            "kind": "approver",
            "fingerprint": fingerprint(parse_public(public)),
            "mode": "sealed",
            "public": public,
        }
        for name, public in humans.items()
        if public is not None
    ]
    if as_json:
        typer.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    if not rows:
        typer.echo(f"no key under {data_dir / 'keys'} (create them: coalition keys init)")
        return
    table = Table("identity", "kind", "fingerprint", "mode", "public key")
    for row in rows:
        table.add_row(row["identity"], row["kind"], row["fingerprint"], row["mode"], row["public"])
    Console().print(table)


@keys_app.command("rotate")
def rotate(
    identity: Annotated[str, typer.Argument(help="The producer whose key is replaced, e.g. governance or agent:ops.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (recorded in the ledger).")] = "scheduled rotation",
    ledger: LedgerPath = None,
) -> None:
    """Replace one producer's key with a new one and record the rotation in the ledger (run `keys`).

    Runs sign with the keys they load at start, so rotate between runs. Example: coalition keys rotate governance
    """
    if identity == LEDGER_IDENTITY:
        fail("the ledger key signs the checkpoints witnesses hold: rotating it would orphan them (not supported)")
    producers = producer_identities(catalog().agent_names)
    if identity not in producers:
        fail(f"unknown producer {identity!r} (producers: {', '.join(producers)})")
    if not reason.strip():
        fail("--reason must say why")
    data_dir = settings().data_dir
    led = open_ledger(ledger, create=True)
    store = key_store(data_dir)
    try:
        old, new = store.rotate(identity)
    except (KeyStoreError, OSError) as exc:
        fail(str(exc))
    now = datetime.now(UTC)  # key administration is not simulated: it happens now
    public = store.list()
    public_text = next((k.public for k in public if k.identity == identity), "")
    led.append(
        [
            EntryDraft(
                run_id=KEYS_RUN,
                sim_time=now,
                actor="operator",
                actor_kind="system",
                kind="system",
                subject=identity,
                outcome="rotated",
                payload={"identity": identity, "old_fingerprint": old, "new_fingerprint": new, "public": public_text},
                rationale=f"key of {identity} rotated ({old} → {new}): {reason.strip()}",
            )
        ]
    )
    typer.echo(f"rotated {identity}: {old} → {new} (recorded in the ledger, run {KEYS_RUN})")
