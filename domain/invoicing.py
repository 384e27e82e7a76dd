"""Invoices as finance reads them: lines with net, tax and gross, tax by rate, totals, due date.

Rounding, decided once for invoices and credit notes: a line's net is exact (quantity times
a unit price already in the currency's minor unit). Tax is computed per breakdown entry
(scheme, category, rate, jurisdiction) on the summed net of its lines and rounded half up
to the minor unit (`domain.money.round_half_up`): one rounding per rate, as EN 16931
computes VAT and as member states expect it (commercial rounding), so a hundred lines whose
tax ends in 0.005 do not drift by fifty cents the way per-line rounding would. Each line
still shows a tax: its rate's tax allocated in proportion to the lines' net (largest
remainder), so lines add up to the breakdown to the cent. Banker's rounding
(`round_money`) keeps the jobs it already has.
"""

from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from domain.charges import ShippingCharge
from domain.money import allocate, has_valid_precision, round_half_up
from domain.statuses import PaymentTerms
from domain.tax import TaxKey, TaxRates, TaxTreatment, treatment_for

TERMS_DAYS: dict[PaymentTerms, int] = {PaymentTerms.PREPAID: 0, PaymentTerms.NET_30: 30}
"""Days from issue to due date; prepaid invoices are paid (captured) on issue."""


class BillTo(BaseModel):
    """Who is billed, as tax needs it: where the goods go, the account's VAT id and terms."""

    customer_id: str
    name: str = ""
    country: str = Field(pattern=r"^[A-Z]{2}$", description="destination of the goods")
    postal_code: str = ""
    vat_id: str | None = None
    payment_terms: PaymentTerms = PaymentTerms.PREPAID


class BillLine(BaseModel):
    """Goods to bill: what `draft_invoice` is given per SKU."""

    sku: str
    quantity: int = Field(gt=0)
    unit_net: Decimal = Field(ge=0)
    tax_class: str | None = Field(default=None, description="None: the table's default class")
    description: str = ""


class LineKind(StrEnum):
    GOODS = "goods"
    SHIPPING = "shipping"


class InvoiceLine(BaseModel):
    """One line of an invoice or credit note; `net` = quantity x unit_net - restocking_fee."""

    kind: LineKind
    sku: str | None = None
    description: str
    quantity: int = Field(ge=0)
    unit_net: Decimal
    restocking_fee: Decimal = Field(default=Decimal(0), description="credit notes: net kept")
    net: Decimal
    tax: Decimal = Decimal(0)
    gross: Decimal = Decimal(0)
    treatment: TaxTreatment


class TaxBreakdown(BaseModel):
    """One rate of the document: the net it applies to and the tax on it."""

    treatment: TaxTreatment
    base: Decimal
    tax: Decimal


class Totals(BaseModel):
    net: Decimal
    tax: Decimal
    gross: Decimal


class Invoice(BaseModel):
    """An invoice; `invoice_no` is given by the activity that stores it."""

    invoice_no: str | None = None
    order_id: str
    currency: str
    bill_to: BillTo
    issued_on: date
    due_on: date
    paid_on_issue: bool
    lines: list[InvoiceLine]
    breakdown: list[TaxBreakdown]
    totals: Totals
    notes: list[str] = Field(default_factory=list)


def price_lines(
    drafts: Sequence[InvoiceLine],
    currency: str,
    tax_of: Callable[[TaxTreatment, Decimal], Decimal],
) -> tuple[list[InvoiceLine], list[TaxBreakdown], Totals]:
    """Tax per rate (`tax_of(treatment, base)`), allocated back to lines; totals.

    Shared by invoices and credit notes, which differ only in how a rate's tax is found.
    """
    groups: dict[TaxKey, list[int]] = {}
    for i, line in enumerate(drafts):
        groups.setdefault(line.treatment.key, []).append(i)
    lines = list(drafts)
    breakdown: list[TaxBreakdown] = []
    for members in groups.values():
        treatment = drafts[members[0]].treatment
        base = sum((drafts[i].net for i in members), Decimal(0))
        tax = tax_of(treatment, base)
        shares = allocate(tax, [drafts[i].net for i in members], currency)
        for i, share in zip(members, shares, strict=True):
            lines[i] = drafts[i].model_copy(update={"tax": share, "gross": drafts[i].net + share})
        breakdown.append(TaxBreakdown(treatment=treatment, base=base, tax=tax))
    net = sum((line.net for line in lines), round_half_up(Decimal(0), currency))
    tax = sum((entry.tax for entry in breakdown), round_half_up(Decimal(0), currency))
    return lines, breakdown, Totals(net=net, tax=tax, gross=net + tax)


