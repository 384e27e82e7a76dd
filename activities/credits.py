"""Pricing a refund as finance books it: the credit mirrors the invoice (the same lines and tax
rates, the VAT in proportion), less the restocking fee the disposition and reason call for,
plus the shipping charge when the whole order came back for a defect.

An order captured per wave of parcels has several invoices: the refund is priced against all
of them as one (`domain.invoicing.combined`), so a return of units billed on two invoices is
credited at each one's prices and rates, and "the whole order came back" means every unit of
every invoice. The note names the invoices it credits.

Used by `RefundActivities` for a refund against an RMA on invoices that carry their
document; other refunds (no RMA, or an invoice issued before invoices carried tax) keep the
amount they were asked for.
"""

from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.billing import MoneyRules
from activities.db.models import Refund, ReturnAuthorization, ReturnLine
from activities.invoices import invoices_of
from domain import invoicing
from domain.credit_notes import CreditNote, CreditRefused, credit_note_for
from domain.restocking import refunds_shipping, restocking_fees, whole_order_returned
from domain.returns import Disposition, InspectionLine, RefundRequest


def price(
    session: Session, rules: MoneyRules, request: RefundRequest, on: date
) -> tuple[RefundRequest, CreditNote | None]:
    """The request with the amount to give back, and the credit document (None: as asked).

    Raises:
        CreditRefused: the RMA credits more than is left on the order's invoices.
    """
    booked = session.scalar(select(Refund).where(Refund.idempotency_key == request.idempotency_key))
    if booked is not None and booked.document:  # priced when it was booked: the same answer
        note = CreditNote.model_validate(booked.document)
        return request.model_copy(update={"amount": note.totals.gross}), note
    document = billed(session, request.order_id)
    rma = session.get(ReturnAuthorization, request.rma_id) if request.rma_id else None
    if document is None or rma is None:
        return request, None
    inspected = _inspected(session, rma.rma_id)
    returned: dict[str, int] = {}
    for line in inspected:
        returned[line.sku] = returned.get(line.sku, 0) + line.quantity
    unit_net = {line.sku: line.unit_net for line in document.lines if line.sku}
    policy = rules.charges.restocking
    fees = restocking_fees(inspected, unit_net, rma.reason, policy, document.currency)
    earlier = _earlier(session, request.order_id)
    note = credit_note_for(
        document,
        returned,
        issued_on=on,
        restocking_fees={sku: fee for sku, fee in fees.items() if fee > 0},
        refund_shipping=_shipping_back(document, rma, returned, earlier, rules),
        earlier=earlier,
        reason=rma.reason,
    )
    return request.model_copy(update={"amount": note.totals.gross}), note


def billed(session: Session, order_id: str) -> invoicing.CombinedInvoice | None:
    """The order's invoices as one document (None: not invoiced, or an invoice issued before
    invoices carried their document, which cannot be credited line by line)."""
    rows = invoices_of(session, order_id)
    if not rows or not all(row.document for row in rows):
        return None
    return invoicing.combined([invoicing.Invoice.model_validate(row.document) for row in rows])


def _inspected(session: Session, rma_id: str) -> list[InspectionLine]:
    """What inspection decided for each unit of the RMA."""
    lines = []
    for row in session.scalars(select(ReturnLine).where(ReturnLine.rma_id == rma_id)):
        for disposition, units in (
            (Disposition.RESTOCK, row.restocked),
            (Disposition.REFURBISH, row.refurbished),
            (Disposition.DISPOSE, row.disposed),
        ):
            if units:
                lines.append(InspectionLine(sku=row.sku, quantity=units, disposition=disposition))
    if not lines:
        raise CreditRefused(f"RMA {rma_id} has no inspected units to credit")
    return lines


def _earlier(session: Session, order_id: str) -> list[CreditNote]:
    """The credits already booked on the order, oldest first."""
    rows = session.scalars(
        select(Refund)
        .where(Refund.order_id == order_id, Refund.document.is_not(None))
        .order_by(Refund.id)
    )
    return [CreditNote.model_validate(row.document) for row in rows]


def _shipping_back(
    document: invoicing.Invoice,
    rma: ReturnAuthorization,
    returned_now: dict[str, int],
    earlier: list[CreditNote],
    rules: MoneyRules,
) -> bool:
    """Whole order back (every unit of every invoice), every RMA for a shipping-refund reason
    (default: defective)."""
    invoiced: dict[str, int] = {}
    for line in document.lines:
        if line.sku:
            invoiced[line.sku] = invoiced.get(line.sku, 0) + line.quantity
    back = dict(returned_now)
    reasons = [rma.reason]
    for note in earlier:
        reasons.append(note.reason)
        for line in note.lines:
            if line.sku:
                back[line.sku] = back.get(line.sku, 0) + line.quantity
    whole = whole_order_returned(invoiced, back)
    return refunds_shipping(reasons, whole, rules.charges.restocking)
