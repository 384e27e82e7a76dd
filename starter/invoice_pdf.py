"""An order's invoices and their credit notes as an A4 PDF (ReportLab platypus), each document
on a page (or more) of its own, numbered "page 2 of 3" with the document's number in the
footer: every invoice of the order (one per capture), then every credit note.

Helvetica, one of the PDF standard fonts: nothing is embedded, every machine renders the same
bytes (`invariant`: no timestamp, no random id), and it prints € (WinAnsi encoding). Letters
WinAnsi lacks print as their base letter ("Ł" as "L", "č" as "c") or "?": the terminal view and
`--json` keep them as they are.
"""

import unicodedata
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    BaseDocTemplate,
    Flowable,
    Frame,
    PageBreak,
    PageTemplate,
    Paragraph,
    Spacer,
    Table,
    TableStyle,
)

from domain.credit_notes import CreditNote
from domain.invoicing import BillTo, Invoice, InvoiceLine, TaxBreakdown
from starter.invoice_document import InvoiceDocuments, credited, money, rate, tax_name, terms

FONT, BOLD = "Helvetica", "Helvetica-Bold"
MARGIN = 18 * mm
STROKED = {"Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "Ħ": "H", "ħ": "h", "\u0131": "i"}
GRID = colors.HexColor("#9a9a9a")
SHADE = colors.HexColor("#ececec")

BODY = ParagraphStyle("body", fontName=FONT, fontSize=9, leading=12)
SMALL = ParagraphStyle("small", parent=BODY, fontSize=8, leading=10)
RIGHT = ParagraphStyle("right", parent=BODY, alignment=TA_RIGHT)
SMALL_RIGHT = ParagraphStyle("small_right", parent=SMALL, alignment=TA_RIGHT)
LABEL = ParagraphStyle("label", parent=BODY, fontName=BOLD)
LABEL_RIGHT = ParagraphStyle("label_right", parent=LABEL, alignment=TA_RIGHT)
TITLE = ParagraphStyle("title", parent=BODY, fontName=BOLD, fontSize=18, leading=22)
HEADING = ParagraphStyle("heading", parent=BODY, fontName=BOLD, fontSize=10, spaceBefore=8)


def write_pdf(docs: InvoiceDocuments, path: Path) -> int:
    """Write each invoice, then each credit note, to `path`; returns the number of pages.

    Raises:
        OSError: `path` cannot be written.
    """
    pdf = BaseDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=MARGIN + 6 * mm,
        title=f"Invoice{'s' if len(docs.invoices) > 1 else ''} {', '.join(docs.numbers)}",
        author="orderflow",
        creator="orderflow",
        invariant=True,
    )
    frame = Frame(pdf.leftMargin, pdf.bottomMargin, pdf.width, pdf.height, id="body")
    pdf.addPageTemplates([PageTemplate(id="page", frames=[frame], onPageEnd=_footer)])
    story: list[Flowable] = []
    for i, invoice in enumerate(docs.invoices):
        story += [*([PageBreak()] if i else []), *_invoice(docs, invoice, pdf.width)]
    for note in docs.credit_notes:
        story += [PageBreak(), *_credit_note(docs, note, pdf.width)]
    pdf.build(story, canvasmaker=_NumberedCanvas)
    return int(pdf.page)


def printable(text: str) -> str:
    """`text` in what Helvetica prints (WinAnsi): other letters as their base letter, or "?"."""
    out = []
    for char in text:
        if _winansi(char):
            out.append(char)
            continue
        decomposed = unicodedata.normalize("NFKD", char)
        base = STROKED.get(char) or "".join(c for c in decomposed if not unicodedata.combining(c))
        out.append(base if base and _winansi(base) else "?")
    return "".join(out)


def _winansi(text: str) -> bool:
    try:
        text.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def _p(text: str, style: ParagraphStyle = BODY) -> Paragraph:
    return Paragraph(escape(printable(text)).replace("\n", "<br/>"), style)


