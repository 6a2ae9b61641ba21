"""The executor: the only code that applies agents' actions to the world, and only for governance's authorizations.

Each action is declared once by its pack (coalition.domain.Action): its argument model is validated again here
before anything changes, then its handler runs. A handler checks everything it needs first and only then changes
the world, so a refusal leaves it untouched. A handler that raises anything else (a bug in a pack) fails that one
action: the world is put back as it was before the handler ran, the execution is recorded as failed with the
error's one-line text, and the run goes on.
An idempotency key that was already applied is a duplicate: reported, never applied twice.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Collection, Mapping
from typing import Any, Literal

import structlog
from pydantic import BaseModel

from coalition.bus.envelope import Envelope
from coalition.bus.messages import ActionAuthorized, ActionExecuted, ActionProposed
from coalition.domain import (
    Action,
    ActionArgs,
    ActionContext,
    ActionRefused,
    ArgumentProblem,
    Changes,
    WorldPort,
    catalog,
)
from coalition.scenarios.errors import ExecutionRefused

GOVERNANCE_SOURCE = "governance"
ERROR_TEXT_LIMIT = 300  # characters of a raising handler's message kept in the record

log = structlog.get_logger("coalition.executor")


def one_line(exc: BaseException) -> str:
    """`Type: first line of the message`, at most ERROR_TEXT_LIMIT characters (what the ledger records)."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def savepoint(world: WorldPort) -> Callable[[], None]:
    """What puts the world's state back as it is now. A pydantic state (every shipped pack's) is dumped, which is
    cheaper than a deep copy, and restored in place (the state object stays the one the world and runner hold);
    any other state is deep-copied and its attributes restored."""
    state = world.state
    if isinstance(state, BaseModel):
        saved = state.model_dump(round_trip=True)

        def restore_model() -> None:
            restored = type(state).model_validate(saved)
            for name in type(state).model_fields:
                object.__setattr__(state, name, getattr(restored, name))

        return restore_model
    attributes = copy.deepcopy(vars(state))

    def restore_attributes() -> None:
        vars(state).clear()
        vars(state).update(copy.deepcopy(attributes))

    return restore_attributes


def _nothing_to_restore() -> None:
    """The restore of an unguarded execution (Executor's `unguarded`): the world is left as the handler left it."""


def validate_args(action: str, args: Mapping[str, Any], actions: Mapping[str, Action] | None = None) -> ActionArgs:
    """The action's arguments as its model; ExecutionRefused with a one-line reason when they do not fit."""
    declared = (actions if actions is not None else catalog().actions).get(action)
    if declared is None:
        raise ExecutionRefused(f"unknown action {action!r}")
    try:
        return declared.parse(args)
    except ArgumentProblem as problem:
        raise ExecutionRefused(f"invalid args: {problem}") from None


def _proposal_mismatch(auth: ActionAuthorized, proposal: ActionProposed | None) -> str | None:
    """Why an authorization does not authorize what its proposal asked for (None: it does)."""
    if proposal is None:
        return f"authorization names proposal {auth.proposal_id}, which no agent proposed in this run"
    if proposal.proposal_hash != auth.proposal_hash:
        return f"authorization is for proposal hash {auth.proposal_hash[:12]}, not {proposal.proposal_hash[:12]}"
    if (proposal.agent, proposal.action, proposal.args) != (auth.agent, auth.action, auth.args):
        return f"authorization's agent, action or arguments differ from proposal {auth.proposal_id}"
    return None


class Executor:
    """Applies `action.authorized` envelopes from governance to the world, once per idempotency key."""

    def __init__(
        self,
        world: WorldPort,
        actions: Mapping[str, Action] | None = None,
        *,
        unguarded: Collection[str] = frozenset(),
    ) -> None:
        """`unguarded`: idempotency keys applied without a savepoint. Only a verifying replay gives any: the keys its
        run recorded as applied. A handler that raises on one of them fails an execution the run recorded as
        applied, which is the first divergence right there, so the world after it is never compared and need not
        be put back (a savepoint is a copy of the whole world state, most of a verifying replay's execution time)."""
        self._world = world
        self._actions = dict(actions if actions is not None else catalog().actions)
        self._unguarded = frozenset(unguarded)

    @property
    def world(self) -> WorldPort:
        return self._world

    def apply(self, envelope: Envelope, *, proposals: Mapping[str, ActionProposed] | None = None) -> ActionExecuted:
        """Apply one authorization. With `proposals` (what the agents asked for, by proposal id), it must name a
        proposal seen there, by that proposal's exact hash, for the same agent, action and arguments."""
        payload = envelope.payload
        if not isinstance(payload, ActionAuthorized):
            return ActionExecuted(
                authorization_id="",
                proposal_id="",
                agent="",
                action="",
                idempotency_key="",
                status="failed",
                detail=f"refused: envelope {envelope.id} is {envelope.type!r}, not an action.authorized",
            )

        def result(status: Literal["applied", "duplicate", "failed"], detail: str, changes: Changes) -> ActionExecuted:
            return ActionExecuted(
                authorization_id=payload.authorization_id,
                proposal_id=payload.proposal_id,
                agent=payload.agent,
                action=payload.action,
                idempotency_key=payload.idempotency_key,
                status=status,
                changes=changes,
                detail=detail,
            )

        if envelope.source != GOVERNANCE_SOURCE:
            return result("failed", f"refused: authorization came from {envelope.source!r}, not governance", {})
        if proposals is not None:
            mismatch = _proposal_mismatch(payload, proposals.get(payload.proposal_id))
            if mismatch is not None:
                return result("failed", f"refused: {mismatch}; nothing changed", {})
        state = self._world.state
        if payload.idempotency_key in state.applied_keys:
            first = state.applied_keys[payload.idempotency_key]
            return result("duplicate", f"already applied (idempotency key of proposal {first}); nothing changed", {})
        try:
            args = validate_args(payload.action, payload.args, self._actions)
        except ActionRefused as exc:
            return result("failed", f"refused: {exc.detail}; nothing changed", {})
        ctx = ActionContext(agent=payload.agent, proposal_id=payload.proposal_id, day=state.day)
        restore = _nothing_to_restore if payload.idempotency_key in self._unguarded else savepoint(self._world)
        try:
            changes = self._actions[payload.action].handler(self._world, args, ctx)
        except ActionRefused as exc:
            restore()  # a refusal must change nothing; a handler that refused late is put right too
            return result("failed", f"refused: {exc.detail}; nothing changed", {})
        except Exception as exc:  # a bug in a pack's handler fails this action, never the run
            restore()
            error = one_line(exc)
            log.error("executor.handler_raised", action=payload.action, proposal_id=payload.proposal_id, error=error)
            return result("failed", f"failed: the {payload.action} handler raised {error}; nothing changed", {})
        state.applied_keys[payload.idempotency_key] = payload.proposal_id
        return result("applied", f"{payload.action} applied on day {state.day}", changes)
