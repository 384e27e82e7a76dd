"""Tests for invoices (net, tax, gross, tax by rate, due dates, rounding), an order's invoices
combined, and credit notes."""

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from domain.charges import ChargesConfig, ShippingCharge, shipping_charge
from domain.credit_notes import CreditNote, CreditRefused, credit_note_for, credit_problems
from domain.invoicing import (
    BillLine,
    BillTo,
    Invoice,
    LineKind,
    combined,
    draft_invoice,
    invoice_label,
    invoice_numbers,
)
from domain.restocking import refunds_shipping, restocking_fees, whole_order_returned
from domain.returns import Disposition, InspectionLine
from domain.statuses import PaymentTerms
from domain.tax import TaxCategory, TaxRates, TaxScheme

DEMO = Path(__file__).parents[2] / "domain" / "data"
RATES = TaxRates.model_validate_json((DEMO / "tax_rates.json").read_text())
CHARGES = ChargesConfig.model_validate_json((DEMO / "charges.json").read_text())
ISSUED = date(2024, 6, 3)
RETURNED_ON = date(2024, 6, 20)


def line(sku: str, quantity: int, price: str, tax_class: str | None = None) -> BillLine:
    return BillLine(sku=sku, quantity=quantity, unit_net=Decimal(price), tax_class=tax_class)


BASKET = [line("KB-100", 2, "49.90"), line("MS-200", 1, "19.90")]  # 119.70 net


def invoice(
    country: str,
    lines: list[BillLine] = BASKET,
    *,
    postal_code: str = "10115",
    vat_id: str | None = None,
    terms: PaymentTerms = PaymentTerms.PREPAID,
    origin: str = "NL",
) -> Invoice:
    goods = sum((item.unit_net * item.quantity for item in lines), Decimal(0))
    shipping = shipping_charge(CHARGES.shipping["EUR"], "EUR", goods, country, [origin])
    bill_to = BillTo(
        customer_id="C-1",
        country=country,
        postal_code=postal_code,
        vat_id=vat_id,
        payment_terms=terms,
    )
    drafted = draft_invoice("A-1", "EUR", lines, shipping, bill_to, RATES, ISSUED)
    return drafted.model_copy(update={"invoice_no": "INV-A-1"})


def test_a_german_consumer_pays_19_percent_on_goods_and_shipping() -> None:
    bill = invoice("DE")
    assert [(x.kind, x.sku, x.net) for x in bill.lines] == [
        (LineKind.GOODS, "KB-100", Decimal("99.80")),
        (LineKind.GOODS, "MS-200", Decimal("19.90")),
        (LineKind.SHIPPING, None, Decimal("7.95")),  # below the threshold: flat REGIONAL
    ]
    [rate] = bill.breakdown
    assert (rate.treatment.category, rate.treatment.rate) == (TaxCategory.STANDARD, Decimal(19))
    assert (rate.base, rate.tax) == (Decimal("127.65"), Decimal("24.25"))  # 24.2535
    assert (bill.totals.net, bill.totals.tax, bill.totals.gross) == (
        Decimal("127.65"),
        Decimal("24.25"),
        Decimal("151.90"),
    )
    assert sum(x.tax for x in bill.lines) == rate.tax
    assert all(x.gross == x.net + x.tax for x in bill.lines)
    assert (bill.due_on, bill.paid_on_issue, bill.notes) == (ISSUED, True, [])
    assert credit_problems(bill, []) == []
    assert Invoice.model_validate_json(bill.model_dump_json()) == bill  # stored as JSON


def test_a_french_business_with_a_vat_id_is_reverse_charged_on_net_30() -> None:
    bill = invoice("FR", postal_code="75001", vat_id="FR40303265045", terms=PaymentTerms.NET_30)
    [rate] = bill.breakdown
    assert (rate.treatment.category, rate.treatment.rate, rate.tax) == (
        TaxCategory.INTRA_EU_SUPPLY,
        Decimal(0),
        Decimal(0),
    )
    assert bill.totals.gross == bill.totals.net == Decimal("127.65")
    assert len(bill.notes) == 1 and "VAT to be accounted for by the recipient" in bill.notes[0]
    assert (bill.due_on, bill.paid_on_issue) == (ISSUED + timedelta(days=30), False)


