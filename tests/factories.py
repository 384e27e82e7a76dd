"""Test data: orders with unique ids, SKUs with their own stock, read-model look-ups."""

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from activities.catalog import load_catalog
from activities.db.models import CarrierLabel, OrderEvent, Payment, Stock
from domain.order import Order

ADDRESSES = {
    "NL": {
        "name": "Anna de Vries",
        "street": "Prinsengracht 263",
        "city": "Amsterdam",
        "postal_code": "1016 GV",
        "country": "NL",
    },
    "DE": {
        "name": "Jonas Weber",
        "street": "Hafenstrasse 12",
        "city": "Frankfurt",
        "postal_code": "60327",
        "country": "DE",
    },
    "FR": {
        "name": "Atelier Dupont SARL",
        "street": "14 Rue de la Republique",
        "city": "Lyon",
        "postal_code": "69002",
        "country": "FR",
    },
    "US": {
        "name": "Hudson Supply Co",
        "street": "100 River Street",
        "city": "Hoboken",
        "postal_code": "07030",
        "country": "US",
    },
    "ES": {
        "name": "Lucia Garcia",
        "street": "Calle Mayor 5",
        "city": "Madrid",
        "postal_code": "28013",
        "country": "ES",
    },
}


def make_order(
    lines: dict[str, int],
    *,
    customer: str = "C-WEB-001",
    country: str = "NL",
    price: str = "10.00",
    **extra: Any,
) -> Order:
    """A valid order with a fresh id (and PO, so duplicate detection leaves it alone)."""
    tag = uuid.uuid4().hex[:10]
    return Order.model_validate(
        {
            "order_id": f"t-{tag}",
            "channel": "web",
            "customer_id": customer,
            "currency": "EUR",
            "lines": [
                {"sku": sku, "quantity": qty, "unit_price": price} for sku, qty in lines.items()
            ],
            "ship_to": ADDRESSES[country],
            "promised_days": 5,
            "purchase_order": f"PO-{tag}",
            **extra,
        }
    )


def new_sku(engine: Engine, stock: dict[str, int], *, safety: int = 0, price: str = "10.00") -> str:
    """A product of its own, stocked as given per warehouse, so tests never share stock."""
    sku = f"T-{uuid.uuid4().hex[:8].upper()}"
    load_catalog(
        engine,
        {
            "products": [
                {
                    "sku": sku,
                    "name": "test item",
                    "list_price": price,
                    "currency": "EUR",
                    "max_per_order": 1000,
                }
            ],
            "stock": [
                {"sku": sku, "warehouse": w, "on_hand": n, "safety_stock": safety}
                for w, n in stock.items()
            ],
        },
    )
    return sku


def stock_of(engine: Engine, sku: str) -> dict[str, tuple[int, int]]:
    """{warehouse: (on_hand, reserved)}."""
    with Session(engine) as session:
        return {
            row.warehouse: (row.on_hand, row.reserved)
            for row in session.scalars(select(Stock).where(Stock.sku == sku))
        }


def steps_of(engine: Engine, order_id: str) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(OrderEvent.step)
                .where(OrderEvent.order_id == order_id)
                .order_by(OrderEvent.id)
            )
        )


def live_labels(engine: Engine, order_id: str) -> int:
    with Session(engine) as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(CarrierLabel)
                .where(
                    CarrierLabel.idempotency_key.like(f"{order_id}-%"),
                    CarrierLabel.voided.is_(False),
                )
            )
            or 0
        )


def payments_of(engine: Engine, order_id: str) -> dict[str, Decimal]:
    with Session(engine) as session:
        return {
            p.kind: Decimal(p.amount_minor) / 100
            for p in session.scalars(select(Payment).where(Payment.order_id == order_id))
        }


def net30_customer(engine: Engine, limit: str) -> str:
    """A Net-30 account of its own, so exposure left by other tests cannot leak in."""
    customer_id = f"C-T-{uuid.uuid4().hex[:8].upper()}"
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "name": "Test account",
        "payment_terms": "net_30",
        "credit_limit": limit,
        "currency": "EUR",
        "fulfilment_policy": "ship_complete",
    }
    load_catalog(engine, {"customers": [row]})
    return customer_id


def invoice_no(engine: Engine, order_id: str) -> str:
    """The number the order's invoice was issued under (INV-2026-000042)."""
    from activities.db.models import Invoice

    with Session(engine) as session:
        number = session.scalar(select(Invoice.invoice_no).where(Invoice.order_id == order_id))
    assert number is not None, f"order {order_id} has no invoice"
    return number
