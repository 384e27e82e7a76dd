"""Invariants of money: billed = shipped, captured within authorised, refunded within
captured, credited within invoiced.

An order captured per wave of parcels has one capture and one invoice per wave: each
invoice is checked on its own (it adds up, and its gross is its own capture, matched by
`capture_no`: `<order>/capture`, `<order>/capture-<n>`), and the order as a whole (its
invoices together bill the goods that left). A card authorisation that lapsed is replaced by
a re-authorisation (REAUTHORIZE): the captures made after it are what it must cover.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.db.models import (
    Invoice,
    OrderBalance,
    OrderLineRecord,
    OrderRecord,
    Payment,
    Refund,
    ShipmentRecord,
    aware,
    utcnow,
)
from activities.invariants.common import BILLED, GOODS_OUT, STOPPED, Violation
from domain import credit_notes, invoicing
from domain.invoicing import capture_key
from domain.money import from_minor
from domain.statuses import OrderStatus
from domain.tax import TaxKey

AUTHORISATIONS = ("AUTHORIZE", "REAUTHORIZE")


@dataclass(frozen=True)
class Entry:
    """One row of the payments ledger."""

    kind: str
    key: str
    minor: int
    valid_until: datetime | None = None


Ledger = dict[str, list[Entry]]
"""{order: its payments ledger rows, oldest first}."""


def ledger(session: Session) -> Ledger:
    """Every order's payments, in the order they were booked."""
    money: Ledger = defaultdict(list)
    for order_id, kind, key, minor, valid_until in session.execute(
        select(
            Payment.order_id,
            Payment.kind,
            Payment.idempotency_key,
            Payment.amount_minor,
            Payment.valid_until,
        ).order_by(Payment.id)
    ):
        money[order_id].append(Entry(kind, key, minor, valid_until))
    return money


def _sum(entries: list[Entry], kind: str) -> int:
    return sum(entry.minor for entry in entries if entry.kind == kind)


def authorisation_left_open(entries: list[Entry], now: datetime | None = None) -> bool:
    """The order's latest authorisation (or re-authorisation) still holds money: nothing was
    captured against it, it was not voided, and it has not lapsed. The earlier ones were
    replaced because they lapsed: they hold nothing."""
    latest = max((i for i, e in enumerate(entries) if e.kind in AUTHORISATIONS), default=None)
    if latest is None:
        return False
    if any(e.kind in ("CAPTURE", "VOID") for e in entries[latest + 1 :]):
        return False
    lapses = entries[latest].valid_until
    return lapses is None or aware(lapses) > (now or utcnow())


def captured_within_authorised(money: Ledger) -> list[Violation]:
    """Every capture was made under an authorisation, and the captures made under each
    (after it, before the next re-authorisation) add up to at most its amount."""
    found = []
    for order_id, entries in money.items():
        authorised: int | None = None
        captured = 0
        for entry in entries:
            if entry.kind in AUTHORISATIONS:
                authorised, captured = entry.minor, 0
            elif entry.kind == "CAPTURE":
                captured += entry.minor
                if authorised is None or captured > authorised:
                    found.append(
                        Violation(
                            order_id=order_id,
                            rule="captured-within-authorised",
                            detail=f"captured {captured} > authorised {authorised or 0} "
                            "(minor units)",
                        )
                    )
                    break
    return found


def _goods_out(session: Session) -> tuple[dict[str, dict[str, int]], dict[str, Decimal]]:
    """Per order: the units per SKU that left and were not lost, and their value at the
    order's prices."""
    prices = {
        (line.order_id, line.sku): line.unit_price
        for line in session.scalars(select(OrderLineRecord))
    }
    units: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    value: dict[str, Decimal] = defaultdict(Decimal)
    for row in session.scalars(select(ShipmentRecord).where(ShipmentRecord.state.in_(GOODS_OUT))):
        for line in (row.detail or {}).get("lines", []):
            quantity = int(line["quantity"])
            units[row.order_id][line["sku"]] += quantity
            value[row.order_id] += prices.get((row.order_id, line["sku"]), Decimal(0)) * quantity
    return units, value


