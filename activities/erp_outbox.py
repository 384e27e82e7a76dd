"""The ERP outbox: a posting written in the transaction of its document; retrying, reading.

Capture (invoice), the refund ledger (credit note or card refund) and the void of an
authorisation call one `post_*` function inside their own transaction, once per document:
their idempotency keys make a retried activity find the document and write nothing, and the
posting's unique key is the last guard. Keys are per document (`<order>:<kind>:<document>`,
`domain.erp.posting_key`): an order captured per wave posts each of its invoices under its
own number. The ERP dispatcher (activities/erp_delivery.py) sends what is pending, in `seq`
order per order.
"""

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from activities.db.engine import take_turns
from activities.db.models import (
    CreditNote,
    Customer,
    ErpPosting,
    Invoice,
    OrderLineRecord,
    OrderRecord,
    Payment,
    Refund,
    ShipmentRecord,
    utcnow,
)
from domain.erp import Document, PostingKind, posting_key
from domain.money import from_minor, round_money
from domain.policy import CustomerTerms

GOODS_OUT = ("SHIPPED", "DELIVERED")  # what an invoice bills (a lost parcel is not billed)


def post(
    session: Session,
    *,
    order_id: str,
    kind: PostingKind,
    document: str,
    amount: Decimal,
    currency: str,
    data: dict[str, Any],
) -> ErpPosting:
    """Add the posting of one document to the outbox, next in its order's sequence.

    Call it inside the transaction that writes the document: both commit, or neither.
    """
    take_turns(session, f"erp-outbox/{order_id}")  # two documents of one order: one seq each
    last = session.scalar(select(func.max(ErpPosting.seq)).where(ErpPosting.order_id == order_id))
    now = utcnow()
    posting = ErpPosting(
        idempotency_key=posting_key(order_id, kind, document),
        order_id=order_id,
        seq=(last or 0) + 1,
        kind=kind,
        document=document,
        amount=amount,
        currency=currency,
        payload={
            **_order_facts(session, order_id),
            "kind": kind,
            "document": document,
            "amount": str(amount),
            "currency": currency,
            **data,
        },
        state="pending",
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )
    session.add(posting)
    session.flush()
    return posting


def post_invoice(
    session: Session, invoice: Invoice, customer: CustomerTerms, payment_reference: str
) -> ErpPosting:
    """The invoice issued at capture, with the lines it bills where the read model has them."""
    return post(
        session,
        order_id=invoice.order_id,
        kind="invoice",
        document=invoice.invoice_no,
        amount=invoice.amount,
        currency=invoice.currency,
        data={
            "customer_id": customer.customer_id,
            "customer_name": customer.name,
            "terms": invoice.terms,
            "due_date": invoice.due_date.isoformat(),
            "paid": invoice.paid,
            "payment_reference": payment_reference,
            **_document_facts(session, invoice),
        },
    )


def _document_facts(session: Session, invoice: Invoice) -> dict[str, Any]:
    """Net, tax and gross with the tax by rate and the priced lines, from the invoice's
    document; an invoice issued before invoices carried tax has only its billed lines."""
    if not invoice.document:
        return {"lines": _billed_lines(session, invoice.order_id, invoice.amount, invoice.currency)}
    document = invoice.document
    return {
        **_totals(document),
        "notes": document.get("notes", []),
        "lines": [
            {
                "kind": line["kind"],
                "sku": line.get("sku"),
                "description": line["description"],
                "quantity": line["quantity"],
                "unit_net": line["unit_net"],
                "net": line["net"],
                "tax": line["tax"],
                "gross": line["gross"],
                "tax_rate": line["treatment"]["rate"],
            }
            for line in document["lines"]
        ],
    }


def _totals(document: dict[str, Any] | None) -> dict[str, Any]:
    """Net, tax and gross with the tax by rate, from a priced document (invoice or credit);
    nothing for money booked without one."""
    if not document:
        return {}
    return {
        "net": document["totals"]["net"],
        "tax": document["totals"]["tax"],
        "gross": document["totals"]["gross"],
        "tax_breakdown": [
            {
                "category": entry["treatment"]["category"],
                "rate": entry["treatment"]["rate"],
                "base": entry["base"],
                "tax": entry["tax"],
            }
            for entry in document["breakdown"]
        ],
    }


def post_credit_note(
    session: Session, note: CreditNote, refund: Refund, invoice_nos: Sequence[str] = ()
) -> ErpPosting:
    """A refund on account terms: the invoice is credited (`invoice_no`; `invoice_nos`: every
    invoice the credit names, when a return spans an order's invoices of several waves)."""
    return post(
        session,
        order_id=refund.order_id,
        kind="credit_note",
        document=note.credit_note_no,
        amount=note.amount,
        currency=note.currency,
        data={
            "invoice_no": note.invoice_no,
            "invoice_nos": list(invoice_nos) or [note.invoice_no],
            "rma_id": refund.rma_id,
            **_totals(note.document),
        },
    )


def post_refund(
    session: Session,
    refund: Refund,
    invoice_no: str | None,
    invoice_nos: Sequence[str] = (),
    priced: dict[str, Any] | None = None,
) -> ErpPosting:
    """Money back to the card, booked in the ledger (the gateway pays it out right after);
    `priced`: the credit's document (net, tax by rate), when the refund was priced."""
    return post(
        session,
        order_id=refund.order_id,
        kind="refund",
        document=refund_document(refund.id),
        amount=from_minor(refund.amount_minor, refund.currency),
        currency=refund.currency,
        data={
            "invoice_no": invoice_no,
            "invoice_nos": list(invoice_nos) or ([invoice_no] if invoice_no else []),
            "rma_id": refund.rma_id,
            "refund_key": refund.idempotency_key,
            **_totals(priced),
        },
    )


