"""`orderflow invoice` on the terminal: each invoice of the order, then every credit note."""

from collections.abc import Sequence
from decimal import Decimal

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from domain.credit_notes import CreditNote
from domain.invoicing import Invoice, InvoiceLine, TaxBreakdown, Totals
from starter.invoice_document import InvoiceDocuments, address, money, rate, tax_name, terms


def invoice_view(docs: InvoiceDocuments) -> Group:
    """Each invoice with its lines, tax by rate, notes and totals (the parties under the
    first, and under any billed to someone else); with several, what they add up to; then
    the credits."""
    parts: list[RenderableType] = []
    for i, invoice in enumerate(docs.invoices):
        of = f"  (invoice {i + 1} of {len(docs.invoices)})" if len(docs.invoices) > 1 else ""
        if i:
            parts.append("")
        parts.append(
            Text.from_markup(
                f"[bold]Invoice {invoice.invoice_no}[/bold]  order {invoice.order_id}  "
                f"issued {invoice.issued_on}  {terms(invoice)}{of}"
            )
        )
        if i == 0 or invoice.bill_to != docs.invoices[i - 1].bill_to:
            parts += _parties(docs, invoice)
        parts += _body(invoice)
    if len(docs.invoices) > 1:
        parts += ["", _all_invoices(docs)]
    for note in docs.credit_notes:
        parts += ["", *_credit_heading(note), *_body(note)]
    for refund in docs.other_refunds:
        parts.append(
            f"{refund.document_no}: {money(refund.amount, refund.currency, symbol=True)} "
            f"refunded{f' on {refund.rma_id}' if refund.rma_id else ''}, "
            "without a credit document (no inspected return to price it)"
        )
    return Group(*parts)


def _all_invoices(docs: InvoiceDocuments) -> Text:
    currency = docs.invoices[0].currency
    net = sum((invoice.totals.net for invoice in docs.invoices), Decimal(0))
    tax = sum((invoice.totals.tax for invoice in docs.invoices), Decimal(0))
    gross = sum((invoice.totals.gross for invoice in docs.invoices), Decimal(0))
    return Text.from_markup(
        f"[bold]{len(docs.invoices)} invoices[/bold] {', '.join(docs.numbers)}:  "
        f"net {money(net, currency, symbol=True)}  tax {money(tax, currency, symbol=True)}  "
        f"[bold]gross {money(gross, currency, symbol=True)}[/bold]"
    )


def _parties(docs: InvoiceDocuments, invoice: Invoice) -> list[RenderableType]:
    seller, to = docs.seller, invoice.bill_to
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
    on = f"on invoice {note.invoice_no}"
    if len(note.credits) > 1:
        on = f"on invoices {' + '.join(note.credits)}"
    heading = Text.from_markup(
        f"[bold]Credit note {note.credit_note_no}[/bold]  {on}  issued {note.issued_on}"
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