def _invoices(session: Session) -> dict[str, list[Invoice]]:
    """{order: its invoices, by capture}."""
    found: dict[str, list[Invoice]] = defaultdict(list)
    for row in session.scalars(select(Invoice).order_by(Invoice.order_id, Invoice.capture_no)):
        found[row.order_id].append(row)
    return found


def billed_equals_shipped(session: Session, money: Ledger) -> list[Violation]:
    """Each invoice adds up (goods + charged shipping + tax = gross, tax = its breakdown by
    rate) and equals its own capture. Each order closed for billing or stopped: its
    invoices together bill exactly the units per SKU that left and were not lost, worth the
    goods out at the order's prices, and every capture has its invoice. (Invoices issued
    before they carried tax: captured = goods out.)"""
    units_out, value_out = _goods_out(session)
    invoices = _invoices(session)
    found = []
    for order in session.scalars(select(OrderRecord)):
        status = OrderStatus(order.status)
        rows = invoices.get(order.order_id, [])
        entries = money.get(order.order_id, [])
        problems = [p for row in rows if row.document for p in _invoice_problems(row, entries)]
        if status in BILLED or status in STOPPED:  # else still running: billed per wave
            owed = value_out.get(order.order_id, Decimal(0)).quantize(Decimal("0.01"))
            out = units_out.get(order.order_id, {})
            problems += _order_problems(order, rows, entries, out, owed)
        found += [
            Violation(order_id=order.order_id, rule="billed-shipped", detail=f"{status.value}: {p}")
            for p in problems
        ]
    return found


def _invoice_problems(invoice: Invoice, entries: list[Entry]) -> list[str]:
    """One invoice: its document adds up, the row agrees with it, its capture equals it."""
    document = invoicing.Invoice.model_validate(invoice.document)
    name, totals = invoice.invoice_no, document.totals
    problems = []
    if totals.gross != totals.net + totals.tax or totals.net != sum(
        (line.net for line in document.lines), Decimal(0)
    ):
        problems.append(f"invoice {name} does not add up: {totals}")
    if totals.tax != sum((entry.tax for entry in document.breakdown), Decimal(0)):
        problems.append(f"invoice {name}: tax {totals.tax} != its breakdown")
    bases: dict[TaxKey, Decimal] = defaultdict(Decimal)
    for line in document.lines:
        bases[line.treatment.key] += line.net
    for entry in document.breakdown:
        if entry.base != bases.get(entry.treatment.key, Decimal(0)):
            rate = " ".join(map(str, entry.treatment.key))
            problems.append(
                f"invoice {name}: {rate} taxed on {entry.base}, its lines add up to "
                f"{bases.get(entry.treatment.key, Decimal(0))}"
            )
    shipping = sum(
        (line.net for line in document.lines if line.kind is invoicing.LineKind.SHIPPING),
        Decimal(0),
    )
    stored = (invoice.net, invoice.tax, invoice.shipping)
    if invoice.net is not None and stored != (totals.net, totals.tax, shipping):
        problems.append(
            f"invoice {name}: stored net/tax/shipping {'/'.join(map(str, stored))}, "
            f"its document {totals.net}/{totals.tax}/{shipping}"
        )
    key = capture_key(invoice.order_id, invoice.capture_no)
    mine = [entry for entry in entries if entry.kind == "CAPTURE" and entry.key == key]
    captured = from_minor(sum(e.minor for e in mine), invoice.currency) if mine else None
    if captured != invoice.amount or invoice.amount != totals.gross:
        problems.append(
            f"invoice {name} of {totals.gross} ({invoice.amount} booked) but captured "
            + (f"{captured}" if captured is not None else f"nothing under {key}")
        )
    return problems


