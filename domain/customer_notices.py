"""What the customer is told and when: which recorded step is which customer event, the key
that makes each one once, and the text of each message (subject, plain-text body). Pure."""

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from domain.shipping import DEFAULT_CARRIERS
from domain.statuses import OrderStatus


class CustomerEvent(StrEnum):
    """An event of an order the customer hears about (the `kind` of its notification)."""

    CONFIRMED = "order_confirmed"
    BACKORDERED = "backordered"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    RMA_OPENED = "rma_opened"
    REFUND_ISSUED = "refund_issued"


Source = Literal["step", "parcel", "return label"]


@dataclass(frozen=True)
class Trigger:
    """One row of the table: what was recorded (an audit step of the order, a parcel's new
    state, an RMA's return label) that tells the customer `event`, once per `per`."""

    event: CustomerEvent
    source: Source
    match: str  # a regular expression on the step name, or the parcel's new state
    statuses: frozenset[OrderStatus] = frozenset()  # the step's status (steps only)
    per: Literal["order", "parcel", "rma", "refund"] = "order"


TRIGGERS: tuple[Trigger, ...] = (
    # Accepted: past validation, every hold released, payment authorised, stock held or
    # backordered. An order rejected on the way never gets this (nor anything after it).
    Trigger(
        CustomerEvent.CONFIRMED,
        "step",
        r"reserve-0",
        frozenset({OrderStatus.RESERVED, OrderStatus.BACKORDERED}),
    ),
    # Some quantity could not be held; told once per order (the first reservation round
    # that came up short), with the date by which it ships or is cancelled.
    Trigger(
        CustomerEvent.BACKORDERED, "step", r"reserve-\d+", frozenset({OrderStatus.BACKORDERED})
    ),
    Trigger(CustomerEvent.SHIPPED, "parcel", r"SHIPPED", per="parcel"),
    Trigger(CustomerEvent.DELIVERED, "parcel", r"DELIVERED", per="parcel"),
    # Closed as cancelled (by a person, or a backorder or approval that expired), after
    # every hold was given back.
    Trigger(CustomerEvent.CANCELLED, "step", r"closed", frozenset({OrderStatus.CANCELLED})),
    Trigger(CustomerEvent.RMA_OPENED, "return label", r".*", per="rma"),
    # Booked in the refund ledger (card: the gateway pays out right after, retried until it
    # does; account terms: the credit note is issued in that same transaction).
    Trigger(
        CustomerEvent.REFUND_ISSUED,
        "step",
        r"refund/.+",
        frozenset({OrderStatus.REFUNDED}),
        per="refund",
    ),
)


def step_events(step: str, status: OrderStatus) -> list[Trigger]:
    """The triggers an audit step fires (most steps fire none)."""
    return [
        t
        for t in TRIGGERS
        if t.source == "step" and status in t.statuses and re.fullmatch(t.match, step)
    ]


def parcel_event(state: str) -> Trigger | None:
    """The trigger a parcel's new state fires (SHIPPED, DELIVERED), if any."""
    return next(
        (t for t in TRIGGERS if t.source == "parcel" and re.fullmatch(t.match, state)), None
    )


def notice_key(order_id: str, event: CustomerEvent, about: str | None = None) -> str:
    """`<order>:customer:<event>[:<shipment, RMA or refund key>]`, at most 160 characters
    (a longer one keeps its start and ends with a digest of the whole)."""
    key = f"{order_id}:customer:{event.value}" + (f":{about}" if about else "")
    if len(key) <= 160:
        return key
    return f"{key[:127]}~{hashlib.sha256(key.encode()).hexdigest()[:32]}"


# The simulated carriers' public tracking pages (a real carrier's adapter would say its own).
TRACKING_PAGES = {
    "PARCELCO": "https://track.parcelco.example/{tracking}",
    "SWIFTPOST": "https://swiftpost.example/track?id={tracking}",
    "GLOBEX": "https://globex.example/tracking/{tracking}",
}


