"""The invariants of money and stock, checked over the read model (`orderflow check`).

Each rule is written once here, named, and documented in README ("Invariants"). A rule
returns one `Violation` per order (or stock row) that breaks it; `exceptions` lists what is
not wrong but waits for a person (a parcel that left after its order was stopped).
"""

from collections import defaultdict
from decimal import Decimal

from pydantic import BaseModel
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from activities.db.models import (
    CarrierLabel,
    Invoice,
    OrderBalance,
    OrderEvent,
    OrderLineRecord,
    OrderRecord,
    Payment,
    Refund,
    ShipmentRecord,
    Stock,
    StockReservation,
)
from domain import credit_notes, invoicing
from domain.money import from_minor
from domain.statuses import OrderStatus

BILLED = {
    OrderStatus.COMPLETED,
    OrderStatus.RETURN_REQUESTED,
    OrderStatus.RETURN_RECEIVED,
    OrderStatus.REFUNDED,
}
STOPPED = {OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FAILED}
LIVE_SHIPMENT = ("BOOKED", "SHIPPED", "DELIVERED", "LOST")
GOODS_OUT = ("SHIPPED", "DELIVERED")  # billed when the order closes (LOST is not billed)


class Violation(BaseModel):
    """One broken rule: which order (or stock row), which rule, and what was found."""

    order_id: str
    rule: str
    detail: str


def check_database(
    engine: Engine, manager_threshold: Decimal, orders: set[str] | None = None
) -> list[Violation]:
    """Every rule that the read model alone can answer; `orders` limits it to those orders
    (and the stock of their SKUs), for a test that shares its database with others."""
    with Session(engine) as session:
        money = _payments(session)  # read once, used by three rules
        found = [
            *_billed_equals_shipped(session, money),
            *_captured_within_authorised(money),
            *_refunded_within_captured(session),
            *_credited_within_invoiced(session),
            *_one_live_label(session),
            *_stopped_orders_hold_nothing(session, money),
            *_approval_before_stock(session, manager_threshold),
        ]
        found = [v for v in found if orders is None or v.order_id in orders]
        skus = None
        if orders is not None:
            skus = set(
                session.scalars(
                    select(OrderLineRecord.sku).where(OrderLineRecord.order_id.in_(orders))
                )
            )
        return _stock_equals_live_holds(session, skus) + found


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


def _stock_equals_live_holds(session: Session, skus: set[str] | None) -> list[Violation]:
    held: dict[tuple[str, str], int] = defaultdict(int)
    for sku, warehouse, quantity in session.execute(
        select(StockReservation.sku, StockReservation.warehouse, StockReservation.quantity).where(
            StockReservation.state == "HELD"
        )
    ):
        held[(sku, warehouse)] += quantity
    found = []
    for row in session.scalars(select(Stock)):
        if skus is not None and row.sku not in skus:
            continue
        where = f"{row.sku}@{row.warehouse}"
        if row.reserved != held.get((row.sku, row.warehouse), 0):
            found.append(
                Violation(
                    order_id=where,
                    rule="stock-held",
                    detail=f"reserved {row.reserved} but live holds add up to "
                    f"{held.get((row.sku, row.warehouse), 0)}",
                )
            )
        if row.reserved < 0 or row.on_hand - row.reserved - row.safety_stock < 0:
            found.append(
                Violation(
                    order_id=where,
                    rule="stock-available",
                    detail=f"on hand {row.on_hand}, reserved {row.reserved}, "
                    f"safety {row.safety_stock}: available is negative",
                )
            )
    return found


Payments = dict[str, dict[str, int]]


def _payments(session: Session) -> Payments:
    """{order: {kind: minor units}}."""
    money: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for order_id, kind, minor in session.execute(
        select(Payment.order_id, Payment.kind, Payment.amount_minor)
    ):
        money[order_id][kind] += minor
    return money


def _goods_out_value(session: Session) -> dict[str, Decimal]:
    """{order: value of the units that left and were not lost, at the order's prices}."""
    prices = {
        (line.order_id, line.sku): line.unit_price
        for line in session.scalars(select(OrderLineRecord))
    }
    value: dict[str, Decimal] = defaultdict(Decimal)
    for row in session.scalars(select(ShipmentRecord).where(ShipmentRecord.state.in_(GOODS_OUT))):
        for line in (row.detail or {}).get("lines", []):
            price = prices.get((row.order_id, line["sku"]), Decimal(0))
            value[row.order_id] += price * int(line["quantity"])
    return value


