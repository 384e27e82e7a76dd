"""Issuing the invoice at capture: numbered without gaps (INV-2026-000042), with its lines,
shipping and tax as drafted by `activities.billing`, and its ERP posting, in one transaction."""

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.db.models import Invoice, utcnow
from activities.erp_outbox import post_invoice
from activities.numbering import document_no, next_number
from domain import invoicing
from domain.statuses import PaymentTerms
from domain.steps import CaptureRequest


def invoice_of(session: Session, order_id: str, capture_no: int = 1) -> Invoice | None:
    """The invoice of one capture of the order (the first: orders captured once)."""
    return session.scalar(
        select(Invoice).where(Invoice.order_id == order_id, Invoice.capture_no == capture_no)
    )


def invoices_of(session: Session, order_id: str) -> list[Invoice]:
    """Every invoice of the order, in the order of its captures."""
    return list(
        session.scalars(
            select(Invoice).where(Invoice.order_id == order_id).order_by(Invoice.capture_no)
        )
    )


def issue(
    session: Session,
    request: CaptureRequest,
    bill: invoicing.Invoice | None,
    amount: Decimal,
    payment_reference: str,
) -> Invoice:
    """The invoice of the capture: the one issued already, or a new one numbered now.

    `bill` is the drafted document (None for an order captured without one: orders placed
    before invoices carried tax, which bill `amount` as it is).
    """
    existing = invoice_of(session, request.order_id, request.capture_no)
    if existing is not None:
        return existing
    today = utcnow().date()
    number = document_no("INV", today.year, next_number(session, "INV", today.year))
    net_terms = request.customer.payment_terms == PaymentTerms.NET_30
    invoice = Invoice(
        invoice_no=number,
        order_id=request.order_id,
        capture_no=request.capture_no,
        amount=amount,
        currency=request.authorization.currency,
        terms=request.customer.payment_terms.value,
        due_date=today + timedelta(days=30 if net_terms else 0),
        paid=not net_terms,
    )
    if bill is not None:
        issued = bill.model_copy(update={"invoice_no": number})
        invoice.net, invoice.tax = issued.totals.net, issued.totals.tax
        invoice.due_date = issued.due_on
        invoice.shipping = sum(
            (line.net for line in issued.lines if line.kind == invoicing.LineKind.SHIPPING),
            Decimal(0),
        )
        invoice.document = issued.model_dump(mode="json")
    session.add(invoice)
    session.flush()  # a concurrent attempt's invoice fails here: one invoice, one posting
    post_invoice(session, invoice, request.customer, payment_reference)
    return invoice