def _order_problems(
    order: OrderRecord,
    rows: list[Invoice],
    entries: list[Entry],
    out: dict[str, int],
    owed: Decimal,
) -> list[str]:
    """The order's invoices together against the goods out and the captures."""
    captured = from_minor(_sum(entries, "CAPTURE"), order.currency)
    if not rows or not all(row.document for row in rows):  # before invoices carried tax
        return [f"goods out worth {owed} but captured {captured}"] if captured != owed else []
    documents = [invoicing.Invoice.model_validate(row.document) for row in rows]
    label = (
        f"invoice {rows[0].invoice_no} bills"
        if len(rows) == 1
        else f"invoices {' + '.join(row.invoice_no for row in rows)} bill"
    )
    billed: dict[str, int] = defaultdict(int)
    goods = Decimal(0)
    for document in documents:
        for line in document.lines:
            if line.kind is invoicing.LineKind.GOODS:
                billed[line.sku or ""] += line.quantity
                goods += line.net
    problems = []
    if goods != owed:
        problems.append(f"{label} goods of {goods}, goods out {owed}")
    for sku in sorted(set(billed) | set(out)):
        if billed.get(sku, 0) != out.get(sku, 0):
            problems.append(
                f"{label} {billed.get(sku, 0)} of {sku}, {out.get(sku, 0)} left "
                "(lost parcels not counted)"
            )
    invoiced = {capture_key(row.order_id, row.capture_no) for row in rows}
    for entry in entries:
        if entry.kind == "CAPTURE" and entry.key not in invoiced:
            amount = from_minor(entry.minor, order.currency)
            problems.append(f"capture {entry.key} of {amount} has no invoice")
    return problems


def refunded_within_captured(session: Session, money: Ledger) -> list[Violation]:
    """The refunds add up to the balance's refunded amount and never exceed what was
    captured (every capture of the order); an order closed for billing or stopped has its
    balance's captured amount equal to its captures."""
    refunds: dict[str, int] = dict(
        session.execute(
            select(Refund.order_id, func.sum(Refund.amount_minor)).group_by(Refund.order_id)
        ).all()
    )
    statuses = dict(session.execute(select(OrderRecord.order_id, OrderRecord.status)).all())
    found = []
    for balance in session.scalars(select(OrderBalance)):
        paid_back = int(refunds.get(balance.order_id, 0))
        captured = _sum(money.get(balance.order_id, []), "CAPTURE")
        status = statuses.get(balance.order_id)
        closed = status is not None and OrderStatus(status) in BILLED | STOPPED
        if (
            paid_back > min(captured, balance.captured_minor)
            or paid_back != balance.refunded_minor
            or (closed and balance.captured_minor != captured)
        ):
            found.append(
                Violation(
                    order_id=balance.order_id,
                    rule="refunded-within-captured",
                    detail=f"captured {captured} ({balance.captured_minor} in the balance), "
                    f"ledger refunded {balance.refunded_minor}, refunds add up to {paid_back} "
                    "(minor units)",
                )
            )
    return found


def credited_within_invoiced(session: Session) -> list[Violation]:
    """Per tax rate, what the credits gave back (base and tax) never exceeds the order's
    invoices together, no SKU is credited more often than it was invoiced, and each credit
    adds up and names only the order's invoices."""
    credits: dict[str, list[credit_notes.CreditNote]] = defaultdict(list)
    for row in session.scalars(
        select(Refund).where(Refund.document.is_not(None)).order_by(Refund.id)
    ):
        credits[row.order_id].append(credit_notes.CreditNote.model_validate(row.document))
    invoices = _invoices(session)
    found = []
    for order_id, notes in credits.items():
        rows = invoices.get(order_id, [])
        if not rows or not all(row.document for row in rows):
            continue
        document = invoicing.combined(
            [invoicing.Invoice.model_validate(row.document) for row in rows]
        )
        found += [
            Violation(order_id=order_id, rule="credited-within-invoiced", detail=problem)
            for problem in credit_notes.credit_problems(document, notes)
        ]
    return found
