"""The read model as the client sees it: orders Temporal no longer has (namespace retention).

Temporal keeps a closed order's history only for the namespace's retention period; the
`orders`, `order_events` and `shipments` tables keep it for good. `status` and `list --all`
answer from here when Temporal has forgotten an order, and say so.
"""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.customer_notices import NOT_CONFIGURED
from activities.db.models import (
    Invoice,
    Notification,
    OrderEvent,
    OrderRecord,
    OutboxEmail,
    Refund,
    ShipmentRecord,
)
from activities.invoices import invoices_of
from domain.fulfilment import Shipment
from domain.money import from_minor
from domain.state import AuditEntry, OrderState
from domain.statuses import OrderStatus
from starter.orders import NO_ANSWER, UnknownOrder, UserError, list_orders, state_of
from workers.settings import Settings

T = TypeVar("T")

TEMPORAL = "temporal"
READ_MODEL = "read model"
NO_WORKER = "read model, no worker answered"

SHIPMENT_FLAGS = {
    "SHIPPED": {"shipped": True},
    "DELIVERED": {"shipped": True, "delivered": True},
    "LOST": {"shipped": True, "lost": True},
    "SHIPPED_AFTER_CANCEL": {"shipped": True},
}


async def from_read_model(settings: Settings, read: Callable[..., T], *args: Any) -> T:
    """Run `read(engine, *args)` off the event loop on a short-lived engine of its own."""
    from activities.db.engine import make_engine

    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        return await asyncio.to_thread(read, engine, *args)
    finally:
        engine.dispose()


async def find_order(client: Client, settings: Settings, order_id: str) -> tuple[OrderState, str]:
    """The order from its workflow, or from the read model once Temporal has forgotten it."""
    try:
        return await state_of(client, order_id), TEMPORAL
    except UnknownOrder:
        source = READ_MODEL
    except RPCError as error:
        if error.status != RPCStatusCode.FAILED_PRECONDITION:  # "no poller seen": no worker
            raise
        source = NO_WORKER
    state = await from_read_model(settings, order_state, order_id)
    if state is None and source == NO_WORKER:
        raise UserError(f"order {order_id}: {NO_ANSWER}")
    if state is None:
        raise UnknownOrder(f"unknown order {order_id}")
    return state, source


async def all_orders(
    client: Client, settings: Settings, status: OrderStatus | None, limit: int
) -> list[dict[str, Any]]:
    """Every order: Temporal's rows, then those only the read model still has; oldest first."""
    everything = await list_orders(client, None, limit=10**9)  # one row per order
    known = {row["order_id"] for row in everything}
    rows = [row for row in everything if status is None or row["status"] == status.value]
    rows += await from_read_model(settings, order_rows, status, known)
    rows.sort(key=lambda row: row["started_at"])
    return rows[:limit]


def order_state(engine: Engine, order_id: str) -> OrderState | None:
    """The order as its read model records it; None when it was never placed here."""
    with Session(engine) as session:
        row = session.get(OrderRecord, order_id)
        if row is None:
            return None
        events = session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.id)
        ).all()
        parcels = session.scalars(
            select(ShipmentRecord)
            .where(ShipmentRecord.order_id == order_id)
            .order_by(ShipmentRecord.shipment_id)
        ).all()
        content = row.order
        return OrderState(
            order_id=row.order_id,
            status=OrderStatus(row.status),
            customer_id=row.customer_id,
            channel=row.channel,
            currency=row.currency,
            total=row.total,
            lines=[
                {k: line[k] for k in ("sku", "quantity", "unit_price")}
                for line in content.get("lines", [])
            ],
            promised_date=row.promised_date,
            escalation_level=row.escalation_level,
            reason=row.reason,
            shipments=[
                Shipment(
                    shipment_id=p.shipment_id,
                    warehouse=p.warehouse,
                    lines=[],
                    carrier=p.carrier,
                    service=p.service,
                    tracking_number=p.tracking_number,
                    label_id=p.label_id,
                    shipping_cost=p.cost,
                    **SHIPMENT_FLAGS.get(p.state, {}),
                )
                for p in parcels
                if p.state != "VOIDED"
            ],
            events=[
                AuditEntry(
                    at=e.at,
                    status=OrderStatus(e.status),
                    actor=e.actor,
                    what=e.reason or e.step,
                )
                for e in events
            ],
        )


