"""Test data: orders with unique ids, SKUs with their own stock, accounts of a test's own,
an order's read-model rows and its capture, read-model look-ups."""

import asyncio
import json
import uuid
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.billing import MoneyRules
from activities.catalog import load_catalog
from activities.db.models import (
    CarrierLabel,
    OrderEvent,
    OrderLineRecord,
    OrderRecord,
    Payment,
    ShipmentRecord,
    Stock,
)
from activities.payments import PaymentActivities, SimulatedGateway
from domain.order import Order
from domain.policy import CustomerTerms
from domain.state import OrderState
from domain.statuses import FulfilmentPolicy, PaymentTerms
from domain.steps import CaptureRequest, PaymentAuthorization, PaymentRequest

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

PREPAID = CustomerTerms(
    customer_id="C-WEB-001",
    name="Web shop customer",
    payment_terms=PaymentTerms.PREPAID,
    credit_limit=Decimal(0),
    fulfilment_policy=FulfilmentPolicy.SHIP_WHEN_AVAILABLE,
    priority=0,
)


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


def new_warehouse(engine: Engine, capacity: int) -> str:
    """A warehouse of its own in Amsterdam (the orders' nearest), `capacity` orders a day."""
    code = f"W{uuid.uuid4().hex[:6].upper()}"
    load_catalog(
        engine,
        {
            "warehouses": [
                {
                    "code": code,
                    "name": "test warehouse",
                    "country": "NL",
                    "latitude": 52.37,
                    "longitude": 4.9,
                    "daily_capacity": capacity,
                }
            ]
        },
    )
    return code


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


def new_customer(engine: Engine, **fields: Any) -> str:
    """An account of the test's own (prepaid, shipped as stock allows, unless `fields` say
    otherwise), so exposure or mail left by other tests cannot leak in."""
    customer_id = f"C-T-{uuid.uuid4().hex[:8].upper()}"
    row: dict[str, Any] = {
        "customer_id": customer_id,
        "name": "Test account",
        "payment_terms": "prepaid",
        "credit_limit": "0",
        "currency": "EUR",
        "fulfilment_policy": "ship_when_available",
        **fields,
    }
    load_catalog(engine, {"customers": [row]})
    return customer_id


def net30_customer(engine: Engine, limit: str) -> str:
    """A Net-30 account of its own, so exposure left by other tests cannot leak in."""
    return new_customer(
        engine, payment_terms="net_30", credit_limit=limit, fulfilment_policy="ship_complete"
    )


def add_order(
    session: Session, order: Order, *, status: str = "DELIVERED", lines: bool = True
) -> None:
    """The order's read-model record as intake writes it and, unless `lines` is false, its
    lines after it (they refer to it)."""
    session.add(
        OrderRecord(
            order_id=order.order_id,
            customer_id=order.customer_id,
            channel=order.channel.value,
            status=status,
            currency=order.currency,
            total=order.total,
            fingerprint=order.order_id,
            promised_date=None,
            order=order.model_dump(mode="json"),
            routing=None,
        )
    )
    if not lines:
        return
    session.flush()  # the lines refer to it
    for line in order.lines:
        session.add(
            OrderLineRecord(
                order_id=order.order_id,
                sku=line.sku,
                quantity=line.quantity,
                unit_price=line.unit_price,
            )
        )


def delivered_parcel(order_id: str) -> ShipmentRecord:
    """The order's one parcel: shipped from AMS (NL) and delivered."""
    return ShipmentRecord(
        shipment_id=f"{order_id}-AMS", order_id=order_id, warehouse="AMS", state="DELIVERED"
    )


def payments(engine: Engine, rules: MoneyRules | None = None) -> PaymentActivities:
    """The real payment activities, on a gateway that answers at once."""
    return PaymentActivities(engine, SimulatedGateway(latency_ms=(0, 0)), rules)


def authorize(
    engine: Engine,
    order: Order,
    terms: CustomerTerms = PREPAID,
    rules: MoneyRules | None = None,
) -> PaymentAuthorization:
    """The real authorize activity, for the order's total."""
    request = PaymentRequest(
        order_id=order.order_id, customer=terms, amount=order.total, currency=order.currency
    )
    result: PaymentAuthorization = ActivityEnvironment().run(
        payments(engine, rules).authorize_payment, request
    )
    return result


def capture(
    engine: Engine,
    order: Order,
    auth: PaymentAuthorization,
    terms: CustomerTerms = PREPAID,
    *,
    rules: MoneyRules | None = None,
    delivered: dict[str, int] | None = None,
) -> None:
    """The real capture activity: takes the money and issues the invoice (and its posting);
    `delivered` units per SKU: with the invoice's document."""
    request = CaptureRequest(
        order_id=order.order_id,
        authorization=auth,
        amount=order.total,
        customer=terms,
        delivered=delivered,
    )
    ActivityEnvironment().run(payments(engine, rules).capture_payment, request)


def invoice_no(engine: Engine, order_id: str) -> str:
    """The number the order's invoice was issued under (INV-2026-000042)."""
    from activities.db.models import Invoice

    with Session(engine) as session:
        number = session.scalar(select(Invoice.invoice_no).where(Invoice.order_id == order_id))
    assert number is not None, f"order {order_id} has no invoice"
    return number


def gross_by_the_tables(goods: Decimal, country: str, zone: str | None) -> Decimal:
    """What `goods` (EUR, net, standard-rated) cost the customer by the bundled tables
    (domain/data), worked out here from the data files, not by the code under test: the EUR
    shipping charge of `zone` ("dearest": the one the gross estimate reserves) unless the goods
    reach `free_from`, plus `country`'s standard VAT on both, rounded half up once."""
    data = Path(__file__).parents[1] / "domain" / "data"
    eur = json.loads((data / "charges.json").read_text())["shipping"]["EUR"]
    prices = {name: Decimal(price) for name, price in eur["rule"]["prices"].items()}
    shipping = Decimal(0)
    if zone is not None and goods < Decimal(eur["free_from"]):
        shipping = max(prices.values()) if zone == "dearest" else prices[zone]
    rate = Decimal(json.loads((data / "tax_rates.json").read_text())["vat"][country]["standard"])
    net = goods + shipping
    tax = (net * rate / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return net + tax


async def until(
    client: Client, order_id: str, check: Callable[[OrderState], bool], timeout: float = 30
) -> OrderState:
    """Poll the order's own state until `check` holds (e.g. exactly BACKORDERED again, where
    `orders.wait_for` would also accept a later status)."""
    from starter import orders

    for _ in range(int(timeout * 5)):
        state = await orders.state_of(client, order_id)
        if check(state):
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"{order_id}: condition not met; last state {state.status}")
