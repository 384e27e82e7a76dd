"""Tests for the return rules: window, quantities, inspection sums, RMA ids, refund amounts."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from pydantic import ValidationError

from domain.commands import CommandRefused
from domain.returns import (
    Disposition,
    InspectionLine,
    RefundRequest,
    ReturnedLine,
    ReturnRequest,
    Rma,
    check_inspection,
    check_return,
    order_id_of_rma,
    refund_amount,
    rma_id_for,
)

DELIVERED_AT = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
WINDOW = timedelta(days=30)
DELIVERED = {"KB-100": 3, "MS-200": 1}


def request(**lines: int) -> ReturnRequest:
    return ReturnRequest(lines={sku.replace("_", "-"): n for sku, n in lines.items()}, reason="x")


def check(
    req: ReturnRequest,
    *,
    returned: dict[str, int] | None = None,
    now: datetime = DELIVERED_AT + timedelta(days=3),
    delivered_at: datetime | None = DELIVERED_AT,
) -> None:
    check_return(req, DELIVERED, returned or {}, delivered_at, now, WINDOW)


def test_a_return_within_the_window_of_delivered_units_is_accepted() -> None:
    check(request(KB_100=3, MS_200=1))
    check(request(KB_100=1), now=DELIVERED_AT + WINDOW)  # the last moment still counts


def test_the_window_closes() -> None:
    with pytest.raises(CommandRefused, match="the return window closed on 2024-07-01"):
        check(request(KB_100=1), now=DELIVERED_AT + WINDOW + timedelta(seconds=1))


def test_nothing_can_be_returned_before_delivery() -> None:
    with pytest.raises(CommandRefused, match="order not delivered yet"):
        check(request(KB_100=1), delivered_at=None)


def test_only_delivered_skus_come_back() -> None:
    with pytest.raises(CommandRefused, match="SKU DK-01 was not delivered on this order"):
        check(request(DK_01=1))


def test_quantities_count_earlier_returns() -> None:
    with pytest.raises(CommandRefused, match="only 3 of KB-100 can still be returned"):
        check(request(KB_100=4))
    with pytest.raises(CommandRefused, match="only 1 of KB-100 can still be returned"):
        check(request(KB_100=2), returned={"KB-100": 2})
    with pytest.raises(CommandRefused, match="only 0 of MS-200 can still be returned"):
        check(request(MS_200=1), returned={"MS-200": 1})
    check(request(KB_100=1), returned={"KB-100": 2})


def test_return_requests_need_positive_quantities_and_a_reason() -> None:
    with pytest.raises(ValidationError, match="must be positive"):
        ReturnRequest(lines={"KB-100": 0}, reason="broken")
    with pytest.raises(ValidationError):
        ReturnRequest(lines={}, reason="broken")
    with pytest.raises(ValidationError):
        ReturnRequest(lines={"KB-100": 1}, reason="")
    assert ReturnRequest(lines={"KB-100": 1}, reason="broken").by == "customer"


def verdict(sku: str, quantity: int, disposition: Disposition) -> InspectionLine:
    return InspectionLine(sku=sku, quantity=quantity, disposition=disposition)


def test_inspection_must_account_for_every_returned_unit_exactly_once() -> None:
    returned = {"KB-100": 3, "MS-200": 1}
    check_inspection(
        returned,
        [
            verdict("KB-100", 2, Disposition.RESTOCK),
            verdict("KB-100", 1, Disposition.DISPOSE),
            verdict("MS-200", 1, Disposition.REFURBISH),
        ],
    )
    with pytest.raises(CommandRefused, match="inspected 2 of KB-100 but 3 were returned"):
        check_inspection(
            returned,
            [verdict("KB-100", 2, Disposition.RESTOCK), verdict("MS-200", 1, Disposition.DISPOSE)],
        )
    with pytest.raises(CommandRefused, match="inspected 4 of KB-100 but 3 were returned"):
        check_inspection(
            returned,
            [verdict("KB-100", 4, Disposition.RESTOCK), verdict("MS-200", 1, Disposition.DISPOSE)],
        )
    with pytest.raises(CommandRefused, match="inspected 0 of MS-200 but 1 were returned"):
        check_inspection(returned, [verdict("KB-100", 3, Disposition.RESTOCK)])
    with pytest.raises(CommandRefused, match="SKU DK-01 is not on this return"):
        check_inspection(returned, [verdict("DK-01", 1, Disposition.RESTOCK)])
    with pytest.raises(ValidationError):
        verdict("KB-100", 0, Disposition.RESTOCK)


@pytest.mark.parametrize("order_id", ["A-1001", "t-3f2a9c", "plain", "with.dots_and-1"])
@pytest.mark.parametrize("n", [1, 2, 10, 123])
def test_rma_ids_round_trip(order_id: str, n: int) -> None:
    rma_id = rma_id_for(order_id, n)
    assert rma_id == f"RMA-{order_id}-{n}"
    assert order_id_of_rma(rma_id) == order_id


@pytest.mark.parametrize(
    "bad", ["", "RMA-", "RMA-1", "RMA--1", "A-1001-1", "RMA-A-x", "RMA-A-1001-0", "RMA-A-01"]
)
def test_malformed_rma_ids_are_refused(bad: str) -> None:
    with pytest.raises(CommandRefused, match="is not an RMA id"):
        order_id_of_rma(bad)


def test_rma_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        rma_id_for("A-1001", 0)


def line(sku: str, quantity: int, price: str) -> ReturnedLine:
    return ReturnedLine(sku=sku, quantity=quantity, unit_price=Decimal(price), warehouse="AMS")


def test_refund_amount_is_what_was_paid_for_the_returned_units() -> None:
    assert refund_amount([line("KB-100", 2, "49.90"), line("MS-200", 1, "19.90")], "EUR") == (
        Decimal("119.70")
    )
    assert refund_amount([line("KB-100", 3, "0.335")], "EUR") == Decimal("1.00")  # 1.005 even
    assert refund_amount([line("KB-100", 1, "1500")], "JPY") == Decimal("1500")


def test_an_rma_has_one_line_per_sku() -> None:
    with pytest.raises(ValidationError, match="one RMA line"):
        Rma(
            rma_id="RMA-A-1",
            order_id="A",
            lines=[line("KB-100", 1, "1"), line("KB-100", 1, "1")],
            reason="x",
        )


def test_refund_requests_carry_valid_money() -> None:
    def refund(amount: str, currency: str = "EUR") -> RefundRequest:
        return RefundRequest(
            order_id="A",
            rma_id=None,
            amount=Decimal(amount),
            currency=currency,
            idempotency_key="k",
        )

    assert refund("10.50").amount == Decimal("10.50")
    for bad in ("0", "-1", "10.505"):
        with pytest.raises(ValidationError):
            refund(bad)
    with pytest.raises(ValidationError):
        refund("10", "XXX")