def tax_on(treatment: TaxTreatment, base: Decimal, currency: str) -> Decimal:
    """A rate's tax on a base, rounded half up once."""
    return round_half_up(base * treatment.rate / 100, currency)


def tax_by_rate(entries: Sequence[TaxBreakdown]) -> dict[TaxKey, tuple[Decimal, Decimal]]:
    """Breakdown entries summed per rate: {rate: (base, tax)}."""
    sums: dict[TaxKey, tuple[Decimal, Decimal]] = {}
    for entry in entries:
        base, tax = sums.get(entry.treatment.key, (Decimal(0), Decimal(0)))
        sums[entry.treatment.key] = (base + entry.base, tax + entry.tax)
    return sums


def cumulative_tax(
    treatment: TaxTreatment, base: Decimal, done: tuple[Decimal, Decimal], currency: str
) -> Decimal:
    """A document's tax on `base` at a rate on which earlier documents of the order took
    `done` (base, tax): the tax of all of it, rounded once, less what they charged. Invoices
    per wave and credit notes alike, so their tax per rate adds up to one rounding."""
    done_base, done_tax = done
    return tax_on(treatment, done_base + base, currency) - done_tax


def notes_of(lines: Sequence[InvoiceLine]) -> list[str]:
    """The legal notes of the treatments used, each once, in line order."""
    notes: list[str] = []
    for line in lines:
        if line.treatment.note and line.treatment.note not in notes:
            notes.append(line.treatment.note)
    return notes


def draft_invoice(
    order_id: str,
    currency: str,
    lines: Sequence[BillLine],
    shipping: ShippingCharge | None,
    bill_to: BillTo,
    rates: TaxRates,
    issued_on: date,
    earlier: Sequence[TaxBreakdown] = (),
    shipping_at_highest_rate: bool = False,
) -> Invoice:
    """The invoice of the goods billed and the shipping charge.

    Shipping is taxed like the goods it delivers: split in proportion to the goods' net per
    tax class (the EU practice for ancillary costs), each part at that class's treatment.

    `earlier`: the tax breakdowns of the order's invoices issued before this one (an order
    billed per wave). Each rate's tax is then cumulative, as on credit notes: the tax of
    everything invoiced on that rate so far, rounded once, less what the earlier invoices
    charged on it. So however an order is split into invoices, its tax per rate adds up to one
    rounding of its whole base (two invoices of 0.03 at 19 % charge 0.01 in all, not 0.01
    each).

    `shipping_at_highest_rate`: the whole shipping charge at the highest rate among the goods'
    classes (for an estimate, which must bound every way waves may split the shipping).

    Raises:
        ValueError: no lines, a unit price finer than the currency, or shipping in another
            currency.
        NoTaxRate: the rates table lacks the destination or a tax class.
    """
    if not lines:
        raise ValueError("an invoice needs at least one line")
    treat = {  # one lookup per class
        tax_class: treatment_for(
            rates, tax_class, bill_to.country, bill_to.postal_code, bill_to.vat_id
        )
        for tax_class in {line.tax_class or rates.default_class for line in lines}
    }
    drafts: list[InvoiceLine] = []
    for line in lines:
        if not has_valid_precision(line.unit_net, currency):
            raise ValueError(f"unit price {line.unit_net} of {line.sku} is finer than {currency}")
        drafts.append(
            InvoiceLine(
                kind=LineKind.GOODS,
                sku=line.sku,
                description=line.description or line.sku,
                quantity=line.quantity,
                unit_net=line.unit_net,
                net=line.unit_net * line.quantity,
                treatment=treat[line.tax_class or rates.default_class],
            )
        )
    if shipping is not None:
        if shipping.currency != currency:
            raise ValueError(f"shipping in {shipping.currency} on a {currency} invoice")
        drafts += _shipping_lines(shipping, lines, bill_to, rates, shipping_at_highest_rate)
    done = tax_by_rate(earlier)

    def cumulative(treatment: TaxTreatment, base: Decimal) -> Decimal:
        so_far = done.get(treatment.key, (Decimal(0), Decimal(0)))
        tax = cumulative_tax(treatment, base, so_far, currency)
        return max(tax, round_half_up(Decimal(0), currency))  # an old invoice's rounding

    priced, breakdown, totals = price_lines(drafts, currency, cumulative)
    days = TERMS_DAYS[bill_to.payment_terms]
    return Invoice(
        order_id=order_id,
        currency=currency,
        bill_to=bill_to,
        issued_on=issued_on,
        due_on=issued_on + timedelta(days=days),
        paid_on_issue=days == 0,
        lines=priced,
        breakdown=breakdown,
        totals=totals,
        notes=notes_of(priced),
    )