async def billing_of(settings: Settings, order_id: str) -> dict[str, Any] | None:
    """`billing` of one order: its invoice's net, tax and gross and what was credited since;
    None when it is not invoiced (or the database cannot be read)."""
    try:
        return await from_read_model(settings, billing, order_id)
    except DBAPIError:
        return None


def billing(engine: Engine, order_id: str) -> dict[str, Any] | None:
    """Totals over all the order's invoices (one per capture): `invoices` lists their
    numbers, `invoice_no` is the first; `due_date` the latest, `paid` when all are."""
    with Session(engine) as session:
        invoices = invoices_of(session, order_id)
        if not invoices:
            return None
        credited = session.scalars(select(Refund).where(Refund.order_id == order_id)).all()

    def total(amounts: list[Decimal | None]) -> str | None:  # None: an invoice without it
        return None if None in amounts else str(sum((a or Decimal(0) for a in amounts), Decimal(0)))

    currency = invoices[0].currency
    return {
        "invoice_no": invoices[0].invoice_no,
        "invoices": [invoice.invoice_no for invoice in invoices],
        "currency": currency,
        "net": total([invoice.net for invoice in invoices]),
        "tax": total([invoice.tax for invoice in invoices]),
        "gross": total([invoice.amount for invoice in invoices]),
        "shipping": total([invoice.shipping for invoice in invoices]),
        "due_date": max(invoice.due_date for invoice in invoices).isoformat(),
        "paid": all(invoice.paid for invoice in invoices),
        "credited": str(from_minor(sum(r.amount_minor for r in credited), currency)),
    }


async def gross_estimate_of(settings: Settings, order_id: str) -> str | None:
    """The order's gross estimate from validation (goods, the dearest shipping, tax); None
    when it was not validated (or before estimates, or the database cannot be read)."""
    try:
        found = await from_read_model(settings, amounts, [order_id])
    except DBAPIError:
        return None
    return found.get(order_id, NO_AMOUNTS)["gross_estimate"]


NO_AMOUNTS: dict[str, str | None] = {
    "currency": None,
    "gross_estimate": None,
    "invoiced_gross": None,
}
"""What `amounts` says of an order the read model does not have (or cannot be read)."""


