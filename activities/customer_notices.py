"""Telling customers: each event of an order (domain.customer_notices) is written once, in the
transaction of the step that caused it, as a notification and an e-mail for the outbox.

The step's own idempotency (its audit row, a parcel's state, an RMA's label) decides that
the event happened; the notification's unique key (`<order>:customer:<event>[:<about>]`)
makes a second write impossible even if a caller asks twice. A retried activity whose
first attempt committed finds both and writes nothing; one that did not commit wrote nothing.
"""

import weakref
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Row, bindparam, insert, select
from sqlalchemy.orm import Session
from temporalio import activity

from activities.db.models import (
    CreditNote,
    Customer,
    Notification,
    OrderEvent,
    OrderRecord,
    OutboxEmail,
    Payment,
    Product,
    Refund,
    ReturnAuthorization,
    ReturnLine,
    ShipmentRecord,
    utcnow,
)
from activities.mail import MailConfig
from domain import credit_notes
from domain.customer_notices import (
    Backorder,
    Cancellation,
    CustomerEvent,
    Facts,
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
from domain.money import from_minor
from domain.steps import StatusChange

NOT_CONFIGURED = "not mailed: no SMTP server configured"
"""`outbox_emails.refused` of a customer's e-mail written while mail was off: kept as the
record of what would have been sent, never sent later (a late backlog helps nobody)."""


@dataclass(frozen=True)
class CustomerMail:
    """How customers are reached: by e-mail when SMTP is configured, else the table and log."""

    mail: MailConfig | None = None
    backorder_expire_after: timedelta = timedelta(days=14)
    """The workers' backorder SLA: a backordered item ships or is cancelled by then."""


_reach: "weakref.WeakKeyDictionary[Engine, CustomerMail]" = weakref.WeakKeyDictionary()


def reach_customers(engine: Engine, how: CustomerMail) -> None:
    """Say, once per database engine, how its customers are told (the worker does, when it
    builds its activities). Steps record through `activities.audit.record` with only their
    session, so this is looked up from the session's engine instead of threaded through
    every activity; an engine nobody configured writes and logs notices, mails nothing."""
    _reach[engine] = how


def _how(session: Session) -> CustomerMail:
    return _reach.get(session.get_bind().engine, CustomerMail())


_ORDER_FACTS = select(
    OrderRecord.order_id,
    OrderRecord.customer_id,
    OrderRecord.currency,
    OrderRecord.total,
    OrderRecord.gross_estimate,
    OrderRecord.promised_date,
    OrderRecord.order,
).where(OrderRecord.order_id == bindparam("order"))
Ordered = OrderRecord | Row[str, str, str, Decimal, Decimal | None, date | None, dict[str, Any]]
"""An order as a notice reads it: its row, or the columns `_ORDER_FACTS` reads."""
_ADDRESSEE = select(Customer.name, Customer.email).where(
    Customer.customer_id == bindparam("customer")
)


def after_step(session: Session, change: StatusChange) -> None:
    """Write the customer notices a newly recorded audit step fires (most fire none)."""
    triggers = step_events(change.step, change.status)
    if not triggers:
        return
    # The order's columns a notice reads, by a statement built once (the caller flushed).
    order = session.connection().execute(_ORDER_FACTS, {"order": change.order_id}).first()
    if order is None:
        return
    for trigger in triggers:
        facts: Facts = None
        about: str | None = None
        if trigger.event == CustomerEvent.BACKORDERED:
            facts = _backorder(session, order, change)
        elif trigger.event == CustomerEvent.CANCELLED:
            facts = Cancellation(
                reason=change.reason or "cancelled", charged=_captured(session, order.order_id)
            )
        elif trigger.event == CustomerEvent.REFUND_ISSUED:
            about = change.step.partition("/")[2]
            facts = _refund(session, about)
            if facts is None:
                continue
        _tell(session, order, trigger.event, about, facts)


def parcel_moved(session: Session, parcel: ShipmentRecord) -> None:
    """A parcel's state changed (SHIPPED, DELIVERED): tell the customer, once per parcel."""
    trigger = parcel_event(parcel.state)
    order = session.get(OrderRecord, parcel.order_id)
    if trigger is None or order is None:
        return
    detail = parcel.detail or {}
    facts = Parcel(
        shipment_id=parcel.shipment_id,
        carrier=parcel.carrier,
        service=parcel.service,
        tracking_number=parcel.tracking_number,
        lines=_named(session, detail.get("lines", [])),
        estimated_delivery=detail.get("estimated_delivery"),
    )
    _tell(session, order, trigger.event, parcel.shipment_id, facts)


def return_label_booked(session: Session, rma: ReturnAuthorization) -> None:
    """An RMA got its return label: tell the customer how to send the goods back."""
    order = session.get(OrderRecord, rma.order_id)
    if order is None:
        return
    lines = session.scalars(
        select(ReturnLine).where(ReturnLine.rma_id == rma.rma_id).order_by(ReturnLine.sku)
    )
    facts = ReturnLabel(
        rma_id=rma.rma_id,
        lines=_named(session, [{"sku": r.sku, "quantity": r.quantity} for r in lines]),
        reason=rma.reason,
        carrier=rma.carrier,
        tracking_number=rma.tracking_number,
        label_id=rma.label_id,
    )
    _tell(session, order, CustomerEvent.RMA_OPENED, rma.rma_id, facts)


def _tell(
    session: Session, order: Ordered, event: CustomerEvent, about: str | None, facts: Facts
) -> None:
    key = notice_key(order.order_id, event, about)
    if session.scalar(_NOTICE_WRITTEN, {"key": key}):
        return
    # Statements built once, not through the ORM: a notice is written in the transaction of
    # an order's reservation, on the hot path (README, "Speed").
    connection = session.connection()
    customer = connection.execute(_ADDRESSEE, {"customer": order.customer_id}).first()
    message = message_for(event, _order_facts(session, order, customer), facts)
    connection.execute(
        _NEW_NOTICE,
        {
            "idempotency_key": key,
            "order_id": order.order_id,
            "recipient": f"customer:{order.customer_id}"[:64],
            "kind": event.value,
            "message": f"{message.subject}\n\n{message.body}",
        },
    )
    mail = _how(session).mail
    # The order's own contact (a shopper booked to a storefront's account) before the account's.
    address = order.order.get("contact_email") or (customer.email if customer else None)
    if address:
        connection.execute(
            _NEW_EMAIL,
            {
                "idempotency_key": f"{key}/{address}"[:240],
                "notification_key": key,
                "order_id": order.order_id,
                "to_address": address,
                "subject": message.subject[:300],
                "body": message.body,
                "refused": None if mail is not None else NOT_CONFIGURED,
            },
        )
    if not address or mail is None:
        activity.logger.info(
            "told customer %s about %s (%s), not mailed (%s): %s",
            order.customer_id,
            order.order_id,
            event.value,
            "no e-mail address" if not address else "no SMTP configured",
            message.subject,
        )


_NOTICE_WRITTEN = select(Notification.id).where(Notification.idempotency_key == bindparam("key"))
_NEW_NOTICE = insert(Notification)
_NEW_EMAIL = insert(OutboxEmail)
_PRODUCT_NAMES = select(Product.sku, Product.name).where(
    Product.sku.in_(bindparam("skus", expanding=True))
)


def _order_facts(
    session: Session, order: Ordered, customer: Row[str, str | None] | None
) -> OrderFacts:
    placed = order.order
    ship_to = placed.get("ship_to") or {}
    where = ", ".join(
        part
        for part in (
            ship_to.get("name"),
            ship_to.get("street"),
            " ".join(p for p in (ship_to.get("postal_code"), ship_to.get("city")) if p),
            ship_to.get("country"),
        )
        if part
    )
    return OrderFacts(
        order_id=order.order_id,
        addressee=ship_to.get("name") or (customer.name if customer else order.customer_id),
        currency=order.currency,
        total=order.total,
        gross_estimate=order.gross_estimate,
        lines=_named(session, placed.get("lines", [])),
        promised_date=order.promised_date,
        ship_to=where,
    )


def _named(session: Session, lines: list[dict[str, object]]) -> list[NoticeLine]:
    """Lines (sku, quantity, maybe unit_price) with the catalog's product names."""
    skus = [str(line["sku"]) for line in lines]
    names = {sku: name for sku, name in session.execute(_PRODUCT_NAMES, {"skus": skus})}
    return [
        NoticeLine.model_validate({**line, "name": names.get(str(line["sku"]))}) for line in lines
    ]


def _backorder(session: Session, order: Ordered, change: StatusChange) -> Backorder:
    detail = change.detail or {}
    first = session.scalar(
        select(OrderEvent.at).where(
            OrderEvent.order_id == order.order_id, OrderEvent.step == "reserve-0"
        )
    )
    return Backorder(
        waiting=_named(session, detail.get("backordered", [])),
        expected_by=((first or utcnow()) + _how(session).backorder_expire_after).date(),
        rest_ships_now=bool(detail.get("reservations")),
    )


def _captured(session: Session, order_id: str) -> bool:
    return (
        session.scalar(
            select(Payment.id).where(Payment.order_id == order_id, Payment.kind == "CAPTURE")
        )
        is not None
    )


def _refund(session: Session, key: str) -> RefundFacts | None:
    refund = session.scalar(select(Refund).where(Refund.idempotency_key == key))
    if refund is None:
        return None
    note = session.scalar(select(CreditNote).where(CreditNote.refund_id == refund.id))
    if note is None:
        return RefundFacts(
            amount=from_minor(refund.amount_minor, refund.currency),
            currency=refund.currency,
            rma_id=refund.rma_id,
        )
    document = note.document or refund.document  # which invoices the credit names
    named = credit_notes.CreditNote.model_validate(document).credits if document else []
    return RefundFacts(
        amount=from_minor(refund.amount_minor, refund.currency),
        currency=refund.currency,
        rma_id=refund.rma_id,
        credit_note=note.credit_note_no,
        invoice_no=note.invoice_no,
        invoice_nos=named or [note.invoice_no],
    )
