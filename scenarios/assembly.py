"""The one place a run is wired: `assemble_run` builds its parts (signed bus, keyring, policy, pack, world, agents,
governance, executor, recorder, decision history, who answers escalations) and hands them to a Runner.

Backends are chosen by the caller: `coalition.bootstrap.build_run` for the commands and the console (a bus from
--bus, the ledger from --ledger), or in-memory scratch ones for re-executions (replay, what-if, consistency, the
scripted board's check, sweep jobs). A test that nothing else constructs a Runner keeps it the only place
(tests/unit/test_run_wiring.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from coalition.agents.model_choice import choose_models
from coalition.bus import topics
from coalition.bus.base import Bus
from coalition.bus.clock import IdFactory, SimulatedClock
from coalition.bus.keys import KeyDirectory, Keyring, producer_identities
from coalition.bus.messages import RunStarted
from coalition.bus.signing import SignedBus, Verifier
from coalition.domain import Pack, catalog
from coalition.governance.policy import Policy
from coalition.governance.service import GovernanceService
from coalition.ledger.base import Ledger
from coalition.ledger.recorder import Recorder
from coalition.scenarios.board import Board
from coalition.scenarios.decision_points import DecisionHistory
from coalition.scenarios.errors import RunnerError
from coalition.scenarios.executor import Executor
from coalition.scenarios.runner import (
    EXECUTOR_GROUP,
    AgentStep,
    EscalationAnswers,
    RemoteRun,
    Runner,
    RunnerOptions,
    RunParts,
    ScriptedAnswers,
)
from coalition.scenarios.spec import Scenario, policy_misfit, scenario_hash

# The agents' steps of a run over its signed bus, when they are not the pack's graphs (a verifying replay publishes
# what the agents recorded instead).
AgentSteps = Callable[[Bus], Sequence[AgentStep]]


def already_recorded(ledger: Ledger, run_id: str) -> tuple[set[str], dict[str, str]]:
    """What an earlier attempt of a run recorded: every envelope id, and each applied idempotency key's execution."""
    ids: set[str] = set()
    executions: dict[str, str] = {}
    for entry in ledger.iter_entries(run_id=run_id):
        if entry.message_id is None:
            continue
        ids.add(entry.message_id)
        if entry.kind == "execution" and entry.outcome == "applied":
            key = entry.payload.get("idempotency_key")
            if isinstance(key, str) and key:
                executions.setdefault(key, entry.message_id)
    return ids, executions


def run_agent_names(scenario: Scenario, pack: Pack) -> list[str]:
    """Every agent of a run (the pack's, and the scenario's own graphs), in canonical order."""
    return sorted({*pack.agent_names, *(name for name, a in scenario.agents.items() if a.graph is not None)})


def signed_bus(bus: Bus, keyring: Keyring | None, *, run_id: str) -> Bus:
    """`bus` as the run's producers and consumers use it: every producer signs what it publishes (with `keyring`,
    else ephemeral keys for this process) and every consumer verifies what it reads, so a forged, altered, unsigned
    or other-run envelope reaches consumers as a rejected delivery (dead-lettered)."""
    keys = keyring or Keyring.ephemeral(producer_identities(catalog().agent_names))
    return SignedBus(bus, keys, Verifier(keys.directory(), run_id=run_id))


def worker_bus(bus: Bus, keyring: Keyring, directory: KeyDirectory, *, run_id: str) -> Bus:
    """A run's bus as an agent worker uses it: signing as the agents it serves (`keyring`), verifying every producer
    of the run (`directory`, the public keys the coordinator trusts too)."""
    return SignedBus(bus, keyring, Verifier(directory, run_id=run_id))


