"""Hold rules: which holds an order gets, who may release them, and every refusal."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.commands import CommandRefused
from domain.holds import (
    ApprovalDecision,
    Hold,
    HoldType,
    RejectionDecision,
    Tier,
    awaiting_tier,
    check_approval,
    check_rejection,
    escalate,
    holds_for,
    open_holds,
    release,
)
from domain.policy import ApprovalThresholds

THRESHOLDS = ApprovalThresholds(manager=Decimal("5000"), director=Decimal("50000"))
APPROVERS = {
    "mia.manager": [Tier.MANAGER],
    "j.buyer": [Tier.MANAGER],
    "dirk.director": [Tier.DIRECTOR],
    "fiona.finance": [Tier.FINANCE],
    "rob.review": [Tier.REVIEW],
}
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def assess(total: str = "100", **kw: object) -> list[Hold]:
    args: dict[str, object] = {
        "total": Decimal(total),
        "thresholds": THRESHOLDS,
        "credit_limit": Decimal("2000"),
        "exposure": Decimal(0),
        "is_net_terms": False,
        "price_mismatches": [],
        "address_issues": [],
        "manual_review": False,
        **kw,
    }
    return holds_for(**args)  # type: ignore[arg-type]


def hold(kind: HoldType, tier: Tier, released_by: str | None = None) -> Hold:
    return Hold(type=kind, tier=tier, reason="test", released_by=released_by)


def refusal(holds: list[Hold], by: str, kind: HoldType | None = None, submitter: str = "") -> str:
    with pytest.raises(CommandRefused) as refused:
        check_approval(holds, APPROVERS, ApprovalDecision(by=by, hold=kind), submitter or None)
    return str(refused.value)


def test_small_prepaid_order_needs_nobody() -> None:
    assert assess("5000") == []


def test_amount_above_manager_threshold_needs_a_manager() -> None:
    [only] = assess("5000.01", currency="EUR")
    assert (only.type, only.tier) == (HoldType.AMOUNT, Tier.MANAGER)
    assert only.reason == "goods net 5,000.01 EUR above the manager threshold 5,000.00 (net)"


def test_amount_above_director_threshold_needs_a_director() -> None:
    [only] = assess("50000.01", currency="EUR")
    assert (only.type, only.tier) == (HoldType.AMOUNT, Tier.DIRECTOR)
    assert only.reason == "goods net 50,000.01 EUR above the director threshold 50,000.00 (net)"


def test_the_amount_thresholds_compare_the_goods_net_not_the_gross() -> None:
    """The thresholds are a price-book decision: shipping and the destination's tax (the
    gross) do not push an order over them; the credit check is what counts the gross."""
    assert assess("4990.00", gross=Decimal("5963.75")) == []
    [only] = assess("5001", gross=Decimal("6001"), currency="JPY")
    assert only.reason == "goods net 5,001 JPY above the manager threshold 5,000 (net)"
    [only] = assess("5000.01")  # no currency known: the amounts alone
    assert only.reason == "goods net 5,000.01 above the manager threshold 5,000.00 (net)"


def test_net_terms_over_credit_limit_needs_finance() -> None:
    [only] = assess("600", is_net_terms=True, exposure=Decimal("1500"))
    assert (only.type, only.tier) == (HoldType.CREDIT, Tier.FINANCE)
    assert only.reason == "credit limit 2000 exceeded: exposure 1500 + this order 600"


def test_credit_exactly_at_limit_or_prepaid_is_no_hold() -> None:
    assert assess("500", is_net_terms=True, exposure=Decimal("1500")) == []
    assert assess("600", is_net_terms=False, exposure=Decimal("1500")) == []


def test_price_address_and_manual_review_holds() -> None:
    holds = assess(
        price_mismatches=["A: 1 below the list price 2", "B: 3 differs from the price book 4"],
        address_issues=["street 'Main' has no house number"],
        manual_review=True,
    )
    assert [(h.type, h.tier) for h in holds] == [
        (HoldType.PRICE, Tier.MANAGER),
        (HoldType.ADDRESS, Tier.REVIEW),
        (HoldType.MANUAL_REVIEW, Tier.REVIEW),
    ]
    assert holds[0].reason == "A: 1 below the list price 2; B: 3 differs from the price book 4"


def test_a_suspected_duplicate_is_held_for_review_naming_the_earlier_order() -> None:
    [held] = assess(duplicate_of="web-1001")
    assert (held.type, held.tier) == (HoldType.DUPLICATE, Tier.REVIEW)
    assert "as order web-1001" in held.reason
    assert check_approval([held], APPROVERS, ApprovalDecision(by="rob.review"), None) == [
        HoldType.DUPLICATE
    ]
    assert assess(duplicate_of=None) == []


def test_manager_releases_a_manager_hold() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER)]
    assert check_approval(holds, APPROVERS, ApprovalDecision(by="mia.manager"), "x") == [
        HoldType.AMOUNT
    ]


def test_director_releases_a_manager_hold() -> None:
    holds = [hold(HoldType.PRICE, Tier.MANAGER), hold(HoldType.CREDIT, Tier.FINANCE)]
    decision = ApprovalDecision(by="dirk.director")
    assert check_approval(holds, APPROVERS, decision, None) == [HoldType.PRICE, HoldType.CREDIT]


def test_approve_all_releases_only_what_the_tier_may_release() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER), hold(HoldType.CREDIT, Tier.FINANCE)]
    assert check_approval(holds, APPROVERS, ApprovalDecision(by="fiona.finance"), None) == [
        HoldType.CREDIT
    ]


def test_two_holds_need_two_releases() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER), hold(HoldType.CREDIT, Tier.FINANCE)]
    first = check_approval(holds, APPROVERS, ApprovalDecision(by="mia.manager"), None)
    holds = release(holds, first, "mia.manager", NOW, "ok")
    assert [h.type for h in open_holds(holds)] == [HoldType.CREDIT]
    assert (holds[0].released_by, holds[0].released_at, holds[0].note) == ("mia.manager", NOW, "ok")
    second = check_approval(holds, APPROVERS, ApprovalDecision(by="fiona.finance"), None)
    holds = release(holds, second, "fiona.finance", NOW)
    assert open_holds(holds) == []
    assert awaiting_tier(holds) is None


def test_refused_when_not_an_approver() -> None:
    assert refusal([hold(HoldType.AMOUNT, Tier.MANAGER)], "eve") == "eve is not an approver"


def test_refused_when_wrong_tier() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.DIRECTOR)]
    message = "mia.manager is not an approver for this tier (needs director)"
    assert refusal(holds, "mia.manager") == message
    assert refusal(holds, "mia.manager", HoldType.AMOUNT) == message


def test_refused_when_the_submitter_approves_their_own_order() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER)]
    message = "the submitter cannot approve their own order"
    assert refusal(holds, "j.buyer", submitter="j.buyer") == message


def test_refused_for_a_hold_the_order_does_not_have() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER)]
    assert refusal(holds, "mia.manager", HoldType.PRICE) == "no such hold: PRICE"


def test_refused_when_the_hold_was_already_released() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER, released_by="mia.manager")]
    message = "hold AMOUNT was already released by mia.manager"
    assert refusal(holds, "dirk.director", HoldType.AMOUNT) == message


def test_refused_when_nothing_is_open() -> None:
    holds = [hold(HoldType.AMOUNT, Tier.MANAGER, released_by="mia.manager")]
    assert refusal(holds, "mia.manager") == "nothing to approve: no open holds"
    assert refusal([], "mia.manager") == "nothing to approve: no open holds"


def test_rejection_needs_an_approver_who_could_release_an_open_hold() -> None:
    holds = [hold(HoldType.CREDIT, Tier.FINANCE)]
    check_rejection(holds, APPROVERS, RejectionDecision(by="fiona.finance", reason="no"), None)
    check_rejection(holds, APPROVERS, RejectionDecision(by="dirk.director", reason="no"), None)
    cases = [
        ("mia.manager", None, "mia.manager is not an approver for this tier (needs finance)"),
        ("eve", None, "eve is not an approver"),
        ("fiona.finance", "fiona.finance", "the submitter cannot reject their own order"),
    ]
    for by, submitter, message in cases:
        with pytest.raises(CommandRefused) as refused:
            check_rejection(holds, APPROVERS, RejectionDecision(by=by, reason="no"), submitter)
        assert str(refused.value) == message
    with pytest.raises(CommandRefused, match="nothing to reject: no open holds"):
        check_rejection([], APPROVERS, RejectionDecision(by="dirk.director", reason="no"), None)


def test_escalate_moves_every_open_hold_to_director() -> None:
    holds = [
        hold(HoldType.AMOUNT, Tier.MANAGER, released_by="mia.manager"),
        hold(HoldType.CREDIT, Tier.FINANCE),
        hold(HoldType.ADDRESS, Tier.REVIEW),
        hold(HoldType.PRICE, Tier.DIRECTOR),
    ]
    escalated = escalate(holds)
    assert [h.tier for h in escalated] == [
        Tier.MANAGER,
        Tier.DIRECTOR,
        Tier.DIRECTOR,
        Tier.DIRECTOR,
    ]
    assert escalated[0] == holds[0]
    message = "fiona.finance is not an approver for this tier (needs director)"
    assert refusal(escalated, "fiona.finance", HoldType.CREDIT) == message


def test_awaiting_tier_is_the_most_senior_open_tier() -> None:
    holds = [hold(HoldType.ADDRESS, Tier.REVIEW), hold(HoldType.CREDIT, Tier.FINANCE)]
    assert awaiting_tier(holds) == "finance"
    assert awaiting_tier(escalate(holds)) == "director"
    assert awaiting_tier([hold(HoldType.ADDRESS, Tier.REVIEW)]) == "review"


def test_only_director_releases_other_tiers() -> None:
    assert Tier.DIRECTOR.may_release(Tier.REVIEW)
    assert not Tier.MANAGER.may_release(Tier.REVIEW)
    assert not Tier.FINANCE.may_release(Tier.DIRECTOR)