def _billed_equals_shipped(session: Session, money: Payments) -> list[Violation]:
    """Invoiced goods = goods out; invoiced = goods + charged shipping + tax; captured =
    invoiced. (Invoices issued before they carried tax: captured = goods out.)"""
    shipped = _goods_out_value(session)
    invoices = {row.order_id: row for row in session.scalars(select(Invoice))}
    found = []
    for order in session.scalars(select(OrderRecord)):
        status = OrderStatus(order.status)
        if status not in BILLED and status not in STOPPED:
            continue  # still running: billed at delivery
        captured = from_minor(money[order.order_id].get("CAPTURE", 0), order.currency)
        owed = shipped.get(order.order_id, Decimal(0)).quantize(Decimal("0.01"))
        invoice = invoices.get(order.order_id)
        if invoice is not None and invoice.document:
            problems = _invoice_problems(invoice, owed, captured)
        elif captured != owed:
            problems = [f"goods out worth {owed} but captured {captured}"]
        else:
            problems = []
        found += [
            Violation(order_id=order.order_id, rule="billed-shipped", detail=f"{status.value}: {p}")
            for p in problems
        ]
    return found


def _invoice_problems(invoice: Invoice, owed: Decimal, captured: Decimal) -> list[str]:
    document = invoicing.Invoice.model_validate(invoice.document)
    goods = sum(
        (line.net for line in document.lines if line.kind == invoicing.LineKind.GOODS),
        Decimal(0),
    )
    problems = []
    if goods != owed:
        problems.append(f"invoice {invoice.invoice_no} bills goods of {goods}, goods out {owed}")
    totals = document.totals
    if totals.gross != totals.net + totals.tax or totals.net != sum(
        (line.net for line in document.lines), Decimal(0)
    ):
        problems.append(f"invoice {invoice.invoice_no} does not add up: {totals}")
    if totals.tax != sum((entry.tax for entry in document.breakdown), Decimal(0)):
        problems.append(f"invoice {invoice.invoice_no}: tax {totals.tax} != its breakdown")
    if captured != invoice.amount or invoice.amount != totals.gross:
        problems.append(
            f"invoice {invoice.invoice_no} of {totals.gross} ({invoice.amount} booked) "
            f"but captured {captured}"
        )
    return problems


def _credited_within_invoiced(session: Session) -> list[Violation]:
    """Per tax rate, what the credits gave back (base and tax) never exceeds the invoice, no
    SKU is credited more often than it was invoiced, and each credit adds up."""
    credits: dict[str, list[credit_notes.CreditNote]] = defaultdict(list)
    for row in session.scalars(
        select(Refund).where(Refund.document.is_not(None)).order_by(Refund.id)
    ):
        credits[row.order_id].append(credit_notes.CreditNote.model_validate(row.document))
    found = []
    for invoice in session.scalars(select(Invoice).where(Invoice.document.is_not(None))):
        notes = credits.get(invoice.order_id)
        if not notes:
            continue
        document = invoicing.Invoice.model_validate(invoice.document)
        found += [
            Violation(order_id=invoice.order_id, rule="credited-within-invoiced", detail=problem)
            for problem in credit_notes.credit_problems(document, notes)
        ]
    return found


def _captured_within_authorised(money: Payments) -> list[Violation]:
    found = []
    for order_id, kinds in money.items():
        if kinds.get("CAPTURE", 0) > kinds.get("AUTHORIZE", 0) or (
            "CAPTURE" in kinds and "AUTHORIZE" not in kinds
        ):
            found.append(
                Violation(
                    order_id=order_id,
                    rule="captured-within-authorised",
                    detail=f"captured {kinds.get('CAPTURE', 0)} > authorised "
                    f"{kinds.get('AUTHORIZE', 0)} (minor units)",
                )
            )
    return found


def _refunded_within_captured(session: Session) -> list[Violation]:
    refunds: dict[str, int] = dict(
        session.execute(
            select(Refund.order_id, func.sum(Refund.amount_minor)).group_by(Refund.order_id)
        ).all()
    )
    found = []
    for balance in session.scalars(select(OrderBalance)):
        paid_back = int(refunds.get(balance.order_id, 0))
        if paid_back > balance.captured_minor or paid_back != balance.refunded_minor:
            found.append(
                Violation(
                    order_id=balance.order_id,
                    rule="refunded-within-captured",
                    detail=f"captured {balance.captured_minor}, ledger refunded "
                    f"{balance.refunded_minor}, refunds add up to {paid_back} (minor units)",
                )
            )
    return found