class _DocumentMark(Flowable):  # type: ignore[misc]
    """Takes no room; tells the footer which document the page belongs to."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def wrap(self, available_width: float, available_height: float) -> tuple[float, float]:
        return 0, 0

    def draw(self) -> None:
        self.canv.orderflow_document = self.label


def _footer(canvas: Canvas, pdf: BaseDocTemplate) -> None:
    canvas.saveState()
    canvas.setFont(FONT, 8)
    canvas.setFillColor(colors.grey)
    label = getattr(canvas, "orderflow_document", "")
    canvas.drawString(MARGIN, MARGIN, printable(label))
    canvas.restoreState()


class _NumberedCanvas(Canvas):  # type: ignore[misc]
    """Holds the pages back until the end, so each can say "page 2 of 3"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._pages: list[dict[str, Any]] = []

    def showPage(self) -> None:
        self._pages.append(dict(self.__dict__))
        self._startPage()

    def save(self) -> None:
        for number, state in enumerate(self._pages, start=1):
            self.__dict__.update(state)
            self.setFont(FONT, 8)
            self.setFillColor(colors.grey)
            self.drawRightString(A4[0] - MARGIN, MARGIN, f"page {number} of {len(self._pages)}")
            super().showPage()
        super().save()


def _invoice(docs: InvoiceDocuments, invoice: Invoice, width: float) -> list[Flowable]:
    meta = [
        ("Invoice no", invoice.invoice_no or ""),
        ("Order", invoice.order_id),
        ("Issue date", str(invoice.issued_on)),
        ("Due date", str(invoice.due_on)),
        ("Payment", terms(invoice, due=False)),
    ]
    if len(docs.invoices) > 1:
        at = docs.invoices.index(invoice) + 1
        meta.insert(2, ("Part", f"invoice {at} of {len(docs.invoices)} of the order"))
    label = f"Invoice {invoice.invoice_no} - order {invoice.order_id}"
    return [
        _DocumentMark(label),
        *_header("INVOICE", docs, meta, width, invoice.bill_to),
        *_body(invoice, width),
    ]


def _credit_note(docs: InvoiceDocuments, note: CreditNote, width: float) -> list[Flowable]:
    meta = [
        ("Credit note no", note.credit_note_no or ""),
        ("Credits invoice" + ("s" if len(note.credits) > 1 else ""), credited(docs, note)),
        ("Order", note.order_id),
        ("Issue date", str(note.issued_on)),
    ]
    if note.reason:
        meta.append(("Reason", note.reason))
    on = " + ".join(note.credits) or note.invoice_no
    label = (
        f"Credit note {note.credit_note_no} on invoice{'s' if len(note.credits) > 1 else ''} {on}"
    )
    header = _header("CREDIT NOTE", docs, meta, width, note.bill_to)
    return [_DocumentMark(label), *header, *_body(note, width)]


def _header(
    title: str, docs: InvoiceDocuments, meta: list[tuple[str, str]], width: float, to: BillTo
) -> list[Flowable]:
    seller = docs.seller
    seller_lines = [*([seller.name] if seller.name else []), *seller.address]
    seller_lines += [] if seller.address else [f"Country: {seller.country}"]
    seller_lines.append(f"VAT id: {seller.vat_id}" if seller.vat_id else "no VAT id configured")
    bill = [to.name or to.customer_id, f"Customer: {to.customer_id}"]
    if to.vat_id:
        bill.append(f"VAT id: {to.vat_id}")
    ship = docs.ship_to
    if ship:
        place = " ".join(ship[k] for k in ("postal_code", "city") if k in ship)
        bill += ["Deliver to:", *(x for x in (ship.get("name"), ship.get("street"), place) if x)]
        bill.append(ship.get("country", to.country))
    top = Table(
        [[_p(title, TITLE), [_p("Seller", LABEL_RIGHT), _p("\n".join(seller_lines), RIGHT)]]],
        colWidths=[width * 0.6, width * 0.4],
    )
    top.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    facts = Table(
        [[_p(k, SMALL), _p(v)] for k, v in meta], colWidths=[28 * mm, width * 0.5 - 28 * mm]
    )
    facts.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)])
    )
    parties = Table(
        [[[_p("Bill to", LABEL), _p("\n".join(bill))], facts]],
        colWidths=[width * 0.5, width * 0.5],
    )
    parties.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return [top, Spacer(0, 6 * mm), parties, Spacer(0, 6 * mm)]


