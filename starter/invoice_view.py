"""`orderflow invoice` on the terminal: the invoice, then every credit note on it."""

from collections.abc import Sequence

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from domain.credit_notes import CreditNote
from domain.invoicing import Invoice, InvoiceLine, TaxBreakdown, Totals
from starter.invoice_document import InvoiceDocuments, address, money, rate, tax_name, terms


def invoice_view(docs: InvoiceDocuments) -> Group:
    """The invoice with its parties, lines, tax by rate, notes and totals; then the credits."""
    invoice = docs.invoice
    parts: list[RenderableType] = [
        Text.from_markup(
            f"[bold]Invoice {invoice.invoice_no}[/bold]  order {invoice.order_id}  "
            f"issued {invoice.issued_on}  {terms(invoice)}"
        ),
        *_parties(docs),
        *_body(invoice),
    ]
    for note in docs.credit_notes:
        parts += ["", *_credit_heading(note), *_body(note)]
    for refund in docs.other_refunds:
        parts.append(
            f"{refund.document_no}: {money(refund.amount, refund.currency, symbol=True)} "
            f"refunded{f' on {refund.rma_id}' if refund.rma_id else ''}, "
            "without a credit document (no inspected return to price it)"
        )
    return Group(*parts)


def _parties(docs: InvoiceDocuments) -> list[RenderableType]:
    seller, to = docs.seller, docs.invoice.bill_to
    who = ", ".join([seller.name, *seller.address]) if seller.name else seller.country
    rows = [
        f"seller      {who}"
        + (f", VAT id {seller.vat_id}" if seller.vat_id else ", no VAT id configured"),
        f"bill to     {to.name or to.customer_id} ({to.customer_id})"
        + (f", VAT id {to.vat_id}" if to.vat_id else ""),
    ]
    if docs.ship_to:
        rows.append(f"deliver to  {address(docs.ship_to)}")
    return [Text(row) for row in rows]


def _credit_heading(note: CreditNote) -> list[RenderableType]:
    heading = Text.from_markup(
        f"[bold]Credit note {note.credit_note_no}[/bold]  on invoice {note.invoice_no}  "
        f"issued {note.issued_on}"
    )
    return [heading, Text(f"reason      {note.reason}")] if note.reason else [heading]


def _body(doc: Invoice | CreditNote) -> list[RenderableType]:
    parts: list[RenderableType] = [
        _lines(doc.lines, doc.currency),
        _breakdown(doc.breakdown, doc.currency),
    ]
    parts += [Text(f"note: {note}", style="italic") for note in doc.notes]
    parts.append(_totals(doc.totals, doc.currency))
    return parts


def _lines(lines: Sequence[InvoiceLine], currency: str) -> Table:
    fees = any(line.restocking_fee for line in lines)
    table = Table(title=f"lines ({currency})", title_justify="left")
    table.add_column("description")
    table.add_column("sku", no_wrap=True)
    for column in ("qty", "unit net", *(["fee kept"] if fees else []), "net", "rate", "tax"):
        table.add_column(column, justify="right", no_wrap=True)
    for line in lines:
        table.add_row(
            line.description,
            line.sku or "",
            str(line.quantity),
            money(line.unit_net, currency),
            *([money(line.restocking_fee, currency)] if fees else []),
            money(line.net, currency),
            rate(line.treatment),
            money(line.tax, currency),
        )
    return table


def _breakdown(breakdown: Sequence[TaxBreakdown], currency: str) -> Table:
    table = Table(title=f"tax by rate ({currency})", title_justify="left")
    table.add_column("tax")
    table.add_column("category", no_wrap=True)
    for column in ("base", "tax"):
        table.add_column(column, justify="right", no_wrap=True)
    for entry in breakdown:
        table.add_row(
            tax_name(entry.treatment),
            entry.treatment.category.value,
            money(entry.base, currency),
            money(entry.tax, currency),
        )
    return table


def _totals(totals: Totals, currency: str) -> Text:
    return Text.from_markup(
        f"net {money(totals.net, currency, symbol=True)}  "
        f"tax {money(totals.tax, currency, symbol=True)}  "
        f"[bold]gross {money(totals.gross, currency, symbol=True)}[/bold]"
    )
