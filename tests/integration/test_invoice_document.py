"""`orderflow invoice`: the invoice issued at capture and its credit notes, on the terminal, as
JSON and as a PDF whose text a reader (pypdf) finds; on SQLite and PostgreSQL."""

import io
import json
import os
import subprocess
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from activities.billing import MoneyRules
from activities.carriers import carriers_from_config
from activities.catalog import load_catalog
from activities.db.models import Invoice
from activities.payments import SimulatedGateway
from activities.refunds import RefundActivities
from activities.returns import ReturnsActivities
from activities.shipping import DatabaseLabelBook
from domain.order import Order
from domain.policy import CustomerTerms
from domain.returns import (
    Disposition,
    InspectionLine,
    InspectionRequest,
    RefundRequest,
    ReturnedLine,
    Rma,
    rma_id_for,
)
from domain.shipping import DEFAULT_CARRIERS
from domain.statuses import FulfilmentPolicy, PaymentTerms
from starter.invoice_document import Seller, invoice_documents
from starter.invoice_pdf import write_pdf
from starter.orders import UnknownOrder, UserError
from tests.e2e.conftest import ORDERFLOW
from tests.factories import add_order, authorize, capture, delivered_parcel, make_order, new_sku

RULES = MoneyRules.load(None, None)  # the real tax rates and charges
SELLER = Seller.of(RULES.rates)
PARIS = {
    "name": "Claire Martin",
    "street": "12 rue de Rivoli",
    "city": "Paris",
    "postal_code": "75004",
    "country": "FR",
}


def run(fn: Any, *args: Any) -> Any:
    return ActivityEnvironment().run(fn, *args)


def customer(engine: Engine, name: str, terms: PaymentTerms, vat_id: str | None = None) -> Any:
    terms_of = CustomerTerms(
        customer_id=f"C-T-{uuid.uuid4().hex[:8].upper()}",
        name=name,
        payment_terms=terms,
        credit_limit=Decimal(100000),
        fulfilment_policy=FulfilmentPolicy.SHIP_WHEN_AVAILABLE,
        priority=0,
    )
    row = terms_of.model_dump(mode="json", exclude={"priority"})
    load_catalog(engine, {"customers": [{**row, "currency": "EUR", "vat_id": vat_id}]})
    return terms_of


def delivered(engine: Engine, order: Order, *, status: str = "DELIVERED") -> None:
    """The read-model rows of an order shipped from AMS (NL) and delivered."""
    with Session(engine) as session, session.begin():
        add_order(session, order, status=status)
        session.add(delivered_parcel(order.order_id))


def invoiced(engine: Engine, order: Order, terms: CustomerTerms, *, taxed: bool = True) -> None:
    """Capture and invoice the delivered order (`taxed`: with its document, as since 0007)."""
    delivered(engine, order)
    units = {line.sku: line.quantity for line in order.lines}
    auth = authorize(engine, order, terms, RULES)
    capture(engine, order, auth, terms, rules=RULES, delivered=units if taxed else None)


def returned_and_refunded(engine: Engine, order: Order, sku: str, quantity: int) -> None:
    """One RMA of `quantity` units, received, restocked (a 10 % fee) and refunded."""
    carriers = carriers_from_config(
        DEFAULT_CARRIERS, DatabaseLabelBook(engine), down=set(), failure_rate=0.0, latency_ms=(0, 0)
    )
    returns = ReturnsActivities(engine, list(carriers))
    line = ReturnedLine(sku=sku, quantity=quantity, unit_price=Decimal("10.00"), warehouse="AMS")
    rma = Rma(
        rma_id=rma_id_for(order.order_id, 1),
        order_id=order.order_id,
        lines=[line],
        reason="does not fit",
        carrier=None,
        tracking_number=None,
        label_id=None,
    )
    run(returns.open_rma, rma)
    run(returns.receive_return, rma.rma_id)
    verdict = InspectionLine(sku=sku, quantity=quantity, disposition=Disposition.RESTOCK)
    run(returns.inspect_return, InspectionRequest(rma_id=rma.rma_id, lines=[verdict]))
    refunds = RefundActivities(engine, SimulatedGateway(latency_ms=(0, 0)), RULES)
    request = RefundRequest(
        order_id=order.order_id,
        rma_id=rma.rma_id,
        amount=Decimal("0.01"),  # priced by the credit note
        currency="EUR",
        idempotency_key=f"{order.order_id}/{rma.rma_id}",
    )
    run(refunds.refund, request)


def invoice_row(engine: Engine, order_id: str) -> Invoice:
    with Session(engine) as session:
        row = session.scalar(select(Invoice).where(Invoice.order_id == order_id))
    assert row is not None
    return row


def orderflow(database_url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_HOME=str(tmp_path / "home"), ORDERFLOW_DATABASE_URL=database_url, COLUMNS="160"
    )
    command = [ORDERFLOW, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)


def pdf_pages(data: bytes) -> list[str]:
    """Each page's text as laid out: a table row is one line, cells one space apart."""
    pages = [p.extract_text(extraction_mode="layout") for p in PdfReader(io.BytesIO(data)).pages]
    return ["\n".join(" ".join(line.split()) for line in page.splitlines()) for page in pages]


def line_with(text: str, *parts: str) -> str:
    """The one line of `text` that has every part."""
    found = [line for line in text.splitlines() if all(part in line for part in parts)]
    assert len(found) == 1, f"no single line with {parts} in:\n{text}"
    return found[0]