def post_cancellation(
    session: Session, order_id: str, method: str, authorized: Payment, void_reference: str
) -> ErpPosting:
    """An authorisation let go without an invoice (cancelled, failed, or nothing to bill)."""
    record = session.get(OrderRecord, order_id)
    return post(
        session,
        order_id=order_id,
        kind="cancellation",
        document=cancellation_document(order_id),
        amount=from_minor(authorized.amount_minor, authorized.currency),
        currency=authorized.currency,
        data={
            "method": method,
            "authorization_reference": authorized.reference,
            "void_reference": void_reference,
            "reason": record.reason if record else None,
        },
    )


def refund_document(refund_id: int) -> str:
    """A card refund's document number (a credit note is `CN-` with the same number)."""
    return f"RF-{refund_id:06d}"


def cancellation_document(order_id: str) -> str:
    return f"VOID-{order_id}"


class UnknownPostings(LookupError):
    """Posting ids that are not in the outbox."""


def retry_dead(
    engine: Engine, ids: list[int] | None = None, order_id: str | None = None
) -> list[tuple[ErpPosting, str]]:
    """Put dead postings back to pending, due now: `ids`, else an order's, else all of them.

    Returns each posting asked for with the state it had: one that was not dead is left as
    it is. Nothing changes when an id is unknown.

    Raises:
        UnknownPostings: ids not in the outbox.
    """
    which = ErpPosting.id.in_(ids) if ids else ErpPosting.state == "dead"
    query = select(ErpPosting).where(which).order_by(ErpPosting.id)
    if order_id is not None:
        query = query.where(ErpPosting.order_id == order_id)
    with Session(engine, expire_on_commit=False) as session, session.begin():
        found = list(session.scalars(query))
        missing = sorted(set(ids or []) - {p.id for p in found})
        if missing:
            raise UnknownPostings(", ".join(str(i) for i in missing))
        before = [(p, p.state) for p in found]
        for posting in found:
            if posting.state == "dead":
                posting.state = "pending"
                posting.next_attempt_at = utcnow()
    return before


def documents(engine: Engine) -> list[Document]:
    """Every document orderflow issued that the ERP must have, with its posting's state."""
    with Session(engine) as session:
        states = {
            key: (state, error)
            for key, state, error in session.execute(
                select(ErpPosting.idempotency_key, ErpPosting.state, ErpPosting.last_error)
            )
        }
        found: list[tuple[str, PostingKind, str, Decimal, str]] = [
            (i.order_id, "invoice", i.invoice_no, i.amount, i.currency)
            for i in session.scalars(select(Invoice))
        ]
        credited: set[int] = set()
        for note, order_id in session.execute(
            select(CreditNote, Refund.order_id).join(Refund, Refund.id == CreditNote.refund_id)
        ):
            credited.add(note.refund_id)
            found.append((order_id, "credit_note", note.credit_note_no, note.amount, note.currency))
        for r in session.scalars(select(Refund).order_by(Refund.id)):
            if r.id not in credited:
                amount = from_minor(r.amount_minor, r.currency)
                found.append((r.order_id, "refund", refund_document(r.id), amount, r.currency))
        authorized = {
            p.order_id: p
            for p in session.scalars(select(Payment).where(Payment.kind == "AUTHORIZE"))
        }
        for order_id in session.scalars(select(Payment.order_id).where(Payment.kind == "VOID")):
            auth = authorized.get(order_id)
            if auth is not None:
                amount = from_minor(auth.amount_minor, auth.currency)
                document = cancellation_document(order_id)
                found.append((order_id, "cancellation", document, amount, auth.currency))
    out = []
    for order_id, kind, document, amount, currency in found:
        key = posting_key(order_id, kind, document)
        state, error = states.get(key, (None, None))
        out.append(
            Document(
                key=key,
                order_id=order_id,
                kind=kind,
                document=document,
                amount=amount,
                currency=currency,
                state=state,
                last_error=error,
            )
        )
    return out


def _order_facts(session: Session, order_id: str) -> dict[str, Any]:
    """Who and where from: what the ERP files the document under."""
    record = session.get(OrderRecord, order_id)
    if record is None:
        return {"order_id": order_id}
    customer = session.get(Customer, record.customer_id)
    return {
        "order_id": order_id,
        "customer_id": record.customer_id,
        "customer_name": customer.name if customer else None,
        "channel": record.channel,
        "purchase_order": (record.order or {}).get("purchase_order"),
    }


def _billed_lines(
    session: Session, order_id: str, amount: Decimal, currency: str
) -> list[dict[str, Any]] | None:
    """The lines an invoice bills: the units that left and were not lost at the order's
    prices (or, failing shipment records, the lines as ordered) when they add up to the
    invoiced amount; None when the read model cannot say."""
    ordered = session.scalars(
        select(OrderLineRecord).where(OrderLineRecord.order_id == order_id)
    ).all()
    prices = {line.sku: line.unit_price for line in ordered}
    shipped: dict[str, int] = defaultdict(int)
    for row in session.scalars(
        select(ShipmentRecord).where(
            ShipmentRecord.order_id == order_id, ShipmentRecord.state.in_(GOODS_OUT)
        )
    ):
        for line in (row.detail or {}).get("lines", []):
            shipped[line["sku"]] += int(line["quantity"])
    for units in (dict(shipped), {line.sku: line.quantity for line in ordered}):
        lines: list[dict[str, Any]] = [
            {
                "sku": sku,
                "quantity": quantity,
                "unit_price": str(prices[sku]),
                "amount": str(round_money(prices[sku] * quantity, currency)),
            }
            for sku, quantity in sorted(units.items())
            if quantity and sku in prices
        ]
        if lines and sum(Decimal(str(line["amount"])) for line in lines) == amount:
            return lines
    return None
