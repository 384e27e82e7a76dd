"""Order holds: why an order waits for a person, who may release it, and the approval rules.

Everything here is pure (no I/O), so the workflow's update validators can call it directly.
"""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.commands import CommandRefused
from domain.money import CURRENCY_EXPONENT
from domain.order import Order
from domain.policy import ApprovalThresholds
from domain.steps import ValidatedOrder


class HoldType(StrEnum):
    """Why an order is held."""

    AMOUNT = "AMOUNT"
    CREDIT = "CREDIT"
    PRICE = "PRICE"
    ADDRESS = "ADDRESS"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    DUPLICATE = "DUPLICATE"
    """The same customer sent the same lines to the same address recently: a person decides
    whether it is a deliberate second order (release) or a double submission (reject)."""
    PAYMENT = "PAYMENT"
    """The card authorisation lapsed (a backorder, a slow delivery) and the new one was
    declined: finance gets the customer to pay, then releases (the card is tried again) or
    rejects (what was delivered is billed, nothing more ships)."""


class Tier(StrEnum):
    """An approver tier; values match `approvers.tier` in the database."""

    MANAGER = "manager"
    DIRECTOR = "director"
    FINANCE = "finance"
    REVIEW = "review"

    def may_release(self, needed: "Tier") -> bool:
        """True when an approver of this tier may release a hold that needs `needed`.

        DIRECTOR is the top of the escalation path and may release anything.
        """
        return self == needed or self == Tier.DIRECTOR

    @property
    def rank(self) -> int:
        """Seniority for display and search: director > finance > manager > review."""
        return _RANK[self]


_RANK = {Tier.REVIEW: 1, Tier.MANAGER: 2, Tier.FINANCE: 3, Tier.DIRECTOR: 4}


class Hold(BaseModel):
    """One reason the order waits, the tier needed now, and who released it (when released)."""

    type: HoldType
    tier: Tier
    reason: str
    released_by: str | None = None
    released_at: datetime | None = None
    note: str | None = None

    @property
    def is_open(self) -> bool:
        """Still waiting for a release."""
        return self.released_by is None


class HoldRequest(BaseModel):
    """Input of `assess_holds`: the order as placed and as validated."""

    order: Order
    validated: ValidatedOrder


class HoldAssessment(BaseModel):
    """Output of `assess_holds`: the holds, the active approvers and the customer's exposure."""

    holds: list[Hold]
    approvers: dict[str, list[Tier]]
    exposure: Decimal


class ApprovalDecision(BaseModel):
    """An approver releasing one hold, or (hold=None) every open hold they may release."""

    model_config = ConfigDict(str_strip_whitespace=True)

    by: str = Field(min_length=1, max_length=64)
    hold: HoldType | None = None
    note: str | None = Field(default=None, max_length=500)


class RejectionDecision(BaseModel):
    """An approver turning the held order down."""

    model_config = ConfigDict(str_strip_whitespace=True)

    by: str = Field(min_length=1, max_length=64)
    reason: str = Field(min_length=1, max_length=500)


NoticeKind = Literal[
    "approval_needed", "escalated", "auto_rejected", "sla_breach", "exception", "order_failed"
]


class Notice(BaseModel):
    """A message to a tier or a user; `key` makes sending it twice a no-op."""

    order_id: str
    recipient: str = Field(min_length=1, max_length=64)
    kind: NoticeKind
    message: str = Field(min_length=1)
    key: str = Field(min_length=1, max_length=160)


def holds_for(
    total: Decimal,
    thresholds: ApprovalThresholds,
    credit_limit: Decimal,
    exposure: Decimal,
    is_net_terms: bool,
    price_mismatches: list[str],
    address_issues: list[str],
    manual_review: bool,
    duplicate_of: str | None = None,
    gross: Decimal | None = None,
    currency: str | None = None,
) -> list[Hold]:
    """The holds an order starts with (empty: it needs nobody's sign-off).

    The amount thresholds apply to the goods' net (`total`: quantity x price, before
    shipping and tax): what is signed off is a commercial decision on the price book, the
    same for the same goods whatever the destination's tax; what the order will cost the
    customer (`gross`) is the credit check's business.

    Args:
        total: the goods' net total.
        thresholds: goods' net totals above which a manager or a director must sign off.
        credit_limit: the customer's credit limit (only used on net terms).
        exposure: the customer's open orders and unpaid invoices, excluding this order.
        is_net_terms: the customer pays on account (Net-30) rather than upfront.
        price_mismatches: one line per order line whose price is not the agreed one.
        address_issues: address warnings that need a human look.
        manual_review: the order asked to be reviewed.
        duplicate_of: an earlier order with the same content (see `ValidatedOrder`).
        gross: what the order may cost with shipping and tax (the credit check counts it; the
            amount thresholds read the goods' net `total`). None: `total`.
        currency: the order's currency, named in the AMOUNT hold's reason.
    """
    holds: list[Hold] = []
    for tier, threshold in (
        (Tier.DIRECTOR, thresholds.director),
        (Tier.MANAGER, thresholds.manager),
    ):
        if total > threshold:
            holds.append(
                Hold(
                    type=HoldType.AMOUNT,
                    tier=tier,
                    reason=amount_reason(total, tier, threshold, currency),
                )
            )
            break
    owed = total if gross is None else gross
    if is_net_terms and exposure + owed > credit_limit:
        gross_note = "" if gross is None else " gross"
        holds.append(
            Hold(
                type=HoldType.CREDIT,
                tier=Tier.FINANCE,
                reason=f"credit limit {credit_limit} exceeded: exposure {exposure} "
                f"+ this order {owed}{gross_note}",
            )
        )
    if price_mismatches:
        holds.append(
            Hold(type=HoldType.PRICE, tier=Tier.MANAGER, reason="; ".join(price_mismatches))
        )
    if address_issues:
        holds.append(
            Hold(type=HoldType.ADDRESS, tier=Tier.REVIEW, reason="; ".join(address_issues))
        )
    if manual_review:
        holds.append(
            Hold(type=HoldType.MANUAL_REVIEW, tier=Tier.REVIEW, reason="manual review requested")
        )
    if duplicate_of:
        holds.append(
            Hold(
                type=HoldType.DUPLICATE,
                tier=Tier.REVIEW,
                reason=f"same customer, lines and address as order {duplicate_of}: release if "
                "the customer meant a second order, reject if it was sent twice",
            )
        )
    return holds


