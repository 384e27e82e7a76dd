"""Credit notes that mirror their invoice, and the check that credits never exceed it per rate.

A credit note takes the invoice's lines (same unit prices, same tax treatments) for the
units returned, less any restocking fee, and the invoice's shipping lines when shipping is
refunded. Its tax per rate is the cumulative tax of everything credited on that rate so far
(earlier notes included) less what earlier notes credited, rounded half up like the
invoice: the VAT refunded is proportional to the net credited, several partial notes never
add up to a cent more than the invoice, and a full return credits exactly its tax.
"""

from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field

from domain.invoicing import (
    BillTo,
    Invoice,
    InvoiceLine,
    LineKind,
    TaxBreakdown,
    Totals,
    notes_of,
    price_lines,
    tax_on,
)
from domain.money import has_valid_precision, round_half_up
from domain.tax import TaxKey, TaxTreatment


class CreditRefused(ValueError):
    """A credit the invoice does not allow: units not on it or already credited, a bad fee."""


class CreditNote(BaseModel):
    """A credit note against one invoice; `credit_note_no` is given by the activity."""

    credit_note_no: str | None = None
    invoice_no: str | None
    order_id: str
    currency: str
    bill_to: BillTo
    issued_on: date
    reason: str = ""
    lines: list[InvoiceLine]
    breakdown: list[TaxBreakdown]
    totals: Totals
    notes: list[str] = Field(default_factory=list)


def credited_quantities(notes: Sequence[CreditNote]) -> dict[str, int]:
    """Units credited so far per SKU."""
    credited: dict[str, int] = {}
    for note in notes:
        for line in note.lines:
            if line.kind is LineKind.GOODS and line.sku:
                credited[line.sku] = credited.get(line.sku, 0) + line.quantity
    return credited


def _sums(entries: Sequence[TaxBreakdown]) -> dict[TaxKey, tuple[Decimal, Decimal]]:
    sums: dict[TaxKey, tuple[Decimal, Decimal]] = {}
    for entry in entries:
        base, tax = sums.get(entry.treatment.key, (Decimal(0), Decimal(0)))
        sums[entry.treatment.key] = (base + entry.base, tax + entry.tax)
    return sums


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
        invoice: The invoice credited.
        returned: Units credited now per SKU.
        issued_on: The credit note's date.
        restocking_fees: Net fee kept per SKU (`domain.restocking.restocking_fees`).
        refund_shipping: Credit what is left of the invoice's shipping lines.
        earlier: The credit notes already issued on this invoice.
        reason: The return's reason, printed on the note.

    Raises:
        CreditRefused: a SKU not invoiced, more units than are left to credit, a fee below 0,
            above the line or finer than the currency, or nothing to credit at all.
    """
    fees = dict(restocking_fees or {})
    unknown = set(fees) - set(returned)
    if unknown:
        raise CreditRefused(f"restocking fee for {', '.join(sorted(unknown))}, not returned")
    goods = {line.sku: line for line in invoice.lines if line.kind is LineKind.GOODS}
    already = credited_quantities(earlier)
    drafts: list[InvoiceLine] = []
    for sku, quantity in returned.items():
        line = goods.get(sku)
        if line is None:
            raise CreditRefused(f"{sku} is not on invoice {invoice.invoice_no or invoice.order_id}")
        left = line.quantity - already.get(sku, 0)
        if not 0 < quantity <= left:
            raise CreditRefused(f"{quantity} of {sku} cannot be credited: {left} left")
        value = line.unit_net * quantity
        fee = fees.get(sku, Decimal(0))
        if not (0 <= fee <= value and has_valid_precision(fee, invoice.currency)):
            raise CreditRefused(f"restocking fee {fee} on {sku} is not between 0 and {value}")
        drafts.append(
            line.model_copy(
                update={"quantity": quantity, "restocking_fee": fee, "net": value - fee}
            )
        )
    if refund_shipping:
        drafts += _shipping_left(invoice, earlier)
    if not drafts:
        raise CreditRefused("nothing to credit")

    invoiced = _sums(invoice.breakdown)
    before = _sums([entry for note in earlier for entry in note.breakdown])

    def tax_of(treatment: TaxTreatment, base: Decimal) -> Decimal:
        done_base, done_tax = before.get(treatment.key, (Decimal(0), Decimal(0)))
        cumulative = tax_on(treatment, done_base + base, invoice.currency) - done_tax
        ceiling = invoiced[treatment.key][1] - done_tax
        return max(min(cumulative, ceiling), round_half_up(Decimal(0), invoice.currency))

    lines, breakdown, totals = price_lines(drafts, invoice.currency, tax_of)
    return CreditNote(
        invoice_no=invoice.invoice_no,
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
    name = invoice.invoice_no or invoice.order_id
    problems = [
        f"{name}: {p}" for p in _sum_problems(invoice.lines, invoice.breakdown, invoice.totals)
    ]
    for note in notes:
        label = note.credit_note_no or "credit note"
        if note.invoice_no != invoice.invoice_no or note.currency != invoice.currency:
            problems.append(f"{name}: {label} belongs to {note.invoice_no} {note.currency}")
        problems += [
            f"{name}: {label}: {p}" for p in _sum_problems(note.lines, note.breakdown, note.totals)
        ]
    invoiced_units = {line.sku: line.quantity for line in invoice.lines if line.sku}
    for sku, units in sorted(credited_quantities(notes).items()):
        if units > invoiced_units.get(sku, 0):
            problems.append(
                f"{name}: {units} of {sku} credited, {invoiced_units.get(sku, 0)} invoiced"
            )
    invoiced = _sums(invoice.breakdown)
    for key, (base, tax) in _sums([e for note in notes for e in note.breakdown]).items():
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