def _shipping_lines(
    shipping: ShippingCharge,
    goods: Sequence[BillLine],
    bill_to: BillTo,
    rates: TaxRates,
    at_highest_rate: bool = False,
) -> list[InvoiceLine]:
    by_class: dict[str, Decimal] = {}
    for line in goods:
        tax_class = line.tax_class or rates.default_class
        by_class[tax_class] = by_class.get(tax_class, Decimal(0)) + line.unit_net * line.quantity
    if at_highest_rate:
        dearest = max(
            by_class,
            key=lambda c: (
                treatment_for(
                    rates, c, bill_to.country, bill_to.postal_code, bill_to.vat_id, shipping=True
                ).rate
            ),
        )
        by_class = {dearest: Decimal(1)}
    shares = allocate(shipping.net, list(by_class.values()), shipping.currency)
    parts: dict[TaxKey, InvoiceLine] = {}
    for tax_class, share in zip(by_class, shares, strict=True):
        treatment = treatment_for(
            rates, tax_class, bill_to.country, bill_to.postal_code, bill_to.vat_id, shipping=True
        )
        if treatment.key in parts:  # two classes at one rate: one shipping line
            share += parts[treatment.key].net
        parts[treatment.key] = InvoiceLine(
            kind=LineKind.SHIPPING,
            description=f"Shipping ({shipping.basis})",
            quantity=1,
            unit_net=share,
            net=share,
            treatment=treatment,
        )
    lines = [part for part in parts.values() if part.net > 0]
    return lines or list(parts.values())[:1]  # free shipping still shows, once


def capture_key(order_id: str, capture_no: int) -> str:
    """The payments ledger key of the capture an invoice was issued with: an order's first
    capture is `<order>/capture`, the n-th after it `<order>/capture-<n>`."""
    return f"{order_id}/capture" if capture_no == 1 else f"{order_id}/capture-{capture_no}"


class CombinedInvoice(Invoice):
    """An order's invoices read as one document, to credit and to check credits against.

    An order captured per wave of parcels has one invoice per capture; a return may take
    back units billed on any of them, and "the whole order" is all of them. Built by
    `combined`; never stored or sent: each invoice stays the document it was issued as.
    """

    invoice_nos: list[str]
    """The numbers of the invoices it covers, in the order of their captures."""
    parts: list[Invoice]
    """The invoices themselves, in the same order (which invoice billed which units)."""


def invoice_numbers(invoice: Invoice) -> list[str]:
    """The invoices a document stands for: a combined one's, or the invoice's own number."""
    if isinstance(invoice, CombinedInvoice):
        return list(invoice.invoice_nos)
    return [invoice.invoice_no] if invoice.invoice_no else []