def amount_reason(total: Decimal, tier: Tier, threshold: Decimal, currency: str | None) -> str:
    """Why an AMOUNT hold was placed, naming the amount compared and the threshold's basis:
    "goods net 12,000.00 EUR above the manager threshold 10,000.00 (net)"."""
    places = CURRENCY_EXPONENT.get(currency or "", 2)
    unit = f" {currency}" if currency else ""
    return (
        f"goods net {total:,.{places}f}{unit} above the {tier.value} threshold "
        f"{threshold:,.{places}f} (net)"
    )


def open_holds(holds: list[Hold]) -> list[Hold]:
    """The holds not released yet."""
    return [hold for hold in holds if hold.is_open]


def awaiting_tier(holds: list[Hold]) -> str | None:
    """The most senior tier any open hold needs (its value), or None when nothing is open."""
    tiers = [hold.tier for hold in open_holds(holds)]
    return max(tiers, key=lambda tier: tier.rank).value if tiers else None


def escalate(holds: list[Hold]) -> list[Hold]:
    """Every open hold now needs a director; released holds stay as they are."""
    return [
        hold.model_copy(update={"tier": Tier.DIRECTOR}) if hold.is_open else hold for hold in holds
    ]


def release(
    holds: list[Hold], types: list[HoldType], by: str, at: datetime, note: str | None = None
) -> list[Hold]:
    """The holds with `types` marked released by `by` at `at` (pass `workflow.now()`)."""
    return [
        hold.model_copy(update={"released_by": by, "released_at": at, "note": note})
        if hold.type in types and hold.is_open
        else hold
        for hold in holds
    ]


def carry_over(earlier: list[Hold], now: list[Hold]) -> list[Hold]:
    """The holds `now`, with the releases of `earlier` kept for holds that did not change.

    After an edit the order is assessed again: an approval given for exactly the same hold
    (type, tier and reason, which names the amounts) still stands; any other hold is open
    again, so an edit can never carry an approval over to a bigger order.
    """
    released = {(h.type, h.tier, h.reason): h for h in earlier if not h.is_open}
    return [released.get((h.type, h.tier, h.reason), h) for h in now]


def check_approval(
    holds: list[Hold],
    approvers: dict[str, list[Tier]],
    decision: ApprovalDecision,
    submitted_by: str | None,
) -> list[HoldType]:
    """The hold types this decision releases.

    Raises:
        CommandRefused: not an approver, the wrong tier, the submitter, an unknown or
            already released hold, or nothing open to approve.
    """
    tiers = _approver_tiers(approvers, decision.by, submitted_by, "approve")
    if decision.hold is not None:
        same = [h for h in holds if h.type == decision.hold]  # a PAYMENT hold can come again
        hold = next((h for h in same if h.is_open), same[-1] if same else None)
        if hold is None:
            raise CommandRefused(f"no such hold: {decision.hold.value}")
        if not hold.is_open:
            raise CommandRefused(
                f"hold {hold.type.value} was already released by {hold.released_by}"
            )
        _releasable(decision.by, tiers, [hold])
        return [hold.type]
    pending = open_holds(holds)
    if not pending:
        raise CommandRefused("nothing to approve: no open holds")
    return [hold.type for hold in _releasable(decision.by, tiers, pending)]


def check_rejection(
    holds: list[Hold],
    approvers: dict[str, list[Tier]],
    decision: RejectionDecision,
    submitted_by: str | None,
) -> None:
    """Accept a rejection from an approver who could release at least one open hold.

    Raises:
        CommandRefused: not an approver, the submitter, nothing open, or the wrong tier.
    """
    tiers = _approver_tiers(approvers, decision.by, submitted_by, "reject")
    pending = open_holds(holds)
    if not pending:
        raise CommandRefused("nothing to reject: no open holds")
    _releasable(decision.by, tiers, pending)


def _approver_tiers(
    approvers: dict[str, list[Tier]], by: str, submitted_by: str | None, verb: str
) -> list[Tier]:
    tiers = approvers.get(by) or []
    if not tiers:
        raise CommandRefused(f"{by} is not an approver")
    if submitted_by is not None and by == submitted_by:
        raise CommandRefused(f"the submitter cannot {verb} their own order")
    return tiers


def _releasable(by: str, tiers: list[Tier], holds: list[Hold]) -> list[Hold]:
    allowed = [h for h in holds if any(tier.may_release(h.tier) for tier in tiers)]
    if not allowed:
        needed = sorted({h.tier for h in holds}, key=lambda tier: -tier.rank)
        raise CommandRefused(
            f"{by} is not an approver for this tier "
            f"(needs {' or '.join(tier.value for tier in needed)})"
        )
    return allowed
