"""Which recorded step tells the customer what, the key that makes it once, and the text."""

from datetime import date
from decimal import Decimal
from email import message_from_string, policy

import pytest

from activities.mail import message_id
from domain.customer_notices import (
    TRIGGERS,
    Backorder,
    Cancellation,
    CustomerEvent,
    NoticeLine,
    OrderFacts,
    Parcel,
    RefundFacts,
    ReturnLabel,
    message_for,
    notice_key,
    parcel_event,
    step_events,
)
from domain.statuses import OrderStatus

S = OrderStatus
ORDER = OrderFacts(
    order_id="web-1001",
    addressee="Anna de Vries",
    currency="EUR",
    total=Decimal("119.70"),
    gross_estimate=Decimal("150.79"),
    lines=[
        NoticeLine(
            sku="KB-100", name="Mechanical keyboard", quantity=2, unit_price=Decimal("49.90")
        ),
        NoticeLine(sku="MS-200", name="Wireless mouse", quantity=1, unit_price=Decimal("19.90")),
    ],
    promised_date=date(2030, 6, 12),
    ship_to="Anna de Vries, Prinsengracht 263, 1016 GV Amsterdam, NL",
)
KEYBOARDS = [NoticeLine(sku="KB-100", name="Mechanical keyboard", quantity=2)]


@pytest.mark.parametrize(
    ("step", "status", "events"),
    [
        ("reserve-0", S.RESERVED, [CustomerEvent.CONFIRMED]),
        ("reserve-0", S.BACKORDERED, [CustomerEvent.CONFIRMED, CustomerEvent.BACKORDERED]),
        ("reserve-2", S.BACKORDERED, [CustomerEvent.BACKORDERED]),
        ("reserve-2", S.RESERVED, []),
        ("closed", S.CANCELLED, [CustomerEvent.CANCELLED]),
        ("closed", S.REJECTED, []),  # never accepted: never confirmed, nothing to take back
        ("closed", S.FAILED, []),
        ("refund/web-1001/RMA-web-1001-1", S.REFUNDED, [CustomerEvent.REFUND_ISSUED]),
        ("received", S.RECEIVED, []),
        ("validated", S.VALIDATED, []),
        ("shipped", S.SHIPPED, []),  # told per parcel, with its tracking number
        ("RMA-web-1001-1/opened", S.RETURN_REQUESTED, []),  # told when its label is booked
    ],
)
def test_each_step_fires_its_events(
    step: str, status: OrderStatus, events: list[CustomerEvent]
) -> None:
    assert [t.event for t in step_events(step, status)] == events


def test_parcels_tell_shipped_and_delivered_only() -> None:
    assert parcel_event("SHIPPED").event == CustomerEvent.SHIPPED  # type: ignore[union-attr]
    assert parcel_event("DELIVERED").event == CustomerEvent.DELIVERED  # type: ignore[union-attr]
    for state in ("BOOKED", "LOST", "SHIPPED_AFTER_CANCEL", "VOIDED"):
        assert parcel_event(state) is None


def test_every_event_has_a_trigger() -> None:
    assert {t.event for t in TRIGGERS} == set(CustomerEvent)


def test_keys_are_per_order_event_and_what_it_is_about() -> None:
    assert notice_key("web-1001", CustomerEvent.CONFIRMED) == "web-1001:customer:order_confirmed"
    assert (
        notice_key("web-1001", CustomerEvent.SHIPPED, "web-1001-AMS")
        == "web-1001:customer:shipped:web-1001-AMS"
    )
    long = notice_key("o" * 64, CustomerEvent.REFUND_ISSUED, "k" * 160)
    other = notice_key("o" * 64, CustomerEvent.REFUND_ISSUED, "k" * 159 + "x")
    assert len(long) == len(other) == 160 and long != other


def test_the_confirmation_carries_lines_totals_and_promise() -> None:
    message = message_for(CustomerEvent.CONFIRMED, ORDER)
    assert message.subject == "Order web-1001 confirmed"
    assert message.body.startswith("Dear Anna de Vries,")
    assert "2 x Mechanical keyboard (KB-100) at 49.90 EUR = 99.80 EUR" in message.body
    assert "Goods: 119.70 EUR (before shipping and tax)" in message.body
    assert "At most 150.79 EUR with shipping and tax; each invoice bills what ships" in (
        message.body
    )
    unpriced = message_for(
        CustomerEvent.CONFIRMED, ORDER.model_copy(update={"gross_estimate": None})
    )
    assert "At most" not in unpriced.body
    assert "Promised delivery: by 2030-06-12" in message.body
    assert "Prinsengracht 263" in message.body


