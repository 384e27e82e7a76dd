"""`orderflow check` catches what it promises to: each rule fails on a read model that breaks it."""

import uuid
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from activities.db.models import (
    CarrierLabel,
    OrderLineRecord,
    OrderRecord,
    Payment,
    ShipmentRecord,
    StockReservation,
)
from activities.invariants import check_database, exceptions
from tests.factories import new_sku, new_warehouse

THRESHOLD = Decimal("5000")


def rules(engine: Engine, order_id: str) -> list[str]:
    return sorted(v.rule for v in check_database(engine, THRESHOLD, {order_id}))


def an_order(engine: Engine, status: str, sku: str, quantity: int = 2) -> str:
    order_id = f"inv-{uuid.uuid4().hex[:10]}"
    with Session(engine) as session, session.begin():
        session.add(
            OrderRecord(
                order_id=order_id,
                customer_id="C-WEB-001",
                channel="web",
                status=status,
                currency="EUR",
                total=Decimal("10.00") * quantity,
                fingerprint=uuid.uuid4().hex,
                order={},
            )
        )
        session.flush()
        session.add(
            OrderLineRecord(
                order_id=order_id, sku=sku, quantity=quantity, unit_price=Decimal("10.00")
            )
        )
    return order_id


def pay(engine: Engine, order_id: str, kind: str, minor: int) -> None:
    with Session(engine) as session, session.begin():
        session.add(
            Payment(
                idempotency_key=f"{order_id}/{kind}",
                order_id=order_id,
                kind=kind,
                amount_minor=minor,
                currency="EUR",
                reference=kind.lower(),
            )
        )


def test_a_consistent_completed_order_passes(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order_id = an_order(engine, "COMPLETED", sku)
    pay(engine, order_id, "AUTHORIZE", 2000)
    pay(engine, order_id, "CAPTURE", 2000)
    shipment_id = f"{order_id}-AMS"
    with Session(engine) as session, session.begin():
        session.add(
            ShipmentRecord(
                shipment_id=shipment_id,
                order_id=order_id,
                warehouse="AMS",
                state="DELIVERED",
                detail={"lines": [{"sku": sku, "quantity": 2}]},
            )
        )
        session.add(
            CarrierLabel(
                label_id=f"L-{uuid.uuid4().hex[:12]}",
                idempotency_key=f"{shipment_id}@PARCELCO",
                carrier="PARCELCO",
                service="standard",
                tracking_number="PC1",
                price=Decimal("4.00"),
                currency="EUR",
            )
        )
    assert rules(engine, order_id) == []


def test_each_broken_promise_is_named_with_its_rule(engine: Engine) -> None:
    warehouse = new_warehouse(engine, capacity=10)  # its load is this test's alone
    sku = new_sku(engine, {warehouse: 5})
    # Cancelled, yet still holding stock and an authorisation nobody voided.
    order_id = an_order(engine, "CANCELLED", sku)
    pay(engine, order_id, "AUTHORIZE", 2000)
    with Session(engine) as session, session.begin():
        session.add(
            StockReservation(
                idempotency_key=f"{order_id}/0/{sku}/{warehouse}",
                order_id=order_id,
                sku=sku,
                warehouse=warehouse,
                quantity=2,
            )
        )  # the hold row without its `reserved` units, nor its warehouse's load counted
    assert rules(engine, order_id) == [
        "nothing-left-held",
        "nothing-left-held",
        "stock-held",
        "warehouse-load",
    ]

    # Completed and billed more than shipped, captured above its authorisation.
    billed = an_order(engine, "COMPLETED", new_sku(engine, {"AMS": 5}))
    pay(engine, billed, "AUTHORIZE", 1000)
    pay(engine, billed, "CAPTURE", 2000)
    assert rules(engine, billed) == ["billed-shipped", "captured-within-authorised"]

    # A booked shipment with two live labels (a stray from another carrier).
    labelled = an_order(engine, "AWAITING_SHIPMENT", new_sku(engine, {"AMS": 5}))
    with Session(engine) as session, session.begin():
        session.add(
            ShipmentRecord(
                shipment_id=f"{labelled}-AMS", order_id=labelled, warehouse="AMS", state="BOOKED"
            )
        )
        for carrier in ("PARCELCO", "SWIFTPOST"):
            session.add(
                CarrierLabel(
                    label_id=f"L-{uuid.uuid4().hex[:12]}",
                    idempotency_key=f"{labelled}-AMS@{carrier}",
                    carrier=carrier,
                    service="standard",
                    tracking_number=carrier[:2],
                    price=Decimal("4.00"),
                    currency="EUR",
                )
            )
    assert rules(engine, labelled) == ["one-live-label"]


def test_a_parcel_that_left_after_its_order_stopped_is_an_exception_not_a_violation(
    engine: Engine,
) -> None:
    order_id = an_order(engine, "CANCELLED", new_sku(engine, {"AMS": 5}))
    with Session(engine) as session, session.begin():
        session.add(
            ShipmentRecord(
                shipment_id=f"{order_id}-AMS",
                order_id=order_id,
                warehouse="AMS",
                state="SHIPPED_AFTER_CANCEL",
            )
        )
    assert rules(engine, order_id) == []
    assert [v.rule for v in exceptions(engine, {order_id})] == ["shipped-after-stop"]
