"""An action, declared once by its pack: everything the core needs to propose, govern, execute and document it.

A pack lists its actions as `Action` values. The core never names an action: governance checks arguments with
`Action.args`, charges budgets from `Action.charges`, folds what it learns with `Action.learns` and holds
dependents by `Action.dependency_keys`; the executor validates with `Action.args` again and applies
`Action.handler`; the docs table is generated from `Action.doc` and the model's fields.

Example (a pack with one action)::

    class WaiveFee(ActionArgs):
        account_id: Text
        amount_usd: Money = Field(gt=0)

    def waive_fee(world: Desk, a: WaiveFee, ctx: ActionContext) -> Changes:
        account = world.account(a.account_id)          # raise ActionRefused(...) before changing anything
        account.balance_usd -= a.amount_usd
        return {"fee_waived": {"account_id": a.account_id, "amount_usd": float(a.amount_usd)}}

    WAIVE_FEE = Action("waive_fee", WaiveFee, waive_fee, proposers=("billing",), charges="amount_usd",
                       dependency_keys=("account_id",), doc="Waive a fee on an account.")
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from coalition.domain.arguments import ActionArgs, finite_decimal, parse_args

Changes = dict[str, Any]
"""What a handler changed, as plain JSON: recorded on the action.executed message and in the ledger."""


@dataclass(frozen=True, slots=True)
class ActionContext:
    """Who asked, and when: what a handler may need besides its arguments."""

    agent: str
    proposal_id: str
    day: int


Handler = Callable[[Any, Any, ActionContext], Changes]
"""(the pack's world, the validated argument model, the context) → changes. Check everything first and raise
`ActionRefused` before changing the world; a refusal must leave the world untouched."""

Learn = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]
"""(what governance has learned so far — GovernanceState.learned, the pack's named values —, the executed
arguments as JSON) → the learned values to replace: what governance must know after the action applied (a new
price, a region's status), which the pack's rules and state fields read. Called only for applied executions."""


@dataclass(frozen=True, slots=True)
class Action:
    """One action of a pack.

    - `name`: the action's name on the bus, in policies and in the ledger (snake_case, unique across packs);
    - `args`: the ONE argument model (a subclass of ActionArgs);
    - `handler`: the effect on the pack's world (see Handler);
    - `proposers`: the agents that may propose it in the pack's default policy;
    - `charges`: the argument whose amount is charged to the proposer's money budget (None: not charged);
    - `learns`: what governance learns when it executes (see Learn; None: nothing);
    - `credit`: (the argument naming the account it credits, the argument with the amount): governance totals
      the credit authorized per account (`state.credits`, released when the execution fails), which per-account
      limits read (None: it credits nobody);
    - `dependency_keys`: arguments whose value ties proposals together (the same incident, the same account):
      while an escalation on one is open, later proposals sharing the value wait for the human decision;
    - `safe_while_pending`: the action never waits for such an escalation (it protects whatever is decided);
    - `doc`: one line for the generated actions table.
    """

    name: str
    args: type[ActionArgs]
    handler: Handler
    proposers: tuple[str, ...] = ()
    charges: str | None = None
    learns: Learn | None = None
    credit: tuple[str, str] | None = None
    dependency_keys: tuple[str, ...] = ()
    safe_while_pending: bool = False
    doc: str = ""

    def __post_init__(self) -> None:
        if self.charges is not None and self.charges not in self.argument_names():
            raise ValueError(f"action {self.name}: charges {self.charges!r} is not one of its arguments")
        for key in self.credit or ():
            if key not in self.argument_names():
                raise ValueError(f"action {self.name}: credit {key!r} is not one of its arguments")
        for key in self.dependency_keys:
            if key not in self.argument_names():
                raise ValueError(f"action {self.name}: dependency key {key!r} is not one of its arguments")

    def argument_names(self) -> tuple[str, ...]:
        """The arguments as written in JSON (aliases where the model has them), in declaration order."""
        return tuple(field.alias or name for name, field in self.args.model_fields.items())

    def parse(self, args: Mapping[str, Any]) -> ActionArgs:
        """The arguments as this action's model; ArgumentProblem (one line) when they do not fit."""
        return parse_args(self.name, self.args, args)

    def charged(self, args: Mapping[str, Any]) -> Decimal | None:
        """The amount charged to the proposer's budget (None when the action is not charged or it is unreadable)."""
        if self.charges is None or self.charges not in args:
            return None
        try:
            return finite_decimal(args[self.charges])
        except ValueError:
            return None
