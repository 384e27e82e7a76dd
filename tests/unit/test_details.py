"""What an operator reads in the Temporal UI: the order's card and its current details."""

from datetime import UTC, datetime
from decimal import Decimal

from domain.details import (
    approval_wanted,
    current_details,
    order_card,
    parcels_wanted,
    returns_wanted,
    stock_wanted,
)
from domain.fulfilment import Demand, Shipment
from domain.holds import Hold, HoldType, Tier
from domain.returns import ReturnedLine, Rma
from domain.statuses import OrderStatus
from tests.factories import make_order

NOW = datetime(2026, 12, 1, 10, 30, tzinfo=UTC)


def test_the_card_shows_customer_lines_total_promise_and_channel() -> None:
    order = make_order({"MS-200": 6, "KB-100": 1}, price="1000.00", submitted_by="j.buyer")
    card = order_card(order)
    assert card.startswith(f"**C-WEB-001** via web · PO {order.purchase_order}")
    assert "placed by j.buyer" in card
    assert "- MS-200 x 6 @ 1000.00 EUR" in card and "- KB-100 x 1 @ 1000.00 EUR" in card
    assert card.endswith("**Goods net** 7000.00 EUR · **promised** within 5 days")


def test_the_card_shows_a_promised_date_and_counts_lines_beyond_eight() -> None:
    lines = {f"SKU-{n}": 1 for n in range(10)}
    order = make_order(lines, promised_days=None, promised_date="2026-12-24")
    card = order_card(order)
    assert card.count("\n- ") == 9  # eight lines and the "more" line
    assert "- ... and 2 more lines" in card
    assert "**promised** by 2026-12-24" in card


def test_a_waiting_order_says_for_what_for_whom_since_when_and_its_timer() -> None:
    text = current_details(
        OrderStatus.AWAITING_APPROVAL,
        "APPROVAL",
        "approval by a manager-tier approver (AMOUNT hold)",
        NOW,
        timer="approval SLA: escalate after 4h",
        escalation_level=1,
    )
    assert text.splitlines() == [
        "**AWAITING_APPROVAL** · stage APPROVAL",
        "",
        "- **waiting for** approval by a manager-tier approver (AMOUNT hold)",
        "- **since** 2026-12-01T10:30:00+00:00",
        "- **timer** approval SLA: escalate after 4h",
        "- **escalation level** 1",
    ]


def test_a_working_order_waits_for_nobody_and_a_closed_one_says_why() -> None:
    working = current_details(OrderStatus.RESERVED, "FULFILMENT", None, NOW)
    assert "- **waiting for** nothing: orderflow is working on it" in working
    assert "timer" not in working and "escalation" not in working
    closed = current_details(
        OrderStatus.REJECTED,
        "CLOSED",
        "approval by a director-tier approver (AMOUNT hold)",
        NOW,
        timer="approval SLA: auto-reject after 48h",
        reason="ApprovalExpired: no approval within 48h: auto-rejected",
    )
    assert "- **closed**: ApprovalExpired: no approval within 48h: auto-rejected" in closed
    assert "waiting for" not in closed and "timer" not in closed


def test_approval_names_each_tier_and_its_holds() -> None:
    holds = [
        Hold(type=HoldType.AMOUNT, tier=Tier.MANAGER, reason="above 5000"),
        Hold(type=HoldType.PRICE, tier=Tier.MANAGER, reason="below list"),
        Hold(type=HoldType.CREDIT, tier=Tier.FINANCE, reason="over the limit"),
        Hold(type=HoldType.ADDRESS, tier=Tier.REVIEW, reason="no number", released_by="rob"),
    ]
    assert approval_wanted(holds) == (
        "approval by a finance-tier approver (CREDIT hold) "
        "and a manager-tier approver (AMOUNT, PRICE holds)"
    )
    assert approval_wanted(holds[3:]) == "nothing: every hold is released"


def test_stock_parcels_and_returns_name_who_acts_next() -> None:
    assert stock_wanted([Demand(sku="MS-200", quantity=3)]) == (
        "restock of MS-200 x3 (goods in: orderflow restock)"
    )
    one = Shipment(shipment_id="S1", warehouse="AMS", lines=[], shipped=True)
    two = Shipment(shipment_id="S2", warehouse="FRA", lines=[])
    assert parcels_wanted([one, two]) == "ship notice from the warehouse for S2"
    two.shipped = True
    one.delivered = True
    assert parcels_wanted([one, two]) == "delivery notice from the carrier for S2"

    line = ReturnedLine(sku="MS-200", quantity=1, unit_price=Decimal("10.00"), warehouse="AMS")
    rmas = [
        Rma(rma_id="RMA-1", order_id="o", lines=[line], reason="r"),
        Rma(rma_id="RMA-2", order_id="o", lines=[line], reason="r", state="RECEIVED"),
        Rma(rma_id="RMA-3", order_id="o", lines=[line], reason="r", state="REFUNDED"),
    ]
    ends = datetime(2026, 12, 29, 9, tzinfo=UTC)
    assert returns_wanted(ends, rmas, NOW) == (
        "return requests from the customer until 2026-12-29; "
        "RMA-1: the parcel from the customer; RMA-2: inspection and refund by the warehouse"
    )
    assert returns_wanted(ends, rmas[2:], ends) == "nothing: the return window has closed"