def tracking_link(carrier: str | None, tracking: str | None) -> str | None:
    page = TRACKING_PAGES.get(carrier or "")
    return page.format(tracking=tracking) if page and tracking else None


def carrier_name(code: str | None) -> str:
    names = {profile.code: profile.name for profile in DEFAULT_CARRIERS}
    return names.get(code or "", code or "the carrier")


class NoticeLine(BaseModel):
    sku: str
    name: str | None = None
    quantity: int
    unit_price: Decimal | None = None


class OrderFacts(BaseModel):
    """The order as the customer placed it (every message names it)."""

    order_id: str
    addressee: str
    currency: str
    total: Decimal
    """The goods at the order's prices, before shipping and tax."""
    gross_estimate: Decimal | None = None
    """At most what the order costs with shipping and tax (None: not priced)."""
    lines: list[NoticeLine]
    promised_date: date | None = None
    ship_to: str = ""


class Backorder(BaseModel):
    waiting: list[NoticeLine]
    expected_by: date
    rest_ships_now: bool


class Parcel(BaseModel):
    shipment_id: str
    carrier: str | None
    service: str | None
    tracking_number: str | None
    lines: list[NoticeLine]
    estimated_delivery: date | None = None


class Cancellation(BaseModel):
    reason: str
    charged: bool  # something was captured (never before shipment; said plainly if so)


class ReturnLabel(BaseModel):
    rma_id: str
    lines: list[NoticeLine]
    reason: str
    carrier: str | None
    tracking_number: str | None
    label_id: str | None


class RefundFacts(BaseModel):
    amount: Decimal
    currency: str
    rma_id: str | None
    credit_note: str | None = None  # account terms: the credit note number
    invoice_no: str | None = None
    invoice_nos: list[str] = Field(default_factory=list)
    """Every invoice the credit note credits (an order invoiced per wave may have several)."""


Facts = Backorder | Parcel | Cancellation | ReturnLabel | RefundFacts | None


class CustomerMessage(BaseModel):
    subject: str
    body: str


def message_for(event: CustomerEvent, order: OrderFacts, facts: Facts = None) -> CustomerMessage:
    """The subject and plain-text body of one event's message."""
    o = order.order_id
    if event == CustomerEvent.CONFIRMED:
        subject, text = f"Order {o} confirmed", _confirmation(order)
    elif event == CustomerEvent.BACKORDERED and isinstance(facts, Backorder):
        subject, text = f"Order {o}: some items are backordered", _backorder(facts)
    elif event == CustomerEvent.SHIPPED and isinstance(facts, Parcel):
        subject, text = f"Order {o} shipped: {_tracking(facts)}", _shipped(facts)
    elif event == CustomerEvent.DELIVERED and isinstance(facts, Parcel):
        subject, text = f"Order {o} delivered", _delivered(facts)
    elif event == CustomerEvent.CANCELLED and isinstance(facts, Cancellation):
        subject, text = f"Order {o} cancelled", _cancelled(facts)
    elif event == CustomerEvent.RMA_OPENED and isinstance(facts, ReturnLabel):
        subject, text = f"Return {facts.rma_id} for order {o}: your return label", _rma(facts)
    elif event == CustomerEvent.REFUND_ISSUED and isinstance(facts, RefundFacts):
        amount = f"{facts.amount} {facts.currency}"
        subject, text = f"Order {o}: refund of {amount} issued", _refund(facts)
    else:
        raise ValueError(f"no facts of the right kind for {event.value}: {facts!r}")
    body = f"Dear {order.addressee},\n\n{text}\nOrder {o}; please quote it if you write to us.\n"
    return CustomerMessage(subject=subject, body=body)


def _items(lines: list[NoticeLine], currency: str | None = None) -> str:
    rows = []
    for line in lines:
        what = f"{line.quantity} x " + (f"{line.name} ({line.sku})" if line.name else line.sku)
        if currency and line.unit_price is not None:
            amount = line.unit_price * line.quantity
            what += f" at {line.unit_price} {currency} = {amount} {currency}"
        rows.append(f"  {what}")
    return "\n".join(rows)