def test_a_french_business_with_a_malformed_vat_id_and_a_dutch_one_are_charged() -> None:
    assert invoice("FR", vat_id="FR123").totals.tax == Decimal("25.53")  # 20 % of 127.65
    domestic = invoice("NL", vat_id="NL123456789B01", terms=PaymentTerms.NET_30)
    assert domestic.lines[-1].net == Decimal("4.95")  # DOMESTIC
    assert domestic.totals.tax == Decimal("26.18")  # 21 % of 124.65 = 26.1765


def test_a_us_order_carries_sales_tax_and_no_vat() -> None:
    nj = invoice("US", postal_code="07030", origin="US")
    [rate] = nj.breakdown
    assert (rate.treatment.scheme, rate.treatment.jurisdiction) == (TaxScheme.SALES_TAX, "US-NJ")
    assert (rate.base, rate.tax) == (Decimal("124.65"), Decimal("8.26"))  # 8.2580625
    assert nj.notes and "Art. 146" in nj.notes[0]
    # California leaves delivery charges untaxed: two entries
    ca = invoice("US", postal_code="94105", origin="US")
    assert [(e.treatment.category, e.base, e.tax) for e in ca.breakdown] == [
        (TaxCategory.STANDARD, Decimal("119.70"), Decimal("8.68")),  # 7.25 % = 8.67825
        (TaxCategory.EXEMPT, Decimal("4.95"), Decimal("0.00")),
    ]


def test_shipping_is_free_above_the_threshold_and_still_shown() -> None:
    bill = invoice("DE", [line("MN-27", 1, "249.00")])
    shipping = bill.lines[-1]
    assert (shipping.kind, shipping.net, shipping.description) == (
        LineKind.SHIPPING,
        Decimal("0.00"),
        "Shipping (free from 150.00 EUR)",
    )
    assert bill.totals.gross == Decimal("296.31")  # 249.00 + 19 % (47.31)


def test_shipping_is_taxed_in_proportion_to_the_goods_per_rate() -> None:
    bill = invoice("DE", [line("KB-100", 2, "50.00"), line("BOOK", 1, "45.00", "reduced")])
    shipping = [x for x in bill.lines if x.kind is LineKind.SHIPPING]
    # 7.95 split 100 : 45 -> 5.48 + 2.47
    assert [(x.net, x.treatment.rate) for x in shipping] == [
        (Decimal("5.48"), Decimal(19)),
        (Decimal("2.47"), Decimal(7)),
    ]
    assert [(e.base, e.tax) for e in bill.breakdown] == [
        (Decimal("105.48"), Decimal("20.04")),  # 20.0412
        (Decimal("47.47"), Decimal("3.32")),  # 3.3229
    ]


def test_tax_is_rounded_half_up_once_per_rate() -> None:
    def tax(price: str, country: str, postal_code: str = "") -> Decimal:
        bill_to = BillTo(customer_id="C-1", country=country, postal_code=postal_code)
        bill = draft_invoice("A-2", "EUR", [line("CB-USB", 1, price)], None, bill_to, RATES, ISSUED)
        return bill.totals.tax

    # x.xx5 rounds up where banker's rounding would go to the even cent
    assert tax("0.50", "NL") == Decimal("0.11")  # 21 % = 0.105
    assert tax("20.00", "US", "07030") == Decimal("1.33")  # 6.625 % = 1.325
    assert tax("12.50", "DE") == Decimal("2.38")  # 19 % = 2.375


