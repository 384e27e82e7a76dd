"""Money as finance sees it, on real orders (dev server, worker, both databases) with the real
rates and charges (domain/data): VAT by destination, the EU reverse charge, US sales tax,
shipping free above the threshold, and credits that mirror the invoice less a restocking fee."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import Invoice, OrderRecord, Refund
from activities.invariants import check_database
from domain.credit_notes import CreditNote
from domain.invoicing import Invoice as InvoiceDocument
from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.statuses import OrderStatus
from starter import orders
from starter.read_model import billing
from starter.returns import inspect_return, receive_return, request_return
from tests.factories import make_order, new_customer, new_sku, payments_of
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.settings(tax_rates_file=None, charges_file=None)  # the real tables


async def invoiced(
    client: Client, settings: Settings, engine: Engine, order: Any
) -> tuple[Invoice, InvoiceDocument]:
    await orders.place(client, settings, order)
    await ship_and_deliver(client, order.order_id)
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    with Session(engine) as session:
        row = session.scalar(select(Invoice).where(Invoice.order_id == order.order_id))
    assert row is not None and row.document is not None
    return row, InvoiceDocument.model_validate(row.document)


def breakdown(document: InvoiceDocument | CreditNote) -> list[tuple[str, str, str, str]]:
    return [
        (b.treatment.category.value, str(b.treatment.rate), str(b.base), str(b.tax))
        for b in document.breakdown
    ]


def clean(engine: Engine, *order_ids: str) -> None:
    assert check_database(engine, Decimal(5000), set(order_ids)) == []


async def test_a_consumer_in_germany_pays_german_vat_and_the_shipping_charge(
    client: Client, worker: Settings, engine: Engine
) -> None:
    order = make_order({new_sku(engine, {"FRA": 5}): 3}, country="DE")  # 30.00 from Frankfurt
    row, document = await invoiced(client, worker, engine, order)

    assert row.invoice_no.startswith("INV-2") and len(row.invoice_no) == len("INV-2026-000001")
    assert [(line.kind.value, str(line.net)) for line in document.lines] == [
        ("goods", "30.00"),
        ("shipping", "4.95"),  # flat DOMESTIC, below the 150.00 threshold
    ]
    assert breakdown(document) == [("S", "19", "34.95", "6.64")]
    totals = document.totals
    assert (totals.net, totals.tax, totals.gross) == (
        Decimal("34.95"),
        Decimal("6.64"),
        Decimal("41.59"),
    )
    assert (row.amount, row.net, row.tax, row.shipping) == (
        Decimal("41.59"),
        Decimal("34.95"),
        Decimal("6.64"),
        Decimal("4.95"),
    )
    money = payments_of(engine, order.order_id)
    assert money["CAPTURE"] == Decimal("41.59")  # the gross is what the card pays
    assert money["AUTHORIZE"] >= money["CAPTURE"]  # the estimate covered the dearest shipping
    state = await orders.state_of(client, order.order_id)
    assert state.capture is not None and state.capture.amount == Decimal("41.59")
    billed = billing(engine, order.order_id)
    assert billed is not None
    assert (billed["net"], billed["tax"], billed["gross"]) == ("34.95", "6.64", "41.59")
    clean(engine, order.order_id)


async def test_a_french_business_with_a_vat_id_is_reverse_charged_and_ships_free(
    client: Client, worker: Settings, engine: Engine
) -> None:
    business = new_customer(
        engine, payment_terms="net_30", credit_limit="100000", vat_id="FR40303265045"
    )
    sku = new_sku(engine, {"AMS": 30})
    order = make_order({sku: 20}, customer=business, country="FR")  # 200.00 >= 150.00
    row, document = await invoiced(client, worker, engine, order)

    assert breakdown(document) == [("K", "0", "200.00", "0.00")]
    assert document.totals.gross == Decimal("200.00") == row.amount
    assert all(line.net == 0 for line in document.lines if line.kind.value == "shipping")
    assert any("reverse charge" in note.lower() for note in document.notes)
    assert document.bill_to.vat_id == "FR40303265045"
    assert (document.due_on - document.issued_on).days == 30  # Net-30
    clean(engine, order.order_id)


async def test_an_order_to_new_jersey_pays_no_vat_but_the_state_sales_tax(
    client: Client, worker: Settings, engine: Engine
) -> None:
    american = new_customer(engine, currency="USD")
    sku = new_sku(engine, {"NJY": 10})
    order = make_order({sku: 3}, customer=american, country="US", currency="USD")
    row, document = await invoiced(client, worker, engine, order)

    assert [(line.kind.value, str(line.net)) for line in document.lines] == [
        ("goods", "30.00"),
        ("shipping", "5.99"),
    ]
    [sales_tax] = document.breakdown
    assert str(sales_tax.treatment.rate) == "6.625" and sales_tax.treatment.scheme.value != "vat"
    assert (sales_tax.base, sales_tax.tax) == (Decimal("35.99"), Decimal("2.38"))
    assert row.amount == Decimal("38.37") and row.currency == "USD"
    clean(engine, order.order_id)


async def test_a_change_of_mind_pays_a_restocking_fee_and_a_defect_gets_everything_back(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"FRA": 10})
    kept_fee = make_order({sku: 2}, country="DE")  # 20.00 + 4.95, 19 % VAT: 29.69
    defective = make_order({sku: 2}, country="DE")
    for order in (kept_fee, defective):
        await invoiced(client, worker, engine, order)

    async def give_back(order_id: str, reason: str, units: int) -> Refund:
        rma = await request_return(
            client, order_id, ReturnRequest(lines={sku: units}, reason=reason)
        )
        await receive_return(client, rma.rma_id)
        verdict = [InspectionLine(sku=sku, quantity=units, disposition=Disposition.RESTOCK)]
        await inspect_return(client, InspectionRequest(rma_id=rma.rma_id, lines=verdict))
        await orders.wait_for(client, order_id, OrderStatus.REFUNDED, 30)
        with Session(engine) as session:
            refund = session.scalar(select(Refund).where(Refund.rma_id == rma.rma_id))
        assert refund is not None and refund.document is not None
        return refund

    changed_mind = await give_back(kept_fee.order_id, "changed my mind", 1)
    credit = CreditNote.model_validate(changed_mind.document)
    [line] = credit.lines
    assert (line.restocking_fee, line.net) == (Decimal("1.00"), Decimal("9.00"))  # 10 % kept
    assert breakdown(credit) == [("S", "19", "9.00", "1.71")]
    assert changed_mind.amount_minor == 1071  # 9.00 + 1.71 back on the card

    broken = await give_back(defective.order_id, "arrived broken", 2)
    credit = CreditNote.model_validate(broken.document)
    assert sum(line.restocking_fee for line in credit.lines) == 0  # waived for a defect
    assert [line.kind.value for line in credit.lines] == ["goods", "shipping"]  # whole order
    assert broken.amount_minor == 2969  # every cent the customer paid
    assert payments_of(engine, defective.order_id)["CAPTURE"] == Decimal("29.69")
    clean(engine, kept_fee.order_id, defective.order_id)


async def test_the_credit_check_counts_what_the_order_will_cost_with_tax_and_shipping(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """A German business without a VAT id pays German VAT: 200.00 of goods are 238.00 to its
    account, which a 220.00 credit line does not cover even though the goods would fit."""
    business = new_customer(engine, payment_terms="net_30", credit_limit="220")
    order = make_order({new_sku(engine, {"FRA": 30}): 20}, customer=business, country="DE")
    await orders.place(client, worker, order)
    held = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    [credit] = held.holds
    assert credit.type.value == "CREDIT"
    assert "this order 238.00 gross" in credit.reason
    with Session(engine) as session:
        row = session.get(OrderRecord, order.order_id)
        assert row is not None and row.gross_estimate == Decimal("238.00")


async def test_a_destination_without_a_vat_rate_is_refused_at_intake(
    client: Client, settings: Settings, engine: Engine, tmp_path: Any
) -> None:
    """Better a clear rejection when the order is placed than a failed capture after the
    goods were delivered."""
    import json

    rates = json.loads((Path(__file__).parents[2] / "domain/data/tax_rates.json").read_text())
    del rates["vat"]["ES"]
    file = tmp_path / "rates.json"
    file.write_text(json.dumps(rates))
    without_spain = settings.model_copy(update={"tax_rates_file": file})
    async with build_worker(client, without_spain, engine):
        order = make_order({new_sku(engine, {"MAD": 5}): 1}, country="ES")
        await orders.place(client, without_spain, order)
        state = await orders.wait_for(client, order.order_id, OrderStatus.REJECTED, 30)
    assert "no VAT rate for tax class 'standard' in ES (add it to the tax rates)" in (
        state.reason or ""
    )
