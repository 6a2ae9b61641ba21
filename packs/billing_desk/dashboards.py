"""The billing desk's own dashboard figures (declared as Panels in reporting.py): how each channel's cases were
handled (trust: the same case must get the same answer whatever the channel) and the cases waiting for a person
(ops) — each from the run's entries, with the entries it is computed from."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal

from coalition.scenarios.dashboard_figures import Figure, RunEntries, decimal, pct, pct_text, usd

_MONEY_ACTIONS = {
    "credit_account": "amount_usd",
    "waive_fee": "amount_usd",
    "cancel_without_penalty": "penalty_waived_usd",
}


def channels(run: RunEntries) -> list[tuple[str, dict[str, Figure]]]:
    """Per channel: cases received, answered, escalated to a person, and money given back (credits, waived fees and
    waived early-exit fees)."""
    channel_of: dict[str, str] = {}
    cases: dict[str, list[int]] = defaultdict(list)
    for o in run.observed("case"):
        data = o.payload.get("data") or {}
        channel_of[str(data.get("case_id", ""))] = str(data.get("channel", ""))
        cases[str(data.get("channel", ""))].append(o.seq)
    answered: dict[str, list[int]] = defaultdict(list)
    escalated: dict[str, list[int]] = defaultdict(list)
    given: dict[str, list[int]] = defaultdict(list)
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    for x in run.applied():
        action, args = run.action(x.subject), run.args(x.subject)
        case = str(args.get("case_id", ""))
        if case not in channel_of:
            continue
        channel = channel_of[case]
        if action == "notify_customer":
            answered[channel].append(x.seq)
        elif action == "escalate_case":
            escalated[channel].append(x.seq)
        elif action in _MONEY_ACTIONS:
            given[channel].append(x.seq)
            amounts[channel] += decimal(args.get(_MONEY_ACTIONS[action]))
    out = []
    for channel in sorted(set(cases) - {""}):
        received = len(cases[channel])
        share = pct(len(answered[channel]), received)
        out.append(
            (
                channel,
                {
                    "cases": Figure(
                        "cases",
                        "Cases received",
                        str(received),
                        "Cases customers opened through the channel (case observations).",
                        tuple(cases[channel]),
                        float(received),
                        "ok",
                    ),
                    "answered": Figure(
                        "answered",
                        "Cases answered",
                        f"{pct_text(share)} ({len(answered[channel])} of {received})",
                        "Cases of the channel the desk answered with a notice the executor sent ÷ cases received.",
                        tuple(answered[channel]),
                        share,
                        "ok" if share == 100.0 else "warn",
                    ),
                    "escalated": Figure(
                        "escalated",
                        "Escalated to a person",
                        str(len(escalated[channel])),
                        "Cases of the channel handed to a person (escalate_case executions).",
                        tuple(escalated[channel]),
                        float(len(escalated[channel])),
                        "warn" if escalated[channel] else "ok",
                    ),
                    "given_back": Figure(
                        "given_back",
                        "Money given back",
                        f"{usd(amounts[channel]):,.2f} USD",
                        "Credits, waived fees and waived early-exit fees on the channel's cases (executions).",
                        tuple(given[channel]),
                        usd(amounts[channel]),
                        "ok",
                    ),
                },
            )
        )
    return out


def ops_figures(run: RunEntries) -> list[Figure]:
    """The cases the desk handed to a person, by the trigger that sent them."""
    escalations = [x for x in run.applied() if run.action(x.subject) == "escalate_case"]
    triggers = Counter(str(run.args(x.subject).get("trigger", "")) for x in escalations)
    listed = ", ".join(f"{trigger} ({n})" for trigger, n in sorted(triggers.items()))
    return [
        Figure(
            "cases_with_a_person",
            "Cases with a person",
            f"{len(escalations)}: {listed}" if escalations else "0",
            "Cases the desk handed to a person (escalate_case executions), by the policy's escalation trigger.",
            tuple(x.seq for x in escalations),
            float(len(escalations)),
            "warn" if escalations else "ok",
        )
    ]