def _body(doc: Invoice | CreditNote, width: float) -> list[Flowable]:
    story: list[Flowable] = [
        _lines(doc.lines, doc.currency, width),
        _p(f"Tax by rate ({doc.currency})", HEADING),
        _breakdown(doc.breakdown, doc.currency, width),
    ]
    if doc.notes:
        story.append(_p("Notes", HEADING))
        story += [_p(note, SMALL) for note in doc.notes]
    total = "Total credited" if isinstance(doc, CreditNote) else "Total"
    rows = [
        ["Net total", money(doc.totals.net, doc.currency, symbol=True)],
        ["Tax", money(doc.totals.tax, doc.currency, symbol=True)],
        [total, money(doc.totals.gross, doc.currency, symbol=True)],
    ]
    totals = Table(
        [[printable(a), printable(b)] for a, b in rows],
        colWidths=[35 * mm, 35 * mm],
        hAlign="RIGHT",
    )
    totals.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), FONT, 9),
                ("FONT", (0, -1), (-1, -1), BOLD, 10),
                ("ALIGN", (1, 0), (1, -1), "RIGHT"),
                ("LINEABOVE", (0, -1), (-1, -1), 0.8, colors.black),
            ]
        )
    )
    return [*story, Spacer(0, 4 * mm), totals]


def _lines(lines: Sequence[InvoiceLine], currency: str, width: float) -> Table:
    fees = any(line.restocking_fee for line in lines)
    header = ["Description", "Qty", "Unit net", *(["Fee kept"] if fees else []), "Net", "Tax %"]
    header.append("Tax")
    rows: list[list[Any]] = [_header_row(header)]
    for line in lines:
        description = line.description + (f"\n{line.sku}" if line.sku else "")
        rows.append(
            [
                _p(description),
                str(line.quantity),
                money(line.unit_net, currency),
                *([money(line.restocking_fee, currency)] if fees else []),
                money(line.net, currency),
                rate(line.treatment),
                money(line.tax, currency),
            ]
        )
    numbers = len(header) - 1
    column = 22 * mm
    table = Table(rows, colWidths=[width - numbers * column, *[column] * numbers], repeatRows=1)
    table.setStyle(_grid([("ALIGN", (1, 0), (-1, -1), "RIGHT")]))
    return table


def _breakdown(breakdown: Sequence[TaxBreakdown], currency: str, width: float) -> Table:
    rows: list[list[Any]] = [_header_row(["Tax", "Category", "Base", "Tax"])]
    for entry in breakdown:
        rows.append(
            [
                _p(tax_name(entry.treatment)),
                entry.treatment.category.value,
                money(entry.base, currency),
                money(entry.tax, currency),
            ]
        )
    column = 22 * mm
    table = Table(rows, colWidths=[width - 3 * column, column, column, column])
    table.setStyle(_grid([("ALIGN", (1, 0), (-1, -1), "RIGHT")]))
    return table


def _header_row(names: list[str]) -> list[Paragraph]:
    """Column names, the first left (the text column), the others right like their numbers."""
    return [_p(name, SMALL if i == 0 else SMALL_RIGHT) for i, name in enumerate(names)]


def _grid(extra: list[tuple[Any, ...]]) -> TableStyle:
    return TableStyle(
        [
            ("FONT", (0, 0), (-1, -1), FONT, 9),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("BACKGROUND", (0, 0), (-1, 0), SHADE),
            ("LINEBELOW", (0, 0), (-1, 0), 0.6, GRID),
            ("LINEBELOW", (0, -1), (-1, -1), 0.6, GRID),
            *extra,
        ]
    )