def test_invoice_and_credit_note_on_the_terminal_as_json_and_in_the_pdf(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    terms = customer(engine, "Łukasz & Zoë B.V.", PaymentTerms.NET_30)
    order = make_order({sku: 3}, customer=terms.customer_id)  # to Amsterdam
    invoiced(engine, order, terms)
    returned_and_refunded(engine, order, sku, 1)
    row = invoice_row(engine, order.order_id)
    number, issued = row.invoice_no, row.issued_at.date()
    due = issued + timedelta(days=30)
    pdf = tmp_path / "invoice.pdf"

    shown = orderflow(database_url, tmp_path, "invoice", order.order_id, "--pdf", str(pdf))

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"Invoice {number}" in out and f"Net-30, due {due}" in out
    assert "VAT id NL123456789B01" in out and "Łukasz & Zoë B.V." in out
    assert "seller      Orderflow Demo B.V., Keizersgracht 100" in out
    # 3 x 10.00 + 4.95 domestic shipping = 34.95 at 21 %: 7.34 tax (rounded once per rate)
    assert line_with(out, "VAT 21 % NL, standard rate", "34.95", "7.34")
    assert "gross € 42.29" in out
    assert f"Credit note CN-{issued.year}-" in out and f"on invoice {number}" in out
    assert "gross € 10.89" in out  # 1 unit: 10.00 less 1.00 restocking fee, plus 1.89 VAT
    assert f"pdf: {pdf} (2 pages)" in out

    invoice_page, credit_page = pdf_pages(pdf.read_bytes())
    assert line_with(invoice_page, "INVOICE") and line_with(invoice_page, "Invoice no", number)
    assert line_with(invoice_page, "VAT 21 % NL, standard rate", "34.95", "7.34")
    assert line_with(invoice_page, "Shipping", "4.95")
    assert line_with(invoice_page, "Due date", str(due))
    assert line_with(invoice_page, "Total", "€ 42.29")
    assert "VAT id: NL123456789B01" in invoice_page
    assert "Orderflow Demo B.V." in invoice_page and "1015 CV Amsterdam" in invoice_page
    assert "Lukasz & Zoë B.V." in invoice_page  # Ł: not in Helvetica, printed as L
    assert "page 1 of 2" in invoice_page
    assert "CREDIT NOTE" in credit_page and f"Credits invoice {number}" in credit_page
    assert line_with(credit_page, "Fee kept")
    assert line_with(credit_page, "1", "10.00", "1.00", "9.00", "21 %", "1.89")
    assert line_with(credit_page, "Total credited", "€ 10.89")
    assert "Reason does not fit" in credit_page and "page 2 of 2" in credit_page

    again = tmp_path / "again.pdf"
    write_pdf(invoice_documents(engine, order.order_id, SELLER), again)
    assert again.read_bytes() == pdf.read_bytes()  # the same bytes every time

    as_json = orderflow(database_url, tmp_path, "invoice", order.order_id, "--json")
    stored = json.loads(as_json.stdout)
    assert stored["invoice"] == row.document
    assert [note["totals"]["gross"] for note in stored["credit_notes"]] == ["10.89"]


def test_an_eu_business_with_a_vat_id_is_billed_under_reverse_charge(
    engine: Engine, tmp_path: Path
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    terms = customer(engine, "Société Test SARL", PaymentTerms.PREPAID, vat_id="FR40303265045")
    order = make_order({sku: 2}, customer=terms.customer_id)
    order = Order.model_validate({**order.model_dump(mode="json"), "ship_to": PARIS})
    invoiced(engine, order, terms)
    pdf = tmp_path / "fr.pdf"

    docs = invoice_documents(engine, order.order_id, SELLER)
    assert write_pdf(docs, pdf) == 1

    (page,) = pdf_pages(pdf.read_bytes())
    assert "VAT id: FR40303265045" in page and "Société Test SARL" in page
    # 2 x 10.00 + 7.95 shipping NL -> FR, tax 0: the customer accounts for the VAT
    assert line_with(page, "VAT 0 % FR, intra-EU supply", "27.95", "0.00")
    assert "reverse charge, VAT to be accounted for by the recipient" in page
    assert line_with(page, "Total", "€ 27.95")
    assert "paid on issue (card)" in page


def test_orders_without_an_invoice_document_say_why(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    terms = customer(engine, "Old account", PaymentTerms.PREPAID)
    old = make_order({sku: 1}, customer=terms.customer_id)
    invoiced(engine, old, terms, taxed=False)  # captured before invoices carried tax
    waiting = make_order({sku: 1}, customer=terms.customer_id)
    delivered(engine, waiting, status="SHIPPED")

    number = invoice_row(engine, old.order_id).invoice_no
    with pytest.raises(UserError) as before:
        invoice_documents(engine, old.order_id, SELLER)
    assert str(before.value) == (
        f"invoice {number} was issued before invoices carried their lines and tax; "
        "no document to show"
    )
    with pytest.raises(UserError, match=f"order {waiting.order_id} is not invoiced yet: it is "):
        invoice_documents(engine, waiting.order_id, SELLER)
    with pytest.raises(UnknownOrder):
        invoice_documents(engine, "no-such-order", SELLER)

    unknown = orderflow(database_url, tmp_path, "invoice", "no-such-order")
    assert (unknown.returncode, unknown.stderr) == (1, "error: unknown order no-such-order\n")
