"""Credit notes that mirror their invoice, and the check that credits never exceed it per rate.

A credit note takes the invoice's lines (same unit prices, same tax treatments) for the
units returned, less any restocking fee, and the invoice's shipping lines when shipping is
refunded. Its tax per rate is the cumulative tax of everything credited on that rate so far
(earlier notes included) less what earlier notes credited, rounded half up like the
invoice: the VAT refunded is proportional to the net credited, several partial notes never
add up to a cent more than the invoice, and a full return credits exactly its tax.

An order invoiced per wave of parcels is credited against all its invoices at once
(`domain.invoicing.combined`): a SKU billed on several invoices is credited from the earliest
invoice's units first, and the note names the invoices whose units (or shipping) it credits.
"""

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.invoicing import (
    BillTo,
    CombinedInvoice,
    Invoice,
    InvoiceLine,
    LineKind,
    TaxBreakdown,
    Totals,
    cumulative_tax,
    invoice_label,
    invoice_numbers,
    notes_of,
    price_lines,
    tax_by_rate,
)
from domain.money import allocate, has_valid_precision, round_half_up
from domain.tax import TaxKey, TaxTreatment


class CreditRefused(ValueError):
    """A credit the invoice does not allow: units not on it or already credited, a bad fee."""


class CreditNote(BaseModel):
    """A credit note against an order's invoice(s); `credit_note_no` is given by the activity."""

    credit_note_no: str | None = None
    invoice_no: str | None
    """The (first) invoice credited: the one the ledger's credit note row refers to."""
    order_id: str
    currency: str
    bill_to: BillTo
    issued_on: date
    reason: str = ""
    lines: list[InvoiceLine]
    breakdown: list[TaxBreakdown]
    totals: Totals
    notes: list[str] = Field(default_factory=list)
    invoice_nos: list[str] = Field(default_factory=list)
    """Every invoice it credits, in the order of their captures (empty on notes issued
    before orders had several invoices: `invoice_no` alone)."""

    @property
    def credits(self) -> list[str]:
        """The invoices it credits: `invoice_nos`, or `invoice_no` on an older note."""
        return list(self.invoice_nos) or ([self.invoice_no] if self.invoice_no else [])


def credited_quantities(notes: Sequence[CreditNote]) -> dict[str, int]:
    """Units credited so far per SKU."""
    credited: dict[str, int] = {}
    for note in notes:
        for line in note.lines:
            if line.kind is LineKind.GOODS and line.sku:
                credited[line.sku] = credited.get(line.sku, 0) + line.quantity
    return credited


