"""The invariants of money and stock, checked over the read model (`orderflow check`).

Each rule is written once, named, and documented in README ("Invariants"). A rule returns
one `Violation` per order (or stock row) that breaks it; `exceptions` lists what is not wrong
but waits for a person (a parcel that left after its order was stopped).

The rules by theme: `money` (billed-shipped, captured-within-authorised,
refunded-within-captured, credited-within-invoiced: the payments ledger, the invoices of
each capture, the refunds and credit notes) and `operations` (stock-held, stock-available,
warehouse-load, one-live-label, nothing-left-held, approval-before-stock).
"""

from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from activities.db.models import OrderLineRecord, ShipmentRecord, StockReservation
from activities.invariants.common import Violation
from activities.invariants.money import (
    billed_equals_shipped,
    captured_within_authorised,
    credited_within_invoiced,
    ledger,
    refunded_within_captured,
)
from activities.invariants.operations import (
    approval_before_stock,
    one_live_label,
    stock_equals_live_holds,
    stopped_orders_hold_nothing,
    warehouse_loads_counted,
)

__all__ = ["Violation", "check_database", "exceptions"]


def check_database(
    engine: Engine, manager_threshold: Decimal, orders: set[str] | None = None
) -> list[Violation]:
    """Every rule that the read model alone can answer; `orders` limits it to those orders
    (and the stock of their SKUs), for a test that shares its database with others."""
    with Session(engine) as session:
        money = ledger(session)  # read once, used by four rules
        found = [
            *billed_equals_shipped(session, money),
            *captured_within_authorised(money),
            *refunded_within_captured(session, money),
            *credited_within_invoiced(session),
            *one_live_label(session),
            *stopped_orders_hold_nothing(session, money),
            *approval_before_stock(session, manager_threshold),
        ]
        found = [v for v in found if orders is None or v.order_id in orders]
        skus = None
        if orders is not None:
            skus = set(
                session.scalars(
                    select(OrderLineRecord.sku).where(OrderLineRecord.order_id.in_(orders))
                )
            )
        warehouses = None
        if orders is not None:
            warehouses = set(
                session.scalars(
                    select(StockReservation.warehouse).where(StockReservation.order_id.in_(orders))
                )
            )
        return (
            stock_equals_live_holds(session, skus)
            + warehouse_loads_counted(session, warehouses)
            + found
        )


def exceptions(engine: Engine, orders: set[str] | None = None) -> list[Violation]:
    """Not violations: situations the product hands to a person (listed by `check`)."""
    with Session(engine) as session:
        rows = [
            row
            for row in session.scalars(
                select(ShipmentRecord).where(ShipmentRecord.state == "SHIPPED_AFTER_CANCEL")
            )
            if orders is None or row.order_id in orders
        ]
        return [
            Violation(
                order_id=row.order_id,
                rule="shipped-after-stop",
                detail=f"{row.shipment_id} left after the order was stopped: recall or bill it",
            )
            for row in rows
        ]
