"""Returns and refunds: RMA contracts and the pure rules that accept or refuse them.

Nothing here does I/O: the workflow decides with these rules (usually in an update validator),
and `activities.returns` applies the decision to the database, the carriers and the gateway.
"""

import re
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator, model_validator

from domain.commands import CommandRefused
from domain.money import CURRENCY_EXPONENT, has_valid_precision, round_money

RMA_PREFIX = "RMA-"
_RMA_ID = re.compile(rf"{RMA_PREFIX}(.+)-([1-9][0-9]*)", re.ASCII)


class Disposition(StrEnum):
    """What inspection decides for a returned unit.

    Spelled as the CLI and the README spell it (`restock`), on the wire too; any case is
    accepted (histories recorded before carry `"RESTOCK"`).
    """

    RESTOCK = "restock"
    """As new: back into sellable stock at the warehouse it shipped from."""
    REFURBISH = "refurbish"
    """Needs work before it can be sold again; not sellable stock."""
    DISPOSE = "dispose"
    """Scrapped."""

    @classmethod
    def _missing_(cls, value: object) -> "Disposition | None":
        if isinstance(value, str):
            for member in cls:
                if member.value == value.strip().lower():
                    return member
        return None


class ReturnRequest(BaseModel):
    """The customer (or customer service) asks to send units back."""

    lines: dict[str, int] = Field(min_length=1, description="SKU -> units to return")
    reason: str = Field(min_length=1, max_length=500)
    by: str = Field(default="customer", min_length=1, max_length=64)

    @field_validator("lines")
    @classmethod
    def _positive(cls, lines: dict[str, int]) -> dict[str, int]:
        for sku, quantity in lines.items():
            if quantity <= 0:
                raise ValueError(f"quantity of {sku} must be positive, got {quantity}")
        return lines


class ReturnedLine(BaseModel):
    """Units of one SKU on an RMA, the price paid for them and the warehouse they go back to."""

    sku: str
    quantity: int = Field(gt=0)
    unit_price: Decimal = Field(ge=0)
    warehouse: str


class Rma(BaseModel):
    """A return merchandise authorisation; the label fields are set once a label is booked.

    `state` is OPEN, RECEIVED, INSPECTED or REFUNDED; `refund_amount` is what was refunded
    against this RMA so far (None before any refund).
    """

    rma_id: str = Field(max_length=80)
    order_id: str
    lines: list[ReturnedLine] = Field(min_length=1)
    reason: str
    carrier: str | None = None
    tracking_number: str | None = None
    label_id: str | None = None
    state: str = "OPEN"
    refund_amount: Decimal | None = None

    @model_validator(mode="after")
    def _one_line_per_sku(self) -> "Rma":
        skus = [line.sku for line in self.lines]
        if len(set(skus)) != len(skus):
            raise ValueError("each SKU may appear on one RMA line only")
        return self


class InspectionLine(BaseModel):
    """Inspection's verdict on some units of one SKU."""

    sku: str
    quantity: int = Field(gt=0)
    disposition: Disposition


class InspectionRequest(BaseModel):
    """The returns desk's verdicts on everything that came back under one RMA."""

    rma_id: str
    lines: list[InspectionLine] = Field(min_length=1)
    by: str = Field(default="returns-desk", min_length=1, max_length=64)


class RefundRequest(BaseModel):
    """Give money back on an order, optionally against an RMA; the key makes it happen once."""

    order_id: str
    rma_id: str | None
    amount: Decimal = Field(gt=0)
    currency: str
    idempotency_key: str = Field(min_length=1, max_length=160)

    @model_validator(mode="after")
    def _valid_money(self) -> "RefundRequest":
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(f"currency {self.currency} is not traded")
        if not has_valid_precision(self.amount, self.currency):
            raise ValueError(f"amount {self.amount} has more decimals than {self.currency} allows")
        return self


class RefundResult(BaseModel):
    """A refund as booked: the gateway's reference and the order's refunded total after it."""

    order_id: str
    rma_id: str | None
    amount: Decimal
    currency: str
    reference: str
    refunded_total: Decimal


def check_return(
    request: ReturnRequest,
    delivered: dict[str, int],
    already_returned: dict[str, int],
    delivered_at: datetime | None,
    now: datetime,
    window: timedelta,
) -> None:
    """Accept a return only within the window and only for units delivered and not returned.

    Args:
        request: What the customer wants to send back.
        delivered: Units delivered per SKU on this order.
        already_returned: Units per SKU already on earlier RMAs of this order.
        delivered_at: When the order was delivered (None: not yet).
        now: The decision time (workflow time, for determinism).
        window: How long after delivery a return is accepted.

    Raises:
        CommandRefused: not delivered yet, window closed, SKU not delivered, or too many units.
    """
    if delivered_at is None:
        raise CommandRefused("order not delivered yet: nothing can be returned")
    closes = delivered_at + window
    if now > closes:
        raise CommandRefused(
            f"the return window closed on {closes.date().isoformat()} "
            f"({window.days} days after delivery)"
        )
    for sku, quantity in sorted(request.lines.items()):
        if delivered.get(sku, 0) <= 0:
            raise CommandRefused(f"SKU {sku} was not delivered on this order")
        remaining = max(delivered[sku] - already_returned.get(sku, 0), 0)
        if quantity > remaining:
            raise CommandRefused(f"only {remaining} of {sku} can still be returned")


def check_inspection(rma_lines: dict[str, int], inspected: list[InspectionLine]) -> None:
    """Every unit that came back gets exactly one verdict.

    Args:
        rma_lines: Units per SKU on the RMA.
        inspected: The verdicts; several lines of one SKU (different dispositions) add up.

    Raises:
        CommandRefused: a SKU that is not on the RMA, or verdicts that do not add up to the
            returned quantity of some SKU.
    """
    totals: dict[str, int] = defaultdict(int)
    for line in inspected:
        if line.sku not in rma_lines:
            raise CommandRefused(f"SKU {line.sku} is not on this return")
        totals[line.sku] += line.quantity
    for sku, returned in sorted(rma_lines.items()):
        if totals[sku] != returned:
            raise CommandRefused(
                f"inspected {totals[sku]} of {sku} but {returned} were returned: "
                "give every returned unit exactly one disposition"
            )


def refund_amount(lines: list[ReturnedLine], currency: str) -> Decimal:
    """What the returned lines are worth at the prices paid, rounded to the currency."""
    total = sum((line.unit_price * line.quantity for line in lines), Decimal(0))
    return round_money(total, currency)


def rma_id_for(order_id: str, n: int) -> str:
    """The id of the order's n-th RMA (n counts from 1), e.g. "RMA-A-1001-2".

    Raises:
        ValueError: n is below 1 or the order id is empty.
    """
    if n < 1 or not order_id:
        raise ValueError(f"an RMA needs an order id and n >= 1, got {order_id!r}, {n}")
    return f"{RMA_PREFIX}{order_id}-{n}"


def order_id_of_rma(rma_id: str) -> str:
    """The order an RMA id belongs to: the inverse of `rma_id_for`.

    Raises:
        CommandRefused: the id is not of the form RMA-<order id>-<n>.
    """
    match = _RMA_ID.fullmatch(rma_id)
    if match is None:
        raise CommandRefused(f"{rma_id!r} is not an RMA id (expected RMA-<order id>-<n>)")
    return match.group(1)
