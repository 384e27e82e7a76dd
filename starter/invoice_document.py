"""An order's invoices and credit notes as stored, read for `orderflow invoice`, and how their
amounts, rates and parties read on the terminal and in the PDF."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from activities.db.models import CreditNote, Invoice, OrderRecord, Refund
from activities.erp_outbox import refund_document
from activities.invoices import invoices_of
from domain import credit_notes, invoicing
from domain.money import quantum
from domain.statuses import OrderStatus, PaymentTerms
from domain.tax import TaxCategory, TaxRates, TaxScheme, TaxTreatment
from starter.orders import UnknownOrder, UserError

CATEGORY_NAMES: dict[TaxCategory, str] = {
    TaxCategory.STANDARD: "standard rate",
    TaxCategory.ZERO: "zero rated",
    TaxCategory.INTRA_EU_SUPPLY: "intra-EU supply",
    TaxCategory.REVERSE_CHARGE: "reverse charge",
    TaxCategory.EXPORT: "export",
    TaxCategory.EXEMPT: "exempt",
}
SYMBOLS = {"EUR": "€", "GBP": "£", "USD": "$"}
TERMS = {PaymentTerms.PREPAID: "prepaid", PaymentTerms.NET_30: "Net-30"}


@dataclass(frozen=True)
class Seller:
    """Who issues the documents, from the tax rates file."""

    country: str
    vat_id: str | None
    name: str | None = None
    address: tuple[str, ...] = ()

    @classmethod
    def of(cls, rates: TaxRates) -> "Seller":
        return cls(
            country=rates.seller_country,
            vat_id=rates.seller_vat_id,
            name=rates.seller_name,
            address=tuple(rates.seller_address),
        )


@dataclass(frozen=True)
class UndocumentedRefund:
    """Money given back with no credit document (no RMA, or an invoice without one)."""

    document_no: str
    amount: Decimal
    currency: str
    rma_id: str | None


@dataclass(frozen=True)
class InvoiceDocuments:
    """The invoices of one order (one per capture: an order captured per wave of parcels has
    several) and every credit on them, oldest first, as stored."""

    invoices: list[invoicing.Invoice]
    credit_notes: list[credit_notes.CreditNote]
    seller: Seller
    ship_to: dict[str, str] = field(default_factory=dict)
    other_refunds: list[UndocumentedRefund] = field(default_factory=list)
    stored: dict[str, Any] = field(default_factory=dict)
    """The documents' JSON exactly as the database has them (`--json`): `invoices` (a list,
    by capture), `credit_notes`, and `invoice` when there is exactly one invoice."""
    issued: dict[str, date] = field(default_factory=dict)
    """Issue date of every invoice of the order, by number (a credit note names them)."""

    @property
    def numbers(self) -> list[str]:
        """The invoices' numbers, by capture."""
        return [invoice.invoice_no or "" for invoice in self.invoices]