def test_many_small_lines_do_not_drift() -> None:
    # 100 lines of 0.05 at 19 %: 0.0095 each. Rounded per line they would make 1.00;
    # on the summed base it is 0.95, and the lines still add up to it.
    lines = [line(f"SKU-{i:03d}", 1, "0.05") for i in range(100)]
    bill = draft_invoice(
        "A-3", "EUR", lines, None, BillTo(customer_id="C", country="DE"), RATES, ISSUED
    )
    assert bill.totals.tax == Decimal("0.95")
    assert sum(x.tax for x in bill.lines) == Decimal("0.95")
    assert sorted({x.tax for x in bill.lines}) == [Decimal("0.00"), Decimal("0.01")]
    assert bill.totals.gross == Decimal("5.95")


def test_a_return_for_a_change_of_mind_keeps_a_restocking_fee() -> None:
    bill = invoice("DE")
    inspected = [InspectionLine(sku="KB-100", quantity=1, disposition=Disposition.RESTOCK)]
    fees = restocking_fees(
        inspected, {"KB-100": Decimal("49.90")}, "changed my mind", CHARGES.restocking, "EUR"
    )
    note = credit_note_for(bill, {"KB-100": 1}, restocking_fees=fees, issued_on=RETURNED_ON)
    [credited] = note.lines
    assert (credited.quantity, credited.restocking_fee, credited.net) == (
        1,
        Decimal("4.99"),
        Decimal("44.91"),
    )
    assert (note.totals.net, note.totals.tax, note.totals.gross) == (
        Decimal("44.91"),
        Decimal("8.53"),  # 19 % of 44.91 = 8.5329: the VAT follows the credited net
        Decimal("53.44"),
    )
    assert note.invoice_no == "INV-A-1"
    assert credit_problems(bill, [note]) == []


def test_a_defective_return_is_credited_in_full() -> None:
    bill = invoice("DE")
    inspected = [InspectionLine(sku="KB-100", quantity=1, disposition=Disposition.DISPOSE)]
    fees = restocking_fees(
        inspected, {"KB-100": Decimal("49.90")}, "defective", CHARGES.restocking, "EUR"
    )
    note = credit_note_for(bill, {"KB-100": 1}, restocking_fees=fees, issued_on=RETURNED_ON)
    assert (note.totals.net, note.totals.tax, note.totals.gross) == (
        Decimal("49.90"),
        Decimal("9.48"),
        Decimal("59.38"),
    )
    assert all(x.kind is LineKind.GOODS for x in note.lines)  # not the whole order: no shipping


def test_the_whole_order_returned_for_a_defect_refunds_shipping_and_all_the_vat() -> None:
    bill = invoice("DE")
    first = credit_note_for(bill, {"KB-100": 1}, issued_on=RETURNED_ON, reason="defective")
    returned = {"KB-100": 2, "MS-200": 1}
    reasons = ["defective", "arrived scratched"]
    whole = whole_order_returned({"KB-100": 2, "MS-200": 1}, returned)
    assert refunds_shipping(reasons, whole, CHARGES.restocking)
    second = credit_note_for(
        bill,
        {"KB-100": 1, "MS-200": 1},
        refund_shipping=True,
        earlier=[first],
        issued_on=RETURNED_ON,
    )
    assert second.lines[-1].kind is LineKind.SHIPPING and second.lines[-1].net == Decimal("7.95")
    assert first.totals.tax + second.totals.tax == bill.totals.tax
    assert first.totals.gross + second.totals.gross == bill.totals.gross
    assert credit_problems(bill, [first, second]) == []
    with pytest.raises(CreditRefused, match="nothing to credit"):
        credit_note_for(
            bill, {}, refund_shipping=True, earlier=[first, second], issued_on=RETURNED_ON
        )


