"""Legal's engine: the claims lint and the jurisdiction pack."""

from __future__ import annotations

from datetime import date

import pytest

from coalition.packs.helios.agents.legal import engine
from coalition.packs.helios.payloads import ClaimsReviewRequest, PolicyBrief, RegulatoryChange

pytestmark = pytest.mark.unit

BRIEF = PolicyBrief(
    approved_claims=["100% renewable energy", "transparent fees", "settles in days"],
    banned_claims=["guaranteed savings", "zero risk"],
)


def _lint(copy: str, claims: list[str], brief: PolicyBrief = BRIEF) -> engine.ClaimsReview:
    return engine.lint(ClaimsReviewRequest(campaign_id="cmp-1", copy_text=copy, claims=claims), brief)[0]


class TestClaimsLint:
    """Banned phrases are caught and replaced; unapproved claims are mapped to the library."""

    def test_clean_campaign_is_approved_unchanged(self) -> None:
        """Approved claims and clean copy pass with no findings."""
        review = _lint("Trade 100% renewable energy with transparent fees.", ["transparent fees"])
        assert review.approved
        assert review.findings == []
        assert review.revised_copy == "Trade 100% renewable energy with transparent fees."
        assert review.revised_claims == ["transparent fees"]

    @pytest.mark.parametrize(
        ("copy", "claims", "phrase"),
        [
            ("Guaranteed savings for every home!", ["100% renewable energy"], "guaranteed savings"),
            ("GUARANTEED SAVINGS", [], "guaranteed savings"),
            ("Switch today.", ["zero risk"], "zero risk"),
        ],
    )
    def test_a_banned_phrase_is_caught_in_copy_or_claims(self, copy: str, claims: list[str], phrase: str) -> None:
        """Case-insensitive, in the copy or in a claim."""
        review = _lint(copy, claims)
        assert not review.approved
        assert [(f.phrase, f.rule) for f in review.findings] == [(phrase, "banned_claim")]
        assert phrase not in review.revised_copy.lower()
        assert all(c in BRIEF.approved_claims for c in review.revised_claims)

    def test_banned_phrase_replaced_by_an_approved_claim_not_already_in_the_copy(self) -> None:
        """The copy keeps its capitalisation and does not repeat a claim it already makes."""
        review = _lint(
            "Guaranteed savings with 100% renewable energy!", ["guaranteed savings", "100% renewable energy"]
        )
        assert review.revised_copy == "Transparent fees with 100% renewable energy!"
        assert review.revised_claims == ["transparent fees", "100% renewable energy"]

    def test_unapproved_claim_maps_to_the_closest_approved_one(self) -> None:
        """Word overlap picks the suggestion; one finding per phrase."""
        review = _lint("Join now.", ["fees that are transparent"])
        assert [(f.phrase, f.rule, f.suggestion) for f in review.findings] == [
            ("fees that are transparent", "unapproved_claim", "transparent fees")
        ]
        assert review.revised_claims == ["transparent fees"]

    def test_approved_claims_match_ignoring_case_and_spacing(self) -> None:
        """'Transparent  Fees' is the approved claim, written differently."""
        review = _lint("Join now.", ["Transparent  Fees"])
        assert review.approved
        assert review.revised_claims == ["transparent fees"]

    def test_empty_library_removes_instead_of_inventing(self) -> None:
        """With nothing approved, a banned phrase is removed and no claim is suggested."""
        review = _lint("Zero risk trading.", ["zero risk"], PolicyBrief(banned_claims=["zero risk"]))
        assert review.revised_copy == "trading."
        assert review.revised_claims == []


class TestJurisdictionPack:
    """A regulatory change becomes a pack proposal and an obligations notice."""

    def test_args_and_notice_follow_the_observation(self) -> None:
        """Status, obligations, effective date and materiality come from the data."""
        change = RegulatoryChange(
            region="NY", status="restricted", obligations=["disclose fees"], effective=date(2026, 3, 1), material=True
        )
        pack = engine.jurisdiction_pack(change, [])
        assert pack.args() == {
            "region": "NY",
            "status": "restricted",
            "obligations": ["disclose fees"],
            "effective": "2026-03-01",
            "material": True,
        }
        assert pack.notice.model_dump() == {
            "region": "NY",
            "status": "restricted",
            "obligations": ["disclose fees"],
            "effective": "2026-03-01",
        }

    def test_flagged_text_is_mentioned_but_changes_nothing(self) -> None:
        """A flagged regulator text leaves the args as they were."""
        change = RegulatoryChange(region="NY", status="allowed", effective=date(2026, 3, 1))
        assert engine.jurisdiction_pack(change, ["instruction"]).args() == engine.jurisdiction_pack(change, []).args()
        assert "flagged" in " ".join(engine.jurisdiction_pack(change, ["instruction"]).facts.reasons)