async def with_amounts(settings: Settings, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`list` rows that say which amount is which: `goods_net` (the same as `total`, the goods
    at the order's prices before shipping and tax), the validation's `gross_estimate` (goods,
    the dearest shipping and tax), `invoiced_gross` once invoiced, and the `currency`; None
    where the read model has none (or cannot be read: the rows are still listed)."""
    try:
        found = await from_read_model(settings, amounts, [row["order_id"] for row in rows])
    except DBAPIError:
        found = {}
    return [
        {**row, "goods_net": row.get("total"), **found.get(row["order_id"], NO_AMOUNTS)}
        for row in rows
    ]


AMOUNTS_PER_QUERY = 500
"""Order ids per `IN (...)` (SQLite's limit on bound parameters is lower on old builds)."""


def amounts(engine: Engine, order_ids: list[str]) -> dict[str, dict[str, str | None]]:
    """Per order the read model has: its currency, gross estimate and invoiced gross (the sum
    of its invoices: an order may be invoiced in parts)."""
    invoiced = (
        select(Invoice.order_id, func.sum(Invoice.amount).label("gross"))
        .group_by(Invoice.order_id)
        .subquery()
    )
    found: dict[str, dict[str, str | None]] = {}
    with Session(engine) as session:
        for start in range(0, len(order_ids), AMOUNTS_PER_QUERY):
            query = (
                select(
                    OrderRecord.order_id,
                    OrderRecord.currency,
                    OrderRecord.gross_estimate,
                    invoiced.c.gross,
                )
                .outerjoin(invoiced, invoiced.c.order_id == OrderRecord.order_id)
                .where(OrderRecord.order_id.in_(order_ids[start : start + AMOUNTS_PER_QUERY]))
            )
            for order_id, currency, estimate, gross in session.execute(query):
                found[order_id] = {
                    "currency": currency,
                    "gross_estimate": _money(estimate),
                    "invoiced_gross": _money(gross),
                }
    return found


def _money(amount: Decimal | float | None) -> str | None:
    """A stored amount as the decimal string the CLI shows (SQLite sums come back as float)."""
    return None if amount is None else f"{Decimal(str(amount)):.2f}"


async def told_customer(settings: Settings, order_id: str) -> list[dict[str, Any]] | None:
    """`customer_notices` of one order; None when the database cannot be read."""
    try:
        return await from_read_model(settings, customer_notices, order_id)
    except DBAPIError:
        return None


def customer_notices(engine: Engine, order_id: str) -> list[dict[str, Any]]:
    """What the order's customer was told: each event, when, to which address, and whether
    the e-mail went (`sent`, `queued`, `refused: <the server's answer>`, `not mailed: ...`)."""
    with Session(engine) as session:
        notices = session.scalars(
            select(Notification)
            .where(
                Notification.order_id == order_id, Notification.recipient.startswith("customer:")
            )
            .order_by(Notification.id)
        ).all()
        emails: dict[str, list[OutboxEmail]] = {}
        for email in session.scalars(
            select(OutboxEmail).where(OutboxEmail.order_id == order_id).order_by(OutboxEmail.id)
        ):
            emails.setdefault(email.notification_key, []).append(email)
    rows = []
    for notice in notices:
        base = {
            "event": notice.kind,
            "at": _utc(notice.at).isoformat(),
            "subject": notice.message.split("\n", 1)[0],
            "key": notice.idempotency_key,
        }
        mails = emails.get(notice.idempotency_key, [])
        if not mails:
            rows.append({**base, "to": None, "state": "not mailed: no address", "sent_at": None})
        for mail in mails:
            rows.append(
                {
                    **base,
                    "to": mail.to_address,
                    "state": _mail_state(mail),
                    "sent_at": _utc(mail.sent_at).isoformat() if mail.sent_at else None,
                }
            )
    return rows


def _mail_state(mail: OutboxEmail) -> str:
    if mail.sent_at is not None:
        return "sent"
    if mail.refused == NOT_CONFIGURED:
        return mail.refused
    return f"refused: {mail.refused}" if mail.refused else "queued"


def order_rows(
    engine: Engine, status: OrderStatus | None, leave_out: set[str]
) -> list[dict[str, Any]]:
    """`list` rows for the read model's orders, but those in `leave_out` (Temporal has them)."""
    query = select(OrderRecord).order_by(OrderRecord.created_at)
    if status is not None:
        query = query.where(OrderRecord.status == status.value)
    with Session(engine) as session:
        return [
            {
                "order_id": row.order_id,
                "status": row.status,
                "customer_id": row.customer_id,
                "channel": row.channel,
                "total": f"{row.total:.2f}",
                "escalation_level": row.escalation_level,
                "awaiting_tier": None,
                "running": False,
                "started_at": _utc(row.created_at).isoformat(),
                "source": READ_MODEL,
            }
            for row in session.scalars(query)
            if row.order_id not in leave_out
        ]


async def refuse_known(settings: Settings, order_ids: list[str]) -> None:
    """Order ids are used once, also after Temporal forgot the order (retention)."""
    try:
        known = await from_read_model(settings, known_orders, order_ids)
    except DBAPIError as error:
        raise UserError(
            f"cannot read the order database ({type(error.orig).__name__}); "
            "is ORDERFLOW_DATABASE_URL right, and migrated (orderflow migrate)?"
        ) from None
    for order_id, status in known.items():
        raise UserError(f"order {order_id} already exists ({status}); order ids are used once")


def known_orders(engine: Engine, order_ids: list[str]) -> dict[str, str]:
    """Which of these order ids the read model has, with their status."""
    with Session(engine) as session:
        rows = session.execute(
            select(OrderRecord.order_id, OrderRecord.status).where(
                OrderRecord.order_id.in_(order_ids)
            )
        ).all()
    return {order_id: status for order_id, status in rows}


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo else at.replace(tzinfo=UTC)  # SQLite gives back naive datetimes