def test_partial_credit_notes_never_add_up_to_more_vat_than_the_invoice() -> None:
    # 3 x 0.50 at 21 %: invoiced 0.315 -> 0.32. One unit is 0.105 -> 0.11; three separate
    # roundings would credit 0.33. Cumulative rounding credits 0.11, 0.10, 0.11.
    bill = draft_invoice(
        "A-4",
        "EUR",
        [line("CB-USB", 3, "0.50")],
        None,
        BillTo(customer_id="C", country="NL"),
        RATES,
        ISSUED,
    )
    assert bill.totals.tax == Decimal("0.32")
    notes: list[CreditNote] = []
    for _ in range(3):
        notes.append(credit_note_for(bill, {"CB-USB": 1}, earlier=notes, issued_on=RETURNED_ON))
    assert [n.totals.tax for n in notes] == [Decimal("0.11"), Decimal("0.10"), Decimal("0.11")]
    assert credit_problems(bill, notes) == []


def test_a_reverse_charged_invoice_is_credited_reverse_charged() -> None:
    bill = invoice("FR", vat_id="FR40303265045", terms=PaymentTerms.NET_30)
    note = credit_note_for(bill, {"MS-200": 1}, issued_on=RETURNED_ON)
    assert note.totals.tax == Decimal(0) and note.notes == bill.notes
    assert note.lines[0].treatment == bill.lines[1].treatment


def test_credits_beyond_the_invoice_are_refused() -> None:
    bill = invoice("DE")
    first = credit_note_for(bill, {"KB-100": 2}, issued_on=RETURNED_ON)
    with pytest.raises(CreditRefused, match="1 of KB-100 cannot be credited: 0 left"):
        credit_note_for(bill, {"KB-100": 1}, earlier=[first], issued_on=RETURNED_ON)
    with pytest.raises(CreditRefused, match="DK-01 is not on invoice INV-A-1"):
        credit_note_for(bill, {"DK-01": 1}, issued_on=RETURNED_ON)
    with pytest.raises(CreditRefused, match=r"not between 0 and 19\.90"):
        credit_note_for(
            bill, {"MS-200": 1}, restocking_fees={"MS-200": Decimal("20")}, issued_on=RETURNED_ON
        )
    with pytest.raises(CreditRefused, match="fee for MS-200, not returned"):
        credit_note_for(
            bill, {"KB-100": 1}, restocking_fees={"MS-200": Decimal(1)}, issued_on=RETURNED_ON
        )


def test_the_check_finds_credits_above_the_invoice_per_rate() -> None:
    bill = invoice("DE")
    note = credit_note_for(
        bill, {"KB-100": 2, "MS-200": 1}, refund_shipping=True, issued_on=RETURNED_ON
    )
    assert credit_problems(bill, [note]) == []
    bumped = note.breakdown[0].model_copy(update={"tax": note.breakdown[0].tax + Decimal("0.01")})
    tampered = note.model_copy(update={"breakdown": [bumped]})
    problems = credit_problems(bill, [tampered])
    assert any(
        "credited 127.65 net 24.26 tax, invoiced 127.65 net 24.25 tax" in p for p in problems
    )
    assert any("do not add up" in p for p in problems)
    twice = credit_problems(bill, [note, note])
    assert any("4 of KB-100 credited, 2 invoiced" in p for p in twice)


def test_shipping_in_another_currency_is_refused() -> None:
    usd = ShippingCharge(net=Decimal("5.00"), currency="USD", basis="flat")
    with pytest.raises(ValueError, match="shipping in USD on a EUR invoice"):
        draft_invoice(
            "A-5", "EUR", BASKET, usd, BillTo(customer_id="C", country="DE"), RATES, ISSUED
        )


# An order invoiced per wave of parcels: one invoice per capture, credited as one.


