"""A label bought just before a crash is found and voided, whatever carrier the retry books."""

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carriers import (
    Carrier,
    CarrierError,
    CarrierUnavailable,
    Label,
    carriers_from_config,
)
from activities.db.models import CarrierLabel, ShipmentRecord
from activities.shipping import DatabaseLabelBook, ShippingActivities
from domain.fulfilment import Allocation, Demand
from domain.geography import locate
from domain.shipping import DEFAULT_CARRIERS
from domain.steps import BookingRequest


def live_labels(engine: Engine, shipment_id: str) -> list[str]:
    with Session(engine) as session:
        rows = session.query(CarrierLabel).filter(
            CarrierLabel.idempotency_key.like(f"{shipment_id}@%"), CarrierLabel.voided.is_(False)
        )
        return sorted(row.carrier for row in rows)


def one_parcel_from_ams(order_id: str) -> BookingRequest:
    """A booking of one parcel from AMS to Amsterdam, due in five days."""
    destination = locate("NL", "1016 GV")
    assert destination is not None
    return BookingRequest(
        order_id=order_id,
        currency="EUR",
        destination=destination,
        promised_date=date.today() + timedelta(days=5),
        allocations=[Allocation(warehouse="AMS", lines=[Demand(sku="KB-100", quantity=1)])],
    )


def shipping_without_latency(engine: Engine) -> tuple[list[Carrier], ShippingActivities]:
    """The simulated carriers (no latency, none down) and the shipping steps over them."""
    carriers = list(
        carriers_from_config(DEFAULT_CARRIERS, DatabaseLabelBook(engine), set(), 0.0, (0, 0))
    )
    return carriers, ShippingActivities(engine, carriers)


def left_booking_at_parcelco(engine: Engine, order_id: str) -> None:
    """An attempt wrote the AMS parcel's intent (BOOKING, PARCELCO pending) and died."""
    with Session(engine) as session, session.begin():
        session.add(
            ShipmentRecord(
                shipment_id=f"{order_id}-AMS",
                order_id=order_id,
                warehouse="AMS",
                state="BOOKING",
                detail={"pending": ["PARCELCO"]},
            )
        )


def test_a_label_bought_before_a_crash_is_voided_when_the_retry_falls_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = DatabaseLabelBook(engine)
    carriers, shipping = shipping_without_latency(engine)
    order_id = f"t-{uuid.uuid4().hex[:10]}"
    shipment_id = f"{order_id}-AMS"
    # Attempt 1 wrote its intent, bought a PARCELCO label, and the worker died before saving.
    left_booking_at_parcelco(engine, order_id)
    labels.add(
        Label(
            label_id=f"PARCELCO-LBL-{uuid.uuid4().hex[:12]}",
            carrier="PARCELCO",
            service="ground",
            tracking_number="PC0000000001",
            idempotency_key=f"{shipment_id}@PARCELCO",
            price=Decimal("4.10"),
            currency="EUR",
        )
    )
    parcelco = next(c for c in carriers if c.code == "PARCELCO")
    parcelco.down = True  # the retry cannot book there: it falls back to another carrier
    request = one_parcel_from_ams(order_id)
    env = ActivityEnvironment()
    # The fallback label is bought, but the stray at PARCELCO cannot be voided while it is
    # down: the attempt fails (and is retried) rather than forget a label that may be live.
    with pytest.raises(CarrierUnavailable):
        env.run(shipping.book_shipments, request)
    parcelco.down = False

    def full(*args: object) -> Label:
        raise CarrierError("PARCELCO takes no more bookings today")

    monkeypatch.setattr(parcelco, "book", full)  # up again, but it refuses new bookings
    [shipment] = env.run(shipping.book_shipments, request)
    assert shipment.carrier != "PARCELCO"
    assert live_labels(engine, shipment_id) == [shipment.carrier]

    env.run(shipping.void_labels, order_id)  # the order is cancelled after all
    assert live_labels(engine, shipment_id) == []


def test_an_attempt_that_outlived_its_orders_stop_buys_no_label(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A booking attempt still quoting while its order was stopped and its shipment voided
    (an attempt the workflow had given up on) must not buy a label: the shipment is VOIDED
    by the time it would note its carrier, so it stops there."""
    carriers, shipping = shipping_without_latency(engine)
    order_id = f"t-{uuid.uuid4().hex[:10]}"
    shipment_id = f"{order_id}-AMS"
    request = one_parcel_from_ams(order_id)
    for carrier in carriers:  # the stop lands while this attempt asks for quotes
        quote = carrier.quote

        def stopped_meanwhile(*args: object, _quote=quote) -> object:  # type: ignore[no-untyped-def]
            with Session(engine) as session, session.begin():
                if session.get(ShipmentRecord, shipment_id) is None:
                    session.add(
                        ShipmentRecord(
                            shipment_id=shipment_id,
                            order_id=order_id,
                            warehouse="AMS",
                            state="VOIDED",
                            detail={"pending": []},
                        )
                    )
            return _quote(*args)

        monkeypatch.setattr(carrier, "quote", stopped_meanwhile)

    with pytest.raises(ApplicationError) as stopped:
        ActivityEnvironment().run(shipping.book_shipments, request)
    assert stopped.value.type == "BookingStopped" and stopped.value.non_retryable
    assert live_labels(engine, shipment_id) == []
    with Session(engine) as session:
        row = session.get(ShipmentRecord, shipment_id)
        assert row is not None and row.state == "VOIDED"


@pytest.mark.parametrize(
    "booked_first", [False, True], ids=["voided-while-booking", "voided-label"]
)
def test_a_retry_after_its_orders_stop_buys_no_label_and_returns_no_voided_one(
    engine: Engine, booked_first: bool
) -> None:
    """The order was stopped and its shipment voided before this attempt began: the attempt
    stops at once (non-retryable), whether the shipment was voided mid-booking (its detail
    holds only the carriers it was trying) or after its label was bought (a voided label is
    not a booking to hand back)."""
    _, shipping = shipping_without_latency(engine)
    order_id = f"t-{uuid.uuid4().hex[:10]}"
    shipment_id = f"{order_id}-AMS"
    request = one_parcel_from_ams(order_id)
    env = ActivityEnvironment()
    if booked_first:
        env.run(shipping.book_shipments, request)
    else:
        left_booking_at_parcelco(engine, order_id)  # an attempt died mid-booking
    assert env.run(shipping.void_labels, order_id) == 1  # the order is stopped

    with pytest.raises(ApplicationError) as stopped:
        env.run(shipping.book_shipments, request)
    assert stopped.value.type == "BookingStopped" and stopped.value.non_retryable
    assert live_labels(engine, shipment_id) == []
    with Session(engine) as session:
        row = session.get(ShipmentRecord, shipment_id)
        assert row is not None and row.state == "VOIDED"