def assemble_run(
    scenario: Scenario,
    *,
    bus: Bus,
    ledger: Ledger,
    run_id: str,
    seed: int | None = None,
    policy: Policy | None = None,
    options: RunnerOptions | None = None,
    answers: EscalationAnswers | None = None,
    started: RunStarted | None = None,
    agent_steps: AgentSteps | None = None,
    sign_traffic: bool = True,
    unguarded_keys: frozenset[str] = frozenset(),
) -> Runner:
    """A run of `scenario` over `bus` and `ledger`, ready to `run()`.

    `seed` and `policy` default to the scenario's; `answers` to the scenario's scripted board (or `options.board`);
    `started` (a replay) is recorded verbatim as the run's run.started; `agent_steps` replaces the pack's agents;
    `sign_traffic=False` leaves the traffic unsigned (a full replay, whose producers are all this process's own code,
    and replay --verify, whose only outside producers are the recorded agent outputs, checked by the producer rules
    instead); `unguarded_keys` are applied without the executor's
    savepoint (replay --verify: the keys the verified run recorded as applied; see Executor).
    A policy that does not fit the scenario, or a pack without a world, is a RunnerError before anything runs."""
    seed = scenario.seed if seed is None else seed
    policy = policy or scenario.load_policy()
    misfit = policy_misfit(scenario, policy)
    if misfit is not None:
        raise RunnerError(misfit)
    pack = scenario.of_pack()  # only its agents, world, actions and brief take part in the run
    if pack.world is None:
        raise RunnerError(f"pack {pack.name} declares no world to run")
    options = options or RunnerOptions()
    signed = signed_bus(bus, options.keyring, run_id=run_id) if sign_traffic else bus
    # Ids depend on what is simulated (scenario content + seed), never on the run id or the bus, so the same
    # scenario and seed give the same ledger content on any bus, and a resumed run re-mints the same ids.
    ids = IdFactory(f"{scenario_hash(scenario)}:{seed}")
    clock = SimulatedClock(scenario.date_of(0))
    # The world starts within the governing policy's limits (a --policy override included): one band.
    world = pack.world.build(scenario.world, seed, policy.limits)
    governance = GovernanceService(
        signed,
        ledger,
        policy,
        ids=ids,
        clock=clock,
        run_id=run_id,
        shadow_policy=options.shadow_policy,
        seed=seed,
    )
    answers = answers or ScriptedAnswers(options.board or Board(scenario.board))
    if answers.original_run is not None:  # a re-execution takes the decisions signed for the run it re-executes
        governance.accept_decisions_of(answers.original_run)
    model_choices = options.models or choose_models(scenario={name: a.model for name, a in scenario.agents.items()})
    workers = options.agent_workers
    if agent_steps is None and workers is not None:  # one step: the agent workers run every agent
        remote = RemoteRun(
            scenario, policy, seed, run_id, bus, signed, model_choices, options, run_agent_names(scenario, pack)
        )
        agent_steps = lambda _: [workers(remote)]  # noqa: E731
    if agent_steps is not None:
        runtimes = agent_steps(signed)
    else:
        from coalition.scenarios.agent_setup import agent_runtimes  # the agents and LangChain: only runs that run them

        runtimes = agent_runtimes(
            scenario,
            pack,
            policy,
            bus=signed,
            run_id=run_id,
            seed=seed,
            ids=ids,
            options=options,
            model_choices=model_choices,
            governance=governance,
        )
    # A resumed run re-executes from the start: what its ledger already holds is neither recorded again (whatever
    # the dedupe table says) nor applied twice, and its decisions are taken where they were taken before.
    recorded_ids, recorded_executions = already_recorded(ledger, run_id)
    recorder = Recorder(
        signed,
        ledger,
        dedupe_consumer=f"recorder:{run_id}",
        already_recorded=frozenset(recorded_ids),
        run_id=run_id,
    )
    history = options.history if options.history is not None else DecisionHistory.read(ledger, run_id)
    signed.ensure_group(topics.PROPOSALS, EXECUTOR_GROUP)
    signed.ensure_group(topics.AUTHORIZATIONS, EXECUTOR_GROUP)
    parts = RunParts(
        scenario=scenario,
        run_id=run_id,
        seed=seed,
        policy=policy,
        pack=pack,
        options=options,
        ledger=ledger,
        raw_bus=bus,
        bus=signed,
        ids=ids,
        clock=clock,
        world=world,
        executor=Executor(world, {action.name: action for action in pack.actions}, unguarded=unguarded_keys),
        governance=governance,
        model_choices=model_choices,
        runtimes=runtimes,
        recorder=recorder,
        history=history,
        answers=answers,
        recorded_executions=recorded_executions,
        started=started,
    )
    return Runner(parts)