def wave(
    number: str,
    lines: list[BillLine],
    *,
    shipping: bool,
    country: str = "DE",
    issued: date = ISSUED,
    terms: PaymentTerms = PaymentTerms.PREPAID,
) -> Invoice:
    """One capture's invoice; under the flat rule only the first charges shipping."""
    bill_to = BillTo(customer_id="C-1", country=country, payment_terms=terms)
    goods = sum((item.unit_net * item.quantity for item in lines), Decimal(0))
    charge = shipping_charge(CHARGES.shipping["EUR"], "EUR", goods, country, ["NL"])
    drafted = draft_invoice(
        "A-W", "EUR", lines, charge if shipping else None, bill_to, RATES, issued
    )
    return drafted.model_copy(update={"invoice_no": number})


def two_waves() -> tuple[Invoice, Invoice]:
    first = wave("INV-1", [line("KB-100", 1, "49.90"), line("MS-200", 1, "19.90")], shipping=True)
    second = wave(
        "INV-2",
        [line("KB-100", 1, "49.90")],
        shipping=False,
        issued=ISSUED + timedelta(days=3),
        terms=PaymentTerms.NET_30,
    )
    return first, second


def test_one_invoice_combined_is_that_invoice() -> None:
    bill = invoice("DE")
    one = combined([bill])
    assert (one.invoice_no, one.invoice_nos) == ("INV-A-1", ["INV-A-1"])
    assert (one.lines, one.breakdown, one.totals, one.notes) == (
        bill.lines,
        bill.breakdown,
        bill.totals,
        bill.notes,
    )
    assert (invoice_numbers(bill), invoice_label(one)) == (["INV-A-1"], "INV-A-1")
    # credited through the combined view: the same note as on the invoice itself
    fees = {"KB-100": Decimal("4.99")}
    direct = credit_note_for(bill, {"KB-100": 1}, restocking_fees=fees, issued_on=RETURNED_ON)
    via = credit_note_for(one, {"KB-100": 1}, restocking_fees=fees, issued_on=RETURNED_ON)
    assert via == direct and via.invoice_nos == ["INV-A-1"]


def test_two_invoices_combine_by_sku_and_price_shipping_and_rate() -> None:
    first, second = two_waves()
    both = combined([first, second])
    assert (both.invoice_no, both.invoice_nos, invoice_label(both)) == (
        None,
        ["INV-1", "INV-2"],
        "INV-1 + INV-2",
    )
    assert [(x.kind, x.sku, x.quantity, x.net, x.tax, x.gross) for x in both.lines] == [
        (LineKind.GOODS, "KB-100", 2, Decimal("99.80"), Decimal("18.96"), Decimal("118.76")),
        (LineKind.GOODS, "MS-200", 1, Decimal("19.90"), Decimal("3.78"), Decimal("23.68")),
        (LineKind.SHIPPING, None, 1, Decimal("7.95"), Decimal("1.51"), Decimal("9.46")),
    ]
    [rate] = both.breakdown
    assert (rate.base, rate.tax) == (
        first.breakdown[0].base + second.breakdown[0].base,
        first.breakdown[0].tax + second.breakdown[0].tax,
    )
    assert both.totals.gross == first.totals.gross + second.totals.gross == Decimal("151.90")
    assert both.totals.net + both.totals.tax == both.totals.gross
    assert sum(x.tax for x in both.lines) == both.totals.tax
    assert (both.issued_on, both.due_on, both.paid_on_issue) == (
        ISSUED,
        second.due_on,  # Net-30 from the later invoice
        False,
    )
    assert (both.currency, both.bill_to) == ("EUR", first.bill_to)
    assert credit_problems(both, []) == []