def test_a_backorder_says_what_waits_and_by_when() -> None:
    later = Backorder(waiting=KEYBOARDS, expected_by=date(2030, 6, 26), rest_ships_now=True)
    body = message_for(CustomerEvent.BACKORDERED, ORDER, later).body
    assert "2 x Mechanical keyboard (KB-100)" in body
    assert "Expected by: 2030-06-26" in body and "rest of your order ships now" in body
    whole = later.model_copy(update={"rest_ships_now": False})
    assert (
        "complete as soon as they arrive"
        in message_for(CustomerEvent.BACKORDERED, ORDER, whole).body
    )


def test_a_shipped_parcel_names_carrier_tracking_number_and_link() -> None:
    parcel = Parcel(
        shipment_id="web-1001-AMS",
        carrier="PARCELCO",
        service="standard",
        tracking_number="PC0123456789",
        lines=KEYBOARDS,
        estimated_delivery=date(2030, 6, 10),
    )
    message = message_for(CustomerEvent.SHIPPED, ORDER, parcel)
    assert message.subject == "Order web-1001 shipped: ParcelCo Economy PC0123456789"
    assert "Carrier: ParcelCo Economy (standard)" in message.body
    assert "Tracking number: PC0123456789" in message.body
    assert "Track it: https://track.parcelco.example/PC0123456789" in message.body
    assert "Estimated delivery: 2030-06-10" in message.body
    delivered = message_for(CustomerEvent.DELIVERED, ORDER, parcel)
    assert delivered.subject == "Order web-1001 delivered"
    assert "delivered your parcel web-1001-AMS (tracking number PC0123456789)" in delivered.body


def test_cancellation_return_label_and_refund() -> None:
    cancelled = message_for(
        CustomerEvent.CANCELLED, ORDER, Cancellation(reason="customer asked", charged=False)
    )
    assert (
        "Reason: customer asked" in cancelled.body and "Nothing has been charged" in cancelled.body
    )
    label = ReturnLabel(
        rma_id="RMA-web-1001-1",
        lines=KEYBOARDS,
        reason="too loud",
        carrier="SWIFTPOST",
        tracking_number="SP000000000042",
        label_id="lbl-9",
    )
    rma = message_for(CustomerEvent.RMA_OPENED, ORDER, label)
    assert rma.subject == "Return RMA-web-1001-1 for order web-1001: your return label"
    assert "SwiftPost, tracking number SP000000000042 (label lbl-9)" in rma.body
    assert "https://swiftpost.example/track?id=SP000000000042" in rma.body
    card = RefundFacts(amount=Decimal("99.80"), currency="EUR", rma_id="RMA-web-1001-1")
    refund = message_for(CustomerEvent.REFUND_ISSUED, ORDER, card)
    assert refund.subject == "Order web-1001: refund of 99.80 EUR issued"
    assert "to the card you paid with" in refund.body
    note = card.model_copy(update={"credit_note": "CN-2030-000001", "invoice_no": "INV-2030-7"})
    credited = message_for(CustomerEvent.REFUND_ISSUED, ORDER, note).body
    assert "as credit note CN-2030-000001 against invoice INV-2030-7" in credited
    waves = note.model_copy(update={"invoice_nos": ["INV-2030-7", "INV-2030-9"]})
    both = message_for(CustomerEvent.REFUND_ISSUED, ORDER, waves).body
    assert "CN-2030-000001 against invoices INV-2030-7 and INV-2030-9: you owe" in both


def test_an_event_without_its_facts_is_refused() -> None:
    with pytest.raises(ValueError, match="shipped"):
        message_for(CustomerEvent.SHIPPED, ORDER)


def test_the_message_id_is_valid_and_stable() -> None:
    key = "web-1001:customer:shipped:web-1001-AMS/anna.devries@example.com"
    assert message_id(key) == message_id(key)
    assert message_id(key) != message_id(key.replace("AMS", "FRA"))
    parsed = message_from_string(f"Message-ID: {message_id(key)}\n\n", policy=policy.default)
    header = parsed["Message-ID"]
    assert not header.defects, header.defects
    assert str(header).count("@") == 1
