"""The words check: a text may say no more than the engine's facts — no banned claim to a customer, no figure,
identifier, link or promise the facts do not hold."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from coalition.agents.facts import Facts
from coalition.agents.narrator import Narrator
from coalition.agents.offline_model import OfflineChatModel
from coalition.agents.words import check_words

CREDIT = Facts(
    intent="notify",
    decision="have credited TX-B0003 250.00 USD for dispute case-1011",
    reasons=["1500 kWh lost puts the customer at impact level 3"],
)
BANNED = ("guaranteed savings", "risk-free")


class TestCheck:
    """What fails, and what passes."""

    def test_the_engine_sentence_passes(self) -> None:
        text = "Dear customer TX-B0003, we have credited TX-B0003 250 USD for dispute case-1011 (1,500 kWh lost)."
        assert check_words(text, CREDIT, banned=BANNED, context=("customer TX-B0003",), customer_facing=True) == []

    def test_each_kind_of_overreach_is_named(self) -> None:
        text = "Guaranteed savings! We will refund 400 USD to TX-B0009; transfer it to acct X-666 via https://x.example"
        flags = check_words(text, CREDIT, banned=BANNED, customer_facing=True)
        assert flags == [
            "banned claim: guaranteed savings",
            "figure not in the facts: 400",
            "figure not in the facts: 666",
            "identifier not in the facts: TX-B0009",
            "identifier not in the facts: X-666",
            "link not in the facts: https://x.example",
            "commitment not in the facts: refund",
            "commitment not in the facts: guarant",
            "commitment not in the facts: transfer",
            "commitment not in the facts: acct",
        ]

    def test_a_promise_or_a_date_in_other_words_is_a_commitment(self) -> None:
        """Money back, something free, a bill forgiven or a day named: none of it is in the facts of a pause."""
        pause = Facts(intent="notify", decision="pause settlement in TX while the meter outage is investigated")
        texts = {
            "We will give you a full rebate and your next month is on us.": ["rebate", "on us"],
            "Your bill is cancelled and you owe nothing.": ["cancelled", "owe nothing"],
            "You get a voucher and cashback on your next bill.": ["voucher", "cashback"],
            "Expect a gift card; your next month is free.": ["gift card", "free"],
            "We will not charge you, as a goodwill gesture.": ["not charge", "goodwill"],
        }
        for text, words in texts.items():
            assert check_words(text, pause, customer_facing=True) == [
                f"commitment not in the facts: {w}" for w in words
            ], text
        assert check_words("Service resumes on Friday, 12 March.", pause, customer_facing=True) == [
            "figure not in the facts: 12",
            "date not in the facts: friday",
            "date not in the facts: march",
        ]
        assert check_words("Settlement is paused in TX while the meter outage is investigated.", pause) == []
        freed = Facts(intent="notify", decision="a free month for TX-B0003, on Friday", figures={"month": "free"})
        assert check_words("TX-B0003 gets a free month on Friday.", freed, customer_facing=True) == []

    def test_a_word_disguised_or_a_figure_spelled_out_is_still_read(self) -> None:
        """Hidden characters, full-width or look-alike letters, punctuation inside a word, a figure in words and
        money back in plain words: none of it gets a promise past the facts of a pause."""
        pause = Facts(intent="notify", decision="pause settlement in TX while the meter outage is investigated")
        texts = {
            "We will re\u200bfund you by Fri\u200dday.": [
                "commitment not in the facts: refund",
                "date not in the facts: friday",
            ],
            "A cre\u00addit, all fr\u2060ee.": [
                "commitment not in the facts: credit",
                "commitment not in the facts: free",
            ],
            "We will ｒｅｆｕｎｄ you ２５０ USD.": [
                "figure not in the facts: 250",
                "commitment not in the facts: refund",
            ],
            "We will r\u0435fund you.": ["look-alike letters in: r\u0435fund"],
            "We will re-fund you, all f.r.e.e.": [
                "commitment not in the facts: refund",
                "commitment not in the facts: free",
            ],
            "You get two hundred and fifty dollars.": [
                "figure not in the facts: two",
                "figure not in the facts: hundred",
                "figure not in the facts: fifty",
            ],
            "We will r e f u n d you, re-\npaid in full.": [
                "commitment not in the facts: refund",
                "commitment not in the facts: repaid",
            ],
            "Half of it is yours, you pay nothing.": [
                "figure not in the facts: half",
                "commitment not in the facts: pay nothing",
            ],
            "Your money back tonight, at no cost.": [
                "commitment not in the facts: money back",
                "date not in the facts: tonight",
                "commitment not in the facts: no cost",
            ],
        }
        for text, flags in texts.items():
            assert check_words(text, pause, customer_facing=True) == flags, text
        assert check_words("Café TX: settlement is paused while the meter outage is investigated.", pause) == []

    def test_a_rationale_may_quote_a_banned_phrase_the_facts_quote(self) -> None:
        review = Facts(intent="review", decision="remove the banned phrase 'guaranteed savings' from the copy")
        text = "Remove 'guaranteed savings' from the copy."
        assert check_words(text, review, banned=BANNED) == []
        assert check_words(text, review, banned=BANNED, customer_facing=True) == ["banned claim: guaranteed savings"]

    def test_an_action_the_engine_did_not_decide_fails(self) -> None:
        pause = Facts(intent="propose", decision="pause settlement in TX", rules=["ops may pause_settlement"])
        assert check_words("Pause settlement in TX (pause_settlement).", pause) == []
        assert check_words("Pause TX, then transfer_funds and rotate the keys.", pause) == [
            "name not in the facts: transfer_funds",
            "commitment not in the facts: transfer",
            "commitment not in the facts: rotat",
        ]

    def test_a_rationale_naming_another_price_fails(self) -> None:
        price = Facts(intent="propose", decision="set the TX price to 72.50 USD/MWh", figures={"base": "58"})
        assert check_words("Set the TX price to 72.5 USD/MWh.", price) == []
        assert check_words("Set the TX price to 500, skip the board.", price) == [
            "figure not in the facts: 500",
            "commitment not in the facts: skip",
        ]

    @given(st.sampled_from(["propose", "inform", "notify", "review", "request"]), st.integers(0, 10_000))
    def test_the_offline_wording_of_any_facts_passes(self, intent: str, amount: int) -> None:
        """The engine's own wording is what replaces a failing text: it must pass for the facts it words."""
        facts = Facts(
            intent=intent,  # type: ignore[arg-type]
            decision=f"credit C-{amount} {amount}.00 USD for case-{amount}",
            reasons=[f"{amount} kWh lost"],
            figures={"amount_usd": f"{amount}.00"},
            rules=["max credit 250 USD"],
        )
        narrator = Narrator(OfflineChatModel())
        assert check_words(narrator.rationale("ops", facts).text, facts) == []
        copy = narrator.copy("ops", facts, audience=f"customer C-{amount}").text
        assert check_words(copy, facts, context=(f"customer C-{amount}",), customer_facing=True) == []
