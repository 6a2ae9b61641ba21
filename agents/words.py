"""Governed words: what a model wrote leaves only if it says no more than the engine decided.

Every customer-facing text (a notice's message) and every rationale or message summary a model words is checked
against the engine's facts before it leaves the agent:
- the claims lint: no banned claim of the policy brief (case ignored);
- the commitments check: every amount, figure or date (a figure in words, a day or month named too), every account /
  customer / case identifier, every action or argument name (transfer_funds), every link, and every promise or money
  word (credit, refund, waive, transfer, guarantee, rebate, voucher, free, cancelled, …) must appear in the facts — "no
  hallucinated exceptions or promises", no figure or action the engine did not decide.
The text is read as it reads: hidden characters dropped, full-width forms folded, a word split by punctuation joined,
and a word mixing Latin letters with look-alikes of another script flagged.
A text that fails is replaced by the engine's own wording and the flags are recorded with the rejected text's hash
(never the text). The check is pure and deterministic: the same text and facts always give the same flags.
"""

from __future__ import annotations

import re
import unicodedata
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
    "bonus", "bonuses", "goodwill", "complimentary", "gratis", "payback", "repay", "repays", "repaid", "repayment",
))  # fmt: skip
PROMISE_PAIRS = frozenset(
    tuple(pair.split())
    for pair in (
        "cash back", "gift card", "gift cards", "on us", "owe nothing", "no charge", "not charge", "not charged",
        "won't charge", "write off", "writes off", "written off", "money back", "no fee", "no fees", "no cost",
        "pay back", "paid back", "pay nothing", "give back", "gives back", "giving back",
    )
)  # fmt: skip
DATE_WORDS = frozenset((
    "january", "february", "march", "april", "june", "july", "august", "september", "october", "november",
    "december", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "tomorrow",
    "today", "tonight",
))  # fmt: skip
# A figure written in words is a figure ("one" is left out: the pronoun).
NUMBER_WORDS = frozenset((
    "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve", "thirteen",
    "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty", "thirty", "forty", "fifty",
    "sixty", "seventy", "eighty", "ninety", "hundred", "hundreds", "thousand", "thousands", "million", "millions",
    "billion", "dozen", "zero", "half", "halve", "halved",
))  # fmt: skip
WORD = re.compile(r"[a-z']+")
# Punctuation between two letters, which a word split to slip past the check ("re-fund", "f.r.e.e") is joined over.
SPLIT = re.compile(r"(?<=[a-z])[-.'*·•/\r\n]+(?=[a-z])")  # '_' is read as a name (SNAKE)
# Letters spaced out ("r e f u n d"): three or more single letters in a row, read as one word.
SPACED = re.compile(r"(?<![a-z])[a-z](?:[ \t]+[a-z](?![a-z])){2,}")
# A word mixing Latin letters with letters of another script: a look-alike (Cyrillic "е" in "rеfund").
LETTERS = re.compile(r"[^\W\d_]+")


def _plain(text: str) -> str:
    """`text` as it reads: compatibility forms folded (full-width letters and digits) and invisible format characters
    (zero-width space and joiners, soft hyphen, direction marks) removed, so a word cannot hide behind them."""
    if text.isascii():
        return text  # nothing to fold or remove (the usual case)
    folded = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf")


def _joined(lowered: str) -> str:
    """The lower-cased text with the words split by punctuation, a line break or spaces joined (SPLIT, SPACED)."""
    return SPACED.sub(lambda spaced: spaced.group().replace(" ", "").replace("\t", ""), SPLIT.sub("", lowered))


def _look_alikes(text: str) -> list[str]:
    """Flags for words mixing Latin letters with letters of another script."""
    flags = []
    for word in LETTERS.findall(text):
        if word.isascii():
            continue
        latin = [unicodedata.name(ch, "").startswith("LATIN") for ch in word]
        if any(latin) and not all(latin):
            flags.append(f"look-alike letters in: {word}")
    return flags


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
    text = _plain(text)
    lowered = text.casefold()
    allowed = _plain(_fact_text(facts, context))
    allowed_lower = allowed.casefold()
    joined = _joined(lowered)
    allowed_joined = _joined(allowed_lower) if joined != lowered else allowed_lower
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
        if (stem in lowered and stem not in allowed_lower) or (stem in joined and stem not in allowed_joined):
            flags.append(f"commitment not in the facts: {stem.strip()}")
    flags += _promises_and_dates(lowered, allowed_lower)
    if joined != lowered:
        flags += _promises_and_dates(joined, allowed_joined)
    if not text.isascii():
        flags += _look_alikes(text)
    return list(dict.fromkeys(flags))


def _promises_and_dates(lowered: str, allowed_lower: str) -> list[str]:
    """Flags for PROMISE_WORDS, PROMISE_PAIRS, DATE_WORDS and NUMBER_WORDS in the lower-cased text that the facts
    do not hold."""
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
        elif token in NUMBER_WORDS and token not in allowed_lower:
            flags.append(f"figure not in the facts: {token}")
    return flags