def test_goods_at_another_price_stay_apart_and_are_credited_earliest_first() -> None:
    first = wave("INV-1", [line("KB-100", 2, "49.90")], shipping=False)
    second = wave("INV-2", [line("KB-100", 1, "45.00")], shipping=False)
    both = combined([first, second])
    assert [(x.sku, x.quantity, x.unit_net) for x in both.lines] == [
        ("KB-100", 2, Decimal("49.90")),
        ("KB-100", 1, Decimal("45.00")),
    ]
    # 3 units back: 2 of INV-1's at 49.90, 1 of INV-2's at 45.00; a 10 % fee split by value
    fee = Decimal("14.48")  # 10 % of 144.80
    note = credit_note_for(
        both, {"KB-100": 3}, restocking_fees={"KB-100": fee}, issued_on=RETURNED_ON
    )
    assert [(x.quantity, x.unit_net, x.restocking_fee, x.net) for x in note.lines] == [
        (2, Decimal("49.90"), Decimal("9.98"), Decimal("89.82")),
        (1, Decimal("45.00"), Decimal("4.50"), Decimal("40.50")),
    ]
    assert (note.invoice_no, note.invoice_nos) == ("INV-1", ["INV-1", "INV-2"])
    assert credit_problems(both, [note]) == []


def test_each_return_names_the_invoices_whose_units_it_credits() -> None:
    both = combined(two_waves())
    one = credit_note_for(both, {"KB-100": 1}, issued_on=RETURNED_ON, reason="defective")
    assert (one.invoice_no, one.invoice_nos) == ("INV-1", ["INV-1"])  # the earliest unit
    two = credit_note_for(both, {"KB-100": 1}, earlier=[one], issued_on=RETURNED_ON)
    assert (two.invoice_no, two.invoice_nos) == ("INV-2", ["INV-2"])
    rest = credit_note_for(
        both, {"MS-200": 1}, refund_shipping=True, earlier=[one, two], issued_on=RETURNED_ON
    )
    assert rest.invoice_nos == ["INV-1"]  # MS-200 and the shipping were on the first
    notes = [one, two, rest]
    assert sum((n.totals.gross for n in notes), Decimal(0)) == both.totals.gross
    assert sum((n.totals.tax for n in notes), Decimal(0)) == both.totals.tax
    assert credit_problems(both, notes) == []
    with pytest.raises(CreditRefused, match="1 of KB-100 cannot be credited: 0 left"):
        credit_note_for(both, {"KB-100": 1}, earlier=notes, issued_on=RETURNED_ON)
    with pytest.raises(CreditRefused, match="DK-01 is not on invoice INV-1 \\+ INV-2"):
        credit_note_for(both, {"DK-01": 1}, issued_on=RETURNED_ON)


def test_a_full_return_credits_every_cent_each_invoice_rounded() -> None:
    # 1 x 0.50 at 21 % on each of two invoices: 0.105 -> 0.11 each, 0.22 charged. One
    # rounding of the summed base would say 0.21: the full credit gives back the 0.22.
    first = wave("INV-1", [line("CB-USB", 1, "0.50")], shipping=False, country="NL")
    second = wave("INV-2", [line("CB-USB", 1, "0.50")], shipping=False, country="NL")
    both = combined([first, second])
    assert both.totals.tax == Decimal("0.22")
    whole = credit_note_for(both, {"CB-USB": 2}, issued_on=RETURNED_ON)
    assert (whole.totals.tax, whole.totals.gross) == (Decimal("0.22"), Decimal("1.22"))
    assert whole.invoice_nos == ["INV-1", "INV-2"]
    # unit by unit: 0.11 (0.105 rounded), then what is left of the rate's tax
    one = credit_note_for(both, {"CB-USB": 1}, issued_on=RETURNED_ON)
    two = credit_note_for(both, {"CB-USB": 1}, earlier=[one], issued_on=RETURNED_ON)
    assert [one.totals.tax, two.totals.tax] == [Decimal("0.11"), Decimal("0.11")]
    assert credit_problems(both, [one, two]) == []


