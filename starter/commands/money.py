"""Finance commands: an order's invoices and credit notes, on the terminal, as JSON or a PDF."""

from pathlib import Path
from typing import Annotated

import typer

from starter import render
from starter.app import JsonFlag, app
from starter.orders import UserError
from workers.settings import get_settings

PANEL = "Invoices"


@app.command(rich_help_panel=PANEL)
def invoice(
    order_id: Annotated[
        str, typer.Argument(metavar="ORDER", help="an order id, or one invoice's number")
    ],
    pdf: Annotated[
        Path | None, typer.Option(help="also write the invoices and credit notes to this PDF")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The order's invoices (one per capture) and every credit note on them: lines, tax by
    rate, totals, due date. Given an invoice number: that invoice and the credits on it.

    Read from the database: works with the stack stopped.
    """
    from activities.billing import MoneyRules
    from activities.db.engine import make_engine
    from starter.invoice_document import Seller, invoice_documents

    settings = get_settings()
    rules = MoneyRules.load(settings.tax_rates_file, settings.charges_file)
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        docs = invoice_documents(engine, order_id, Seller.of(rules.rates))
    finally:
        engine.dispose()
    pages = None
    if pdf is not None:
        from starter.invoice_pdf import write_pdf

        try:
            pages = write_pdf(docs, pdf)
        except OSError as error:
            raise UserError(f"cannot write {pdf}: {error.strerror or error}") from None
    if as_json:
        render.print_json(docs.stored)
        return
    from starter.invoice_view import invoice_view

    render.console.print(invoice_view(docs))
    if pdf is not None:
        print(f"pdf: {pdf} ({pages} page{'s' if pages != 1 else ''})")