def _confirmation(order: OrderFacts) -> str:
    promise = (
        f"Promised delivery: by {order.promised_date.isoformat()}\n" if order.promised_date else ""
    )
    return (
        "thank you: we have accepted your order.\n\n"
        f"{_items(order.lines, order.currency)}\n"
        f"  Goods: {order.total} {order.currency} (before shipping and tax)\n"
        + (
            f"  At most {order.gross_estimate} {order.currency} with shipping and tax; "
            "each invoice bills what ships\n"
            if order.gross_estimate is not None
            else ""
        )
        + "\n"
        + (f"Delivery to: {order.ship_to}\n" if order.ship_to else "")
        + promise
        + "\nWe will write again when it ships.\n\n"
    )


def _backorder(b: Backorder) -> str:
    then = (
        "The rest of your order ships now; these follow in a parcel of their own."
        if b.rest_ships_now
        else "We ship your order complete as soon as they arrive."
    )
    return (
        "these items are not in stock yet:\n\n"
        f"{_items(b.waiting)}\n\n"
        f"Expected by: {b.expected_by.isoformat()} at the latest. {then}\n"
        "If they have not arrived by then, we cancel them and do not charge you for them.\n\n"
    )


def _tracking(p: Parcel) -> str:
    return f"{carrier_name(p.carrier)} {p.tracking_number or ''}".strip()


def _shipped(p: Parcel) -> str:
    link = tracking_link(p.carrier, p.tracking_number)
    eta = (
        f"Estimated delivery: {p.estimated_delivery.isoformat()}\n" if p.estimated_delivery else ""
    )
    return (
        f"your parcel {p.shipment_id} is on its way:\n\n"
        f"{_items(p.lines)}\n\n"
        f"Carrier: {carrier_name(p.carrier)}" + (f" ({p.service})" if p.service else "") + "\n"
        f"Tracking number: {p.tracking_number or 'not known yet'}\n"
        + (f"Track it: {link}\n" if link else "")
        + eta
        + "\n"
    )


def _delivered(p: Parcel) -> str:
    return (
        f"{carrier_name(p.carrier)} has delivered your parcel {p.shipment_id} "
        f"(tracking number {p.tracking_number or '?'}):\n\n{_items(p.lines)}\n\n"
        "Something wrong with it? You can return it: just ask us.\n\n"
    )


def _cancelled(c: Cancellation) -> str:
    money = (
        "Anything already charged is refunded."
        if c.charged
        else "Nothing has been charged; an amount held on your card, if any, is released."
    )
    return f"your order has been cancelled.\n\nReason: {c.reason}\n\n{money}\n\n"


def _rma(r: ReturnLabel) -> str:
    link = tracking_link(r.carrier, r.tracking_number)
    return (
        f"we have opened return {r.rma_id} for:\n\n{_items(r.lines)}\n\n"
        f"Reason: {r.reason}\n\n"
        f"Your return label: {carrier_name(r.carrier)}, tracking number "
        f"{r.tracking_number or '?'} (label {r.label_id or '?'}).\n"
        + (f"Track the return: {link}\n" if link else "")
        + f"Put the label on the parcel and hand it to {carrier_name(r.carrier)}. We refund "
        "you once the goods have arrived and been inspected.\n\n"
    )


def _against(invoices: list[str]) -> str:
    """ " against invoice INV-1", " against invoices INV-1 and INV-2" ("" for none)."""
    if not invoices:
        return ""
    if len(invoices) == 1:
        return f" against invoice {invoices[0]}"
    return f" against invoices {', '.join(invoices[:-1])} and {invoices[-1]}"


def _refund(r: RefundFacts) -> str:
    what = f" for return {r.rma_id}" if r.rma_id else ""
    if r.credit_note:
        how = (
            f"as credit note {r.credit_note}"
            + _against(r.invoice_nos or ([r.invoice_no] if r.invoice_no else []))
            + ": you owe us that much less."
        )
    else:
        how = "to the card you paid with; it can take a few days to show on your statement."
    return f"we have refunded {r.amount} {r.currency}{what}, {how}\n\n"