def test_the_check_across_invoices_finds_over_credits_and_foreign_notes() -> None:
    first, second = two_waves()
    both = combined([first, second])
    note = credit_note_for(
        both, {"KB-100": 2, "MS-200": 1}, refund_shipping=True, issued_on=RETURNED_ON
    )
    assert note.invoice_nos == ["INV-1", "INV-2"]
    assert credit_problems(both, [note]) == []
    # checked against the first invoice alone, the same note is far too much
    alone = credit_problems(first, [note])
    assert any("belongs to INV-1 + INV-2" in p for p in alone)
    assert any("2 of KB-100 credited, 1 invoiced" in p for p in alone)
    bumped = note.breakdown[0].model_copy(update={"tax": note.breakdown[0].tax + Decimal("0.01")})
    tampered = note.model_copy(update={"breakdown": [bumped]})
    assert any(
        p.startswith("INV-1 + INV-2: ") and "24.26 tax, invoiced 127.65 net 24.25 tax" in p
        for p in credit_problems(both, [tampered])
    )
    stranger = note.model_copy(update={"invoice_no": "INV-9", "invoice_nos": ["INV-9"]})
    assert any("belongs to INV-9 EUR" in p for p in credit_problems(both, [stranger]))


def test_invoices_of_different_orders_or_currencies_do_not_combine() -> None:
    first, second = two_waves()
    with pytest.raises(ValueError, match="no invoice"):
        combined([])
    with pytest.raises(ValueError, match="cannot combine"):
        combined([first, second.model_copy(update={"order_id": "A-OTHER"})])
    with pytest.raises(ValueError, match="cannot combine"):
        combined([first, second.model_copy(update={"currency": "USD"})])


def test_a_credit_note_stored_before_several_invoices_still_reads() -> None:
    bill = invoice("DE")
    note = credit_note_for(bill, {"KB-100": 1}, issued_on=RETURNED_ON)
    stored = note.model_dump(mode="json")
    del stored["invoice_nos"]  # as notes were stored before
    old = CreditNote.model_validate(stored)
    assert (old.invoice_nos, old.credits) == ([], ["INV-A-1"])
    assert credit_problems(combined([bill]), [old]) == []


def test_an_order_invoiced_in_waves_is_taxed_as_one_rounding_per_rate() -> None:
    # Two waves of 0.03 at 19 %: alone each rounds to 0.01 (0.02 in all), one rounding of
    # 0.06 is 0.01. The second invoice's tax is cumulative: what the order owes, no cent more.
    cheap = [line("PIN", 1, "0.03")]
    to = BillTo(customer_id="C-1", country="DE", postal_code="10115")
    first = draft_invoice("A-1", "EUR", cheap, None, to, RATES, ISSUED)
    second = draft_invoice("A-1", "EUR", cheap, None, to, RATES, ISSUED, earlier=first.breakdown)
    whole = draft_invoice("A-1", "EUR", [line("PIN", 2, "0.03")], None, to, RATES, ISSUED)
    assert (first.totals.tax, second.totals.tax) == (Decimal("0.01"), Decimal("0.00"))
    assert first.totals.tax + second.totals.tax == whole.totals.tax


def test_an_estimate_bounds_every_split_of_the_shipping_over_the_rates() -> None:
    # Wave 1 bills only standard-rate goods, so the whole flat shipping is taxed at 19 %;
    # an estimate splitting it in proportion over standard and reduced goods would be short.
    standard, reduced = line("KB-100", 1, "40.00"), line("BOOK", 1, "60.00", "reduced")
    to = BillTo(customer_id="C-1", country="DE", postal_code="10115")
    flat = shipping_charge(CHARGES.shipping["EUR"], "EUR", Decimal("100.00"), "DE", ["NL"])
    assert flat.net > 0
    one = draft_invoice("A-1", "EUR", [standard], flat, to, RATES, ISSUED)
    two = draft_invoice("A-1", "EUR", [reduced], None, to, RATES, ISSUED, earlier=one.breakdown)
    split = draft_invoice("A-1", "EUR", [standard, reduced], flat, to, RATES, ISSUED)
    bound = draft_invoice(
        "A-1", "EUR", [standard, reduced], flat, to, RATES, ISSUED, shipping_at_highest_rate=True
    )
    billed = one.totals.gross + two.totals.gross
    assert split.totals.gross < billed <= bound.totals.gross