def credit_note_for(
    invoice: Invoice,
    returned: Mapping[str, int],
    *,
    issued_on: date,
    restocking_fees: Mapping[str, Decimal] | None = None,
    refund_shipping: bool = False,
    earlier: Sequence[CreditNote] = (),
    reason: str = "",
) -> CreditNote:
    """The credit note of returned units (and shipping, when refunded) on `invoice`.

    Args:
        invoice: The invoice credited, or all the order's invoices (`combined`): a SKU on
            several lines is credited from the earliest line's units first, its fee split
            over them by value; the note names the invoices it takes from (`invoice_nos`).
        returned: Units credited now per SKU.
        issued_on: The credit note's date.
        restocking_fees: Net fee kept per SKU (`domain.restocking.restocking_fees`).
        refund_shipping: Credit what is left of the invoice's shipping lines.
        earlier: The credit notes already issued on this invoice (on the order, combined).
        reason: The return's reason, printed on the note.

    Raises:
        CreditRefused: a SKU not invoiced, more units than are left to credit, a fee below 0,
            above the line or finer than the currency, or nothing to credit at all.
    """
    fees = dict(restocking_fees or {})
    unknown = set(fees) - set(returned)
    if unknown:
        raise CreditRefused(f"restocking fee for {', '.join(sorted(unknown))}, not returned")
    goods: dict[str, list[InvoiceLine]] = {}
    for line in invoice.lines:
        if line.kind is LineKind.GOODS and line.sku:
            goods.setdefault(line.sku, []).append(line)
    already = credited_quantities(earlier)
    drafts: list[InvoiceLine] = []
    for sku, quantity in returned.items():
        lines = goods.get(sku)
        if lines is None:
            raise CreditRefused(f"{sku} is not on invoice {invoice_label(invoice)}")
        left = sum(line.quantity for line in lines) - already.get(sku, 0)
        if not 0 < quantity <= left:
            raise CreditRefused(f"{quantity} of {sku} cannot be credited: {left} left")
        taken = _first_in_first_out(lines, already.get(sku, 0), quantity)
        values = [line.unit_net * units for line, units in taken]
        value = sum(values, Decimal(0))
        fee = fees.get(sku, Decimal(0))
        if not (0 <= fee <= value and has_valid_precision(fee, invoice.currency)):
            raise CreditRefused(f"restocking fee {fee} on {sku} is not between 0 and {value}")
        shares = allocate(fee, values, invoice.currency) if len(taken) > 1 else [fee]
        for (line, units), part, share in zip(taken, values, shares, strict=True):
            drafts.append(
                line.model_copy(
                    update={"quantity": units, "restocking_fee": share, "net": part - share}
                )
            )
    if refund_shipping:
        drafts += _shipping_left(invoice, earlier)
    if not drafts:
        raise CreditRefused("nothing to credit")

    invoiced = tax_by_rate(invoice.breakdown)
    before = tax_by_rate([entry for note in earlier for entry in note.breakdown])

    def tax_of(treatment: TaxTreatment, base: Decimal) -> Decimal:
        done_base, done_tax = before.get(treatment.key, (Decimal(0), Decimal(0)))
        invoiced_base, invoiced_tax = invoiced[treatment.key]
        if done_base + base == invoiced_base:  # all of the rate credited: exactly its tax
            return invoiced_tax - done_tax  # (combined invoices' tax is one rounding each)
        cumulative = cumulative_tax(treatment, base, (done_base, done_tax), invoice.currency)
        ceiling = invoiced_tax - done_tax
        return max(min(cumulative, ceiling), round_half_up(Decimal(0), invoice.currency))

    lines, breakdown, totals = price_lines(drafts, invoice.currency, tax_of)
    credited = _credited_invoices(
        invoice,
        returned,
        already,
        refund_shipping=any(line.kind is LineKind.SHIPPING for line in drafts),
    )
    return CreditNote(
        invoice_no=credited[0] if credited else invoice.invoice_no,
        invoice_nos=credited,
        order_id=invoice.order_id,
        currency=invoice.currency,
        bill_to=invoice.bill_to,
        issued_on=issued_on,
        reason=reason,
        lines=lines,
        breakdown=breakdown,
        totals=totals,
        notes=notes_of(lines),
    )


def _first_in_first_out(
    lines: Sequence[InvoiceLine], credited_before: int, quantity: int
) -> list[tuple[InvoiceLine, int]]:
    """Which of a SKU's invoice lines `quantity` more units come off, and how many of each:
    the earliest line's units first, after the `credited_before` units credited already."""
    taken: list[tuple[InvoiceLine, int]] = []
    skip, want = credited_before, quantity
    for line in lines:
        free = max(line.quantity - skip, 0)
        skip = max(skip - line.quantity, 0)
        units = min(free, want)
        if units:
            taken.append((line, units))
            want -= units
    return taken