def invoice_label(invoice: Invoice) -> str:
    """How messages name it: "INV-2026-000042", "INV-2026-000042 + INV-2026-000043", or the
    order id of an unnumbered draft."""
    return " + ".join(invoice_numbers(invoice)) or invoice.order_id


def combined(invoices: Sequence[Invoice]) -> CombinedInvoice:
    """The order's invoices (in the order of their captures) as one document.

    Goods lines of the same SKU, unit price and tax treatment are summed (quantity, net, tax,
    gross); lines differing in price or treatment stay apart, in the order they first appear.
    Shipping lines are summed per tax treatment, after the goods. The tax breakdown is summed
    per rate: each invoice rounded its tax once per rate, so the combined tax is the sum of
    those roundings, exactly what was charged (not a new rounding of the summed base). Totals
    are summed; currency, bill-to and issue date are the first invoice's, the due date the
    latest; paid on issue only when every invoice was. One invoice: the same lines, numbers
    and totals as that invoice (`invoice_no` kept).

    Raises:
        ValueError: no invoices, or invoices of different orders or currencies.
    """
    if not invoices:
        raise ValueError("nothing to combine: the order has no invoice")
    first = invoices[0]
    for other in invoices[1:]:
        if (other.order_id, other.currency) != (first.order_id, first.currency):
            raise ValueError(
                f"cannot combine invoices of {first.order_id} in {first.currency} with "
                f"{other.invoice_no or other.order_id} of {other.order_id} in {other.currency}"
            )
    goods: dict[tuple[str | None, Decimal, TaxKey], InvoiceLine] = {}
    shipping: dict[TaxKey, InvoiceLine] = {}
    breakdown: dict[TaxKey, TaxBreakdown] = {}
    for invoice in invoices:
        for line in invoice.lines:
            if line.kind is LineKind.GOODS:
                key = (line.sku, line.unit_net, line.treatment.key)
                goods[key] = _add_line(goods.get(key), line)
            else:
                merged = _add_line(shipping.get(line.treatment.key), line)
                shipping[line.treatment.key] = merged.model_copy(
                    update={"quantity": 1, "unit_net": merged.net}
                )
        for entry in invoice.breakdown:
            was = breakdown.get(entry.treatment.key)
            breakdown[entry.treatment.key] = (
                entry
                if was is None
                else was.model_copy(
                    update={"base": was.base + entry.base, "tax": was.tax + entry.tax}
                )
            )
    numbers = [invoice.invoice_no for invoice in invoices if invoice.invoice_no]
    notes: list[str] = []
    for invoice in invoices:
        notes += [note for note in invoice.notes if note not in notes]
    zero = round_half_up(Decimal(0), first.currency)
    return CombinedInvoice(
        invoice_no=first.invoice_no if len(invoices) == 1 else None,
        order_id=first.order_id,
        currency=first.currency,
        bill_to=first.bill_to,
        issued_on=first.issued_on,
        due_on=max(invoice.due_on for invoice in invoices),
        paid_on_issue=all(invoice.paid_on_issue for invoice in invoices),
        lines=[*goods.values(), *shipping.values()],
        breakdown=list(breakdown.values()),
        totals=Totals(
            net=sum((invoice.totals.net for invoice in invoices), zero),
            tax=sum((invoice.totals.tax for invoice in invoices), zero),
            gross=sum((invoice.totals.gross for invoice in invoices), zero),
        ),
        notes=notes,
        invoice_nos=numbers,
        parts=list(invoices),
    )


def _add_line(was: InvoiceLine | None, line: InvoiceLine) -> InvoiceLine:
    """`line` added to a line of the same kind and treatment (None: `line` itself)."""
    if was is None:
        return line
    description = was.description
    if line.description not in description.split(" + "):
        description = f"{description} + {line.description}"  # shipping on different bases
    return was.model_copy(
        update={
            "description": description,
            "quantity": was.quantity + line.quantity,
            "restocking_fee": was.restocking_fee + line.restocking_fee,
            "net": was.net + line.net,
            "tax": was.tax + line.tax,
            "gross": was.gross + line.gross,
        }
    )