def _one_live_label(session: Session) -> list[Violation]:
    live: dict[str, int] = defaultdict(int)
    for key, voided in session.execute(select(CarrierLabel.idempotency_key, CarrierLabel.voided)):
        if key.startswith("RMA-") or "@" not in key:
            continue  # return labels belong to RMAs, not shipments
        if not voided:
            live[key.rsplit("@", 1)[0]] += 1
    statuses = dict(session.execute(select(OrderRecord.order_id, OrderRecord.status)).all())
    found = []
    known = set()
    for row in session.scalars(select(ShipmentRecord)):
        known.add(row.shipment_id)
        count = live.get(row.shipment_id, 0)
        closed = OrderStatus(statuses.get(row.order_id, "RECEIVED")) in BILLED | STOPPED
        if row.state in LIVE_SHIPMENT and count != 1:
            found.append(_label(row.order_id, f"{row.shipment_id} is {row.state} with {count}"))
        elif row.state == "VOIDED" and count:
            found.append(_label(row.order_id, f"{row.shipment_id} is VOIDED with {count}"))
        elif row.state == "BOOKING" and closed and count:
            found.append(_label(row.order_id, f"{row.shipment_id} never booked, {count}"))
    orders = sorted(statuses, key=len, reverse=True)
    for shipment_id, count in live.items():
        if shipment_id not in known:
            # Shipment ids are "<order>-<warehouse>[-<wave>]": name the order when we can.
            owner = next((o for o in orders if shipment_id.startswith(f"{o}-")), "?")
            found.append(_label(owner, f"{shipment_id} has no shipment but {count}"))
    return found


def _label(order_id: str, what: str) -> Violation:
    return Violation(order_id=order_id, rule="one-live-label", detail=f"{what} live label(s)")


def _stopped_orders_hold_nothing(session: Session, money: Payments) -> list[Violation]:
    held = dict(
        session.execute(
            select(StockReservation.order_id, func.sum(StockReservation.quantity))
            .where(StockReservation.state == "HELD")
            .group_by(StockReservation.order_id)
        ).all()
    )
    found = []
    for order in session.scalars(select(OrderRecord)):
        status = OrderStatus(order.status)
        if status not in STOPPED and status not in BILLED:
            continue
        if held.get(order.order_id):
            found.append(
                Violation(
                    order_id=order.order_id,
                    rule="nothing-left-held",
                    detail=f"{status.value} but holds {held[order.order_id]} units",
                )
            )
        kinds = money.get(order.order_id, {})
        if "AUTHORIZE" in kinds and "CAPTURE" not in kinds and "VOID" not in kinds:
            found.append(
                Violation(
                    order_id=order.order_id,
                    rule="nothing-left-held",
                    detail=f"{status.value} with an authorisation neither captured nor voided",
                )
            )
    return found


def _approval_before_stock(session: Session, manager_threshold: Decimal) -> list[Violation]:
    events: dict[str, list[str]] = defaultdict(list)
    for order_id, step in session.execute(
        select(OrderEvent.order_id, OrderEvent.step).order_by(OrderEvent.id)
    ):
        events[order_id].append(step)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in session.scalars(select(OrderLineRecord)):
        totals[line.order_id] += line.unit_price * line.quantity
    found = []
    for order_id, steps in events.items():
        if "reserve-0" not in steps:
            continue
        before = steps[: steps.index("reserve-0")]
        assessed = [i for i, s in enumerate(before) if s.startswith(("holds-", "cleared-"))]
        last = before[assessed[-1]] if assessed else None
        approvals = before[assessed[-1] :] if assessed else []
        if (
            last
            and last.startswith("holds-")
            and not any(s.startswith("approval-") for s in approvals)
        ):
            found.append(
                Violation(
                    order_id=order_id,
                    rule="approval-before-stock",
                    detail=f"stock held after {last} without an approval",
                )
            )
        if totals[order_id] > manager_threshold and not any(
            s.startswith("approval-") and "AMOUNT" in s for s in before
        ):
            found.append(
                Violation(
                    order_id=order_id,
                    rule="approval-before-stock",
                    detail=f"total {totals[order_id]} above {manager_threshold} held stock "
                    "without an AMOUNT approval",
                )
            )
    return found