def invoice_documents(engine: Engine, wanted: str, seller: Seller) -> InvoiceDocuments:
    """An order's invoices and credit documents; `wanted` is the order id, or the number of
    one of its invoices (then that invoice alone, with the credits that name it).

    Raises:
        UnknownOrder: no such order or invoice in the read model.
        UserError: the order is not invoiced, or an invoice predates invoice documents.
    """
    with Session(engine) as session:
        one = session.get(Invoice, wanted)  # an invoice number (INV-2026-000042)
        order_id = one.order_id if one is not None else wanted
        order = session.get(OrderRecord, order_id)
        every = invoices_of(session, order_id)
        rows = [one] if one is not None else every
        if not rows and order is None:
            raise UnknownOrder(f"unknown order {order_id}")
        if not rows:
            assert order is not None
            raise UserError(_not_invoiced(order_id, order.status))
        for row in rows:
            if not row.document:
                raise UserError(
                    f"invoice {row.invoice_no} was issued before invoices carried their lines "
                    "and tax; no document to show"
                )
        numbers = {row.invoice_no for row in rows}
        refunds = session.scalars(
            select(Refund).where(Refund.order_id == order_id).order_by(Refund.id)
        ).all()
        notes = {
            note.refund_id: note
            for note in session.scalars(
                select(CreditNote).where(CreditNote.invoice_no.in_([r.invoice_no for r in every]))
            )
        }
        credits: list[dict[str, Any]] = []
        others: list[UndocumentedRefund] = []
        for refund in refunds:
            note = notes.get(refund.id)
            document = (note.document if note is not None else None) or refund.document
            if document:
                named = credit_notes.CreditNote.model_validate(document).credits
                if one is None or numbers & set(named):
                    credits.append(document)
            elif one is None or (note is not None and note.invoice_no in numbers):
                others.append(
                    UndocumentedRefund(
                        document_no=note.credit_note_no if note else refund_document(refund.id),
                        amount=Decimal(refund.amount_minor) * quantum(refund.currency),
                        currency=refund.currency,
                        rma_id=refund.rma_id,
                    )
                )
        ship_to = (order.order.get("ship_to") or {}) if order is not None else {}
        stored: dict[str, Any] = {"invoices": [row.document for row in rows]}
        if len(rows) == 1:
            stored["invoice"] = rows[0].document
        stored["credit_notes"] = credits
        issued = {
            row.invoice_no: (
                date.fromisoformat(row.document["issued_on"])
                if row.document
                else row.issued_at.date()
            )
            for row in every
        }
    return InvoiceDocuments(
        invoices=[invoicing.Invoice.model_validate(row.document) for row in rows],
        credit_notes=[credit_notes.CreditNote.model_validate(c) for c in credits],
        seller=seller,
        ship_to={k: str(v) for k, v in ship_to.items() if v},
        other_refunds=others,
        stored=stored,
        issued=issued,
    )


def _not_invoiced(order_id: str, status: str) -> str:
    if status in {s.value for s in OrderStatus if s.is_final}:
        return f"order {order_id} has no invoice: it is {status}"
    return (
        f"order {order_id} is not invoiced yet: it is {status} "
        "(the invoice is issued at capture, after delivery)"
    )


def money(amount: Decimal, currency: str, *, symbol: bool = False) -> str:
    """12.50, or with `symbol` "€ 12.50" (the code where there is no symbol: "CHF 12.50")."""
    text = f"{amount.quantize(quantum(currency)):,f}"
    return f"{SYMBOLS.get(currency, currency)} {text}" if symbol else text


def rate(treatment: TaxTreatment) -> str:
    """E.g. "21 %", "5.5 %", "0 %"."""
    return f"{treatment.rate.normalize():f} %"


def tax_name(treatment: TaxTreatment) -> str:
    """E.g. "VAT 21 % NL, standard rate"."""
    scheme = "VAT" if treatment.scheme is TaxScheme.VAT else "Sales tax"
    category = CATEGORY_NAMES.get(treatment.category, treatment.category.value)
    return f"{scheme} {rate(treatment)} {treatment.jurisdiction}, {category}"


def credited(docs: InvoiceDocuments, note: credit_notes.CreditNote) -> str:
    """The invoices a credit note credits, with their dates: "INV-1 of 2026-06-01"."""
    return ", ".join(
        f"{number} of {docs.issued[number]}" if number in docs.issued else number
        for number in note.credits
    )


def terms(invoice: invoicing.Invoice, *, due: bool = True) -> str:
    """How the invoice is paid: "Net-30, due 2026-06-01" ("Net-30" without `due`), or
    "paid on issue (card)"."""
    if invoice.paid_on_issue:
        return "paid on issue (card)"
    name = TERMS.get(invoice.bill_to.payment_terms, invoice.bill_to.payment_terms.value)
    return f"{name}, due {invoice.due_on}" if due else name


def address(ship_to: dict[str, str]) -> str:
    """One line: name, street, postal code and city, country."""
    place = " ".join(ship_to[k] for k in ("postal_code", "city") if k in ship_to)
    parts = [ship_to.get("name", ""), ship_to.get("street", ""), place, ship_to.get("country", "")]
    return ", ".join(p for p in parts if p)
