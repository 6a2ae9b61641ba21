"""Governed words: what a model wrote leaves only if it says no more than the engine decided.

Every customer-facing text (a notice's message) and every rationale or message summary a model words is checked
against the engine's facts before it leaves the agent:
- the claims lint: no banned claim of the policy brief (case ignored);
- the commitments check: every amount, figure or date (a day or month named too), every account / customer / case
  identifier, every action or argument name (transfer_funds), every link, and every promise or money word (credit,
  refund, waive, transfer, guarantee, rebate, voucher, free, cancelled, …) must appear in the facts — "no
  hallucinated exceptions or promises", no figure or action the engine did not decide.
A text that fails is replaced by the engine's own wording and the flags are recorded with the rejected text's hash
(never the text). The check is pure and deterministic: the same text and facts always give the same flags.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

from coalition.agents.facts import Facts

NUMBER = re.compile(r"(?<![A-Za-z0-9])\d+(?:,\d{3})*(?:\.\d+)?")
# An identifier with a digit: TX-B0003, X-666, case-1011, inc-tx-1a2b3c4d, ACCT-42.
IDENTIFIER = re.compile(r"\b[A-Za-z][A-Za-z0-9]*(?:-[A-Za-z0-9]+)*-[A-Za-z]*\d[A-Za-z0-9]*(?:-[A-Za-z0-9]+)*\b")
# An action or argument name (transfer_funds, amount_usd): a text may name one only when the facts do.
SNAKE = re.compile(r"\b[a-z][a-z0-9]*(?:_[a-z0-9]+)+\b")
LINK = re.compile(r"(?:https?://|www\.)\S+|\b[\w.+-]+@[\w-]+\.[\w.]+\b", re.IGNORECASE)
# Words that commit the business or move money: a text may use one only when the facts do.
COMMITMENTS = (
    "credit",
    "refund",
    "waiv",
    "compensat",
    "reimburs",
    "guarant",
    "promis",
    "discount",
    "free of charge",
    "transfer",
    "wire ",
    "payout",
    "pay you",
    "account number",
    "acct",
    "skip",
    "rotat",
    "freez",
    "bypass",
    "override",
    "approved",
)
# The same promises in other words (money back, something free, a bill forgiven), and the days a text may promise,
# as whole words of the lower-cased text: "free" is not "freeze", "on us" is not "bonus" ("may" is left out: the verb).
PROMISE_WORDS = frozenset((
    "rebate", "rebates", "voucher", "vouchers", "coupon", "coupons", "cashback", "free", "forgive", "forgiven",
    "forgiveness", "cancel", "canceled", "cancelled", "canceling", "cancelling", "exempt", "exempted", "exemption",
    "bonus", "bonuses", "goodwill", "complimentary",
))  # fmt: skip
PROMISE_PAIRS = frozenset(
    tuple(pair.split())
    for pair in (
        "cash back", "gift card", "gift cards", "on us", "owe nothing", "no charge", "not charge", "not charged",
        "won't charge", "write off", "writes off", "written off",
    )
)  # fmt: skip
DATE_WORDS = frozenset((
    "january", "february", "march", "april", "june", "july", "august", "september", "october", "november",
    "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "tomorrow",
))  # fmt: skip
WORD = re.compile(r"[a-z']+")


def _number(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", "")).normalize()
    except InvalidOperation:
        return None


def _fact_text(facts: Facts, extra: Iterable[str]) -> str:
    parts = [facts.decision, *facts.reasons, *facts.rules, *facts.figures.keys(), *facts.figures.values(), *extra]
    return " ".join(parts)


def check_words(
    text: str,
    facts: Facts,
    *,
    banned: Sequence[str] = (),
    context: Iterable[str] = (),
    customer_facing: bool = False,
) -> list[str]:
    """The reasons `text` may not leave as words for `facts` (empty when it may). `context` is other wording the
    engine itself supplies (e.g. the audience a notice greets). A banned claim never reaches a customer; a
    rationale may name one only where the facts do (legal's review quotes the phrase it removes)."""
    flags: list[str] = []
    lowered = text.casefold()
    allowed = _fact_text(facts, context)
    allowed_lower = allowed.casefold()
    for phrase in banned:
        needle = phrase.casefold()
        if needle and needle in lowered and (customer_facing or needle not in allowed_lower):
            flags.append(f"banned claim: {phrase}")
    known_tokens = set(NUMBER.findall(allowed))
    known_numbers: set[Decimal] | None = None  # their values, read only for a figure not written as in the facts
    for token in NUMBER.findall(text):
        if token in known_tokens:
            continue
        if known_numbers is None:
            known_numbers = {n for n in (_number(t) for t in known_tokens) if n is not None}
        value = _number(token)
        if value is not None and value not in known_numbers:
            flags.append(f"figure not in the facts: {token}")
    for token in IDENTIFIER.findall(text):
        if token.casefold() not in allowed_lower:
            flags.append(f"identifier not in the facts: {token}")
    for token in SNAKE.findall(text):
        if token not in allowed_lower:
            flags.append(f"name not in the facts: {token}")
    for token in LINK.findall(text):
        if token.casefold() not in allowed_lower:
            flags.append(f"link not in the facts: {token}")
    for stem in COMMITMENTS:
        if stem in lowered and stem not in allowed_lower:
            flags.append(f"commitment not in the facts: {stem.strip()}")
    flags += _promises_and_dates(lowered, allowed_lower)
    return list(dict.fromkeys(flags))


def _promises_and_dates(lowered: str, allowed_lower: str) -> list[str]:
    """Flags for PROMISE_WORDS, PROMISE_PAIRS and DATE_WORDS in the lower-cased text that the facts do not hold."""
    flags = []
    tokens = WORD.findall(lowered)
    for index, token in enumerate(tokens):
        pair = (token, tokens[index + 1]) if index + 1 < len(tokens) else None
        if pair in PROMISE_PAIRS and " ".join(pair) not in allowed_lower:
            flags.append(f"commitment not in the facts: {' '.join(pair)}")
        elif token in PROMISE_WORDS and token not in allowed_lower:
            flags.append(f"commitment not in the facts: {token}")
        elif token in DATE_WORDS and token not in allowed_lower:
            flags.append(f"date not in the facts: {token}")
    return flags