def _credited_invoices(
    invoice: Invoice,
    returned: Mapping[str, int],
    already: Mapping[str, int],
    *,
    refund_shipping: bool,
) -> list[str]:
    """The invoices whose units the credit takes (earliest first, as `credit_note_for` takes
    them) or whose shipping it gives back; a single invoice: its own number."""
    if not isinstance(invoice, CombinedInvoice):
        return invoice_numbers(invoice)
    named: list[str] = []
    start: dict[str, int] = {}
    for part in invoice.parts:
        touched = False
        for line in part.lines:
            if line.kind is LineKind.GOODS and line.sku:
                first = start.get(line.sku, 0)
                start[line.sku] = first + line.quantity
                lo = already.get(line.sku, 0)
                hi = lo + returned.get(line.sku, 0)
                touched |= hi > lo and first < hi and first + line.quantity > lo
            elif line.kind is LineKind.SHIPPING:
                touched |= refund_shipping and line.net > 0
        if touched and part.invoice_no:
            named.append(part.invoice_no)
    return named


def _shipping_left(invoice: Invoice, earlier: Sequence[CreditNote]) -> list[InvoiceLine]:
    credited: dict[TaxKey, Decimal] = {}
    for note in earlier:
        for line in note.lines:
            if line.kind is LineKind.SHIPPING:
                credited[line.treatment.key] = (
                    credited.get(line.treatment.key, Decimal(0)) + line.net
                )
    left: list[InvoiceLine] = []
    for line in invoice.lines:
        if line.kind is LineKind.SHIPPING:
            net = line.net - credited.get(line.treatment.key, Decimal(0))
            if net > 0:
                left.append(line.model_copy(update={"unit_net": net, "net": net}))
    return left


def credit_problems(invoice: Invoice, notes: Sequence[CreditNote]) -> list[str]:
    """What is wrong with an invoice and its credit notes (empty: nothing), one line each.

    Rules: each document adds up (lines to totals, net + tax = gross); no SKU credited above
    its invoiced units; per rate, credited base and tax at most the invoiced; credited gross
    at most the invoiced gross.
    """
    name = invoice_label(invoice)
    covered = set(invoice_numbers(invoice))
    problems = [
        f"{name}: {p}" for p in _sum_problems(invoice.lines, invoice.breakdown, invoice.totals)
    ]
    for note in notes:
        label = note.credit_note_no or "credit note"
        if not set(note.credits) <= covered or note.currency != invoice.currency:
            problems.append(
                f"{name}: {label} belongs to {' + '.join(note.credits)} {note.currency}"
            )
        problems += [
            f"{name}: {label}: {p}" for p in _sum_problems(note.lines, note.breakdown, note.totals)
        ]
    invoiced_units: dict[str, int] = {}
    for line in invoice.lines:
        if line.sku:
            invoiced_units[line.sku] = invoiced_units.get(line.sku, 0) + line.quantity
    for sku, units in sorted(credited_quantities(notes).items()):
        if units > invoiced_units.get(sku, 0):
            problems.append(
                f"{name}: {units} of {sku} credited, {invoiced_units.get(sku, 0)} invoiced"
            )
    invoiced = tax_by_rate(invoice.breakdown)
    for key, (base, tax) in tax_by_rate([e for note in notes for e in note.breakdown]).items():
        inv_base, inv_tax = invoiced.get(key, (Decimal(0), Decimal(0)))
        if base > inv_base or tax > inv_tax:
            problems.append(
                f"{name}: {' '.join(map(str, key))}: credited {base} net {tax} tax, "
                f"invoiced {inv_base} net {inv_tax} tax"
            )
    gross = sum((note.totals.gross for note in notes), Decimal(0))
    if gross > invoice.totals.gross:
        problems.append(f"{name}: credited {gross} gross, invoiced {invoice.totals.gross}")
    return problems


def _sum_problems(
    lines: Sequence[InvoiceLine], breakdown: Sequence[TaxBreakdown], totals: Totals
) -> list[str]:
    problems = []
    net = sum((line.net for line in lines), Decimal(0))
    tax = sum((entry.tax for entry in breakdown), Decimal(0))
    if net != totals.net or tax != totals.tax or totals.net + totals.tax != totals.gross:
        problems.append(f"totals {totals.net}/{totals.tax}/{totals.gross} do not add up")
    if sum((line.tax for line in lines), Decimal(0)) != tax:
        problems.append("line taxes do not add up to the tax breakdown")
    return problems
