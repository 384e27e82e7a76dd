"""An order captured per wave of parcels, on SQLite and PostgreSQL: one invoice per capture,
numbered without gaps; returns priced against all its invoices; `orderflow check` holds it
(and catches a tampered invoice); `orderflow invoice` and `status`'s billing show them all."""

import json
import uuid
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from activities.billing import MoneyRules, estimate
from activities.carriers import carriers_from_config
from activities.catalog import load_catalog
from activities.credit import exposure
from activities.db.models import (
    CarrierLabel,
    CreditNote,
    ErpPosting,
    Invoice,
    Notification,
    OrderBalance,
    OrderRecord,
    Payment,
    Refund,
    ShipmentRecord,
)
from activities.invariants import check_database
from activities.payments import RefundRefused, SimulatedGateway
from activities.refunds import RefundActivities
from activities.returns import ReturnsActivities
from activities.shipping import DatabaseLabelBook
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
from domain.steps import CaptureRequest, PaymentAuthorization, PaymentRequest
from starter.invoice_document import Seller, invoice_documents
from starter.invoice_pdf import write_pdf
from starter.read_model import billing
from tests.factories import add_order, make_order, new_sku, payments
from tests.integration.test_invoice_document import line_with, orderflow, pdf_pages

RULES = MoneyRules.load(None, None)  # the real tax rates and charges (NL: 21 %, 4.95 at home)
SELLER = Seller.of(RULES.rates)
THRESHOLD = Decimal("5000")
A, B = "A", "B"  # the two SKUs of `Waves`, by role


def run(fn: Any, *args: Any) -> Any:
    return ActivityEnvironment().run(fn, *args)


def account(engine: Engine, terms: PaymentTerms) -> CustomerTerms:
    terms_of = CustomerTerms(
        customer_id=f"C-T-{uuid.uuid4().hex[:8].upper()}",
        name="Wave Test B.V.",
        payment_terms=terms,
        credit_limit=Decimal(100000),
        fulfilment_policy=FulfilmentPolicy.SHIP_WHEN_AVAILABLE,
        priority=0,
    )
    row = terms_of.model_dump(mode="json", exclude={"priority"})
    load_catalog(engine, {"customers": [{**row, "currency": "EUR"}]})
    return terms_of


class Waves:
    """An order of 3 x A and 1 x B to Amsterdam: wave 1 (2 x A) and wave 2 (1 x A, 1 x B)
    delivered from AMS, each captured as it was delivered (capture 1 and 2)."""

    def __init__(self, engine: Engine, terms: PaymentTerms, price: str = "10.00") -> None:
        self.engine = engine
        self.terms = account(engine, terms)
        self.sku = {A: new_sku(engine, {"AMS": 10}), B: new_sku(engine, {"AMS": 10})}
        self.order = make_order(
            {self.sku[A]: 3, self.sku[B]: 1}, customer=self.terms.customer_id, price=price
        )
        self.id = self.order.order_id
        self.parcels = [f"{self.id}-AMS", f"{self.id}-AMS-2"]
        self.waves = [{self.sku[A]: 2}, {self.sku[A]: 1, self.sku[B]: 1}]
        with Session(engine) as session, session.begin():
            add_order(session, self.order, status="DELIVERED")
            session.flush()
            record = session.get(OrderRecord, self.id)
            assert record is not None
            record.gross_estimate = estimate(session, RULES, self.order, date.today())
            for parcel, units in zip(self.parcels, self.waves, strict=True):
                self._delivered(session, parcel, units)
        self.authorization = self.authorize()

    def _delivered(self, session: Session, parcel: str, units: dict[str, int]) -> None:
        session.add(
            ShipmentRecord(
                shipment_id=parcel,
                order_id=self.id,
                warehouse="AMS",
                state="DELIVERED",
                carrier="PARCELCO",
                cost=Decimal("4.10"),
                detail={"lines": [{"sku": s, "quantity": q} for s, q in units.items()]},
            )
        )
        session.add(
            CarrierLabel(
                label_id=f"L-{uuid.uuid4().hex[:12]}",
                idempotency_key=f"{parcel}@PARCELCO",
                carrier="PARCELCO",
                service="standard",
                tracking_number=f"PC{uuid.uuid4().hex[:8]}",
                price=Decimal("4.10"),
                currency="EUR",
            )
        )

    def authorize(self, reauthorization: int = 0) -> PaymentAuthorization:
        request = PaymentRequest(
            order_id=self.id,
            customer=self.terms,
            amount=self.order.total,
            currency="EUR",
            reauthorization=reauthorization,
        )
        result: PaymentAuthorization = run(payments(self.engine, RULES).authorize_payment, request)
        return result

    def capture(self, n: int, authorization: PaymentAuthorization | None = None) -> None:
        """Capture wave `n` (1 or 2): bill its parcel's units."""
        units = self.waves[n - 1]
        request = CaptureRequest(
            order_id=self.id,
            authorization=authorization or self.authorization,
            amount=sum((Decimal(10) * q for q in units.values()), Decimal(0)),
            customer=self.terms,
            delivered=units,
            capture_no=n,
            parcels=[self.parcels[n - 1]],
            final=n == 2,
        )
        run(payments(self.engine, RULES).capture_payment, request)

    def invoices(self) -> list[Invoice]:
        with Session(self.engine) as session:
            return list(
                session.scalars(
                    select(Invoice).where(Invoice.order_id == self.id).order_by(Invoice.capture_no)
                )
            )

    def refund(
        self,
        n: int,
        units: dict[str, int],
        reason: str,
        how: Disposition,
        gateway: SimulatedGateway | None = None,
    ) -> Refund:
        """RMA `n` of `units` (by role), received, inspected as `how` and refunded as priced."""
        carriers = carriers_from_config(
            DEFAULT_CARRIERS,
            DatabaseLabelBook(self.engine),
            down=set(),
            failure_rate=0.0,
            latency_ms=(0, 0),
        )
        returns = ReturnsActivities(self.engine, list(carriers))
        rma = Rma(
            rma_id=rma_id_for(self.id, n),
            order_id=self.id,
            lines=[
                ReturnedLine(
                    sku=self.sku[role],
                    quantity=q,
                    unit_price=self.order.lines[0].unit_price,
                    warehouse="AMS",
                )
                for role, q in units.items()
            ],
            reason=reason,
            carrier=None,
            tracking_number=None,
            label_id=None,
        )
        run(returns.open_rma, rma)
        run(returns.receive_return, rma.rma_id)
        verdict = [
            InspectionLine(sku=self.sku[role], quantity=q, disposition=how)
            for role, q in units.items()
        ]
        run(returns.inspect_return, InspectionRequest(rma_id=rma.rma_id, lines=verdict))
        ledger = RefundActivities(
            self.engine, gateway or SimulatedGateway(latency_ms=(0, 0)), RULES
        )
        key = f"{self.id}/{rma.rma_id}"
        run(
            ledger.refund,
            RefundRequest(
                order_id=self.id,
                rma_id=rma.rma_id,
                amount=Decimal("0.01"),  # priced by the credit
                currency="EUR",
                idempotency_key=key,
            ),
        )
        with Session(self.engine) as session:
            row = session.scalar(select(Refund).where(Refund.idempotency_key == key))
        assert row is not None
        return row

    def balance(self) -> tuple[int, int]:
        with Session(self.engine) as session:
            row = session.get(OrderBalance, self.id)
            assert row is not None
            return row.captured_minor, row.refunded_minor

    def violations(self) -> list[tuple[str, str]]:
        return sorted((v.rule, v.detail) for v in check_database(self.engine, THRESHOLD, {self.id}))


def number_of(invoice_no: str) -> int:
    return int(invoice_no.rsplit("-", 1)[1])


def test_two_captures_issue_two_gapless_invoices_and_the_balance_is_their_sum(
    engine: Engine,
) -> None:
    order = Waves(engine, PaymentTerms.PREPAID)
    order.capture(1)
    order.capture(2)
    order.capture(2)  # a retried capture: the same invoice, nothing booked twice

    first, second = order.invoices()
    assert (first.capture_no, second.capture_no) == (1, 2)
    assert number_of(second.invoice_no) == number_of(first.invoice_no) + 1  # no gap
    # wave 1: 2 x 10.00 + 4.95 shipping (flat, once per order) = 24.95 + 21 % 5.24 = 30.19
    # wave 2: 1 x 10.00 + 1 x 10.00, no shipping = 20.00 + 21 % 4.20 = 24.20
    assert (first.net, first.tax, first.shipping, first.amount) == (
        Decimal("24.95"),
        Decimal("5.24"),
        Decimal("4.95"),
        Decimal("30.19"),
    )
    assert (second.net, second.tax, second.shipping, second.amount) == (
        Decimal("20.00"),
        Decimal("4.20"),
        Decimal("0.00"),
        Decimal("24.20"),
    )
    assert order.balance() == (3019 + 2420, 0)
    with Session(engine) as session:
        captures = session.execute(
            select(Payment.idempotency_key, Payment.amount_minor)
            .where(Payment.order_id == order.id, Payment.kind == "CAPTURE")
            .order_by(Payment.id)
        ).all()
        postings = session.scalars(
            select(ErpPosting.idempotency_key)
            .where(ErpPosting.order_id == order.id, ErpPosting.kind == "invoice")
            .order_by(ErpPosting.seq)
        ).all()
    assert [tuple(c) for c in captures] == [
        (f"{order.id}/capture", 3019),
        (f"{order.id}/capture-2", 2420),
    ]
    assert postings == [  # one ERP posting per invoice, each under its own key
        f"{order.id}:invoice:{first.invoice_no}",
        f"{order.id}:invoice:{second.invoice_no}",
    ]
    summary = billing(engine, order.id)  # what `orderflow status` shows
    assert summary is not None
    assert summary["invoices"] == [first.invoice_no, second.invoice_no]
    assert summary["invoice_no"] == first.invoice_no
    assert (summary["net"], summary["tax"], summary["gross"], summary["shipping"]) == (
        "44.95",
        "9.44",
        "54.39",
        "4.95",
    )
    assert order.violations() == []


def test_a_return_spanning_both_invoices_is_priced_against_both(engine: Engine) -> None:
    order = Waves(engine, PaymentTerms.PREPAID)
    order.capture(1)
    order.capture(2)
    first, second = order.invoices()

    # 3 x A back, 2 billed on the first invoice and 1 on the second; a change of mind,
    # restocked: a 10 % fee (3.00) kept, the VAT follows the net credited (21 % of 27.00)
    refund = order.refund(1, {A: 3}, "does not fit", Disposition.RESTOCK)

    assert refund.amount_minor == 2700 + 567
    assert refund.document is not None
    note = refund.document
    assert (note["invoice_no"], note["invoice_nos"]) == (
        first.invoice_no,
        [first.invoice_no, second.invoice_no],
    )
    [credited] = note["lines"]
    assert (credited["quantity"], credited["restocking_fee"], credited["net"]) == (
        3,
        "3.00",
        "27.00",
    )
    assert [(e["base"], e["tax"]) for e in note["breakdown"]] == [("27.00", "5.67")]
    assert all(line["kind"] == "goods" for line in note["lines"])  # not all back: no shipping
    with Session(engine) as session:
        posting = session.scalar(
            select(ErpPosting).where(ErpPosting.order_id == order.id, ErpPosting.kind == "refund")
        )
    assert posting is not None  # a card refund against the invoices it credits
    assert posting.payload["invoice_nos"] == [first.invoice_no, second.invoice_no]
    assert (posting.payload["net"], posting.payload["tax"], posting.payload["gross"]) == (
        "27.00",
        "5.67",
        "32.67",
    )
    assert posting.payload["tax_breakdown"][0]["rate"] == "21"
    assert order.balance() == (5439, 3267)
    assert order.violations() == []

    # the last unit (B, on the second invoice) cannot be credited twice, the rest can
    rest = order.refund(2, {B: 1}, "does not fit", Disposition.RESTOCK)
    assert rest.document is not None and rest.document["invoice_nos"] == [second.invoice_no]
    assert rest.amount_minor == 900 + 189  # 10.00 less 1.00, plus 21 %
    assert order.violations() == []


class RecordingGateway(SimulatedGateway):
    """The simulated processor (which refuses a refund above its capture), remembering
    every refund it was sent: (key, capture, amount)."""

    def __init__(self) -> None:
        super().__init__(latency_ms=(0, 0))
        self.refunds: list[tuple[str, str, Decimal]] = []

    def refund(self, key: str, reference: str, amount: Decimal) -> str:
        answer = super().refund(key, reference, amount)
        self.refunds.append((key, reference, amount))
        return answer


def captures_of(engine: Engine, order_id: str) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Payment.reference)
                .where(Payment.order_id == order_id, Payment.kind == "CAPTURE")
                .order_by(Payment.id)
            )
        )


def test_a_card_refund_larger_than_one_capture_goes_back_through_each(engine: Engine) -> None:
    order = Waves(engine, PaymentTerms.PREPAID)
    order.capture(1)  # 30.19
    order.capture(2)  # 24.20
    first, second = captures_of(engine, order.id)
    with pytest.raises(RefundRefused, match="above the capture"):  # one call cannot do it
        SimulatedGateway(latency_ms=(0, 0)).refund("k", first, Decimal("54.39"))

    gateway = RecordingGateway()
    refund = order.refund(1, {A: 2, B: 1}, "does not fit", Disposition.RESTOCK, gateway)
    key = f"{order.id}/{refund.rma_id}"
    # 3 units back: 27.00 net + 21 % = 32.67: the latest capture first, the rest from wave 1
    assert gateway.refunds == [
        (key, second, Decimal("24.20")),
        (f"{key}/part-2", first, Decimal("8.47")),
    ]
    assert refund.reference == "rfnd_" + refund.reference.split("_")[1]  # the first part's

    gateway.refunds.clear()
    order.refund(2, {A: 1}, "does not fit", Disposition.RESTOCK, gateway)
    # what the first refund left: nothing of capture 2, 21.72 of capture 1
    assert gateway.refunds == [(f"{order.id}/{rma_id_for(order.id, 2)}", first, Decimal("10.89"))]
    assert order.balance() == (5439, 3267 + 1089)
    assert order.violations() == []


def test_a_defective_whole_order_return_credits_every_cent_of_both_invoices(
    engine: Engine,
) -> None:
    # At 10.04 the invoices' VAT alone would round to 5.26 + 4.22 = 9.48, while 21 % of the
    # summed base (45.11) is 9.47, what the order's estimate authorised: the second invoice's
    # VAT is cumulative (9.47 - 5.26 = 4.21), and the credit gives back what was charged.
    order = Waves(engine, PaymentTerms.NET_30, price="10.04")
    order.capture(1)
    order.capture(2)
    first, second = order.invoices()
    assert (first.tax, second.tax) == (Decimal("5.26"), Decimal("4.21"))
    charged = first.amount + second.amount

    refund = order.refund(1, {A: 3, B: 1}, "arrived broken", Disposition.DISPOSE)

    assert refund.document is not None
    note = refund.document
    assert Decimal(note["totals"]["gross"]) == charged  # goods, shipping and every cent of VAT
    assert Decimal(note["totals"]["tax"]) == Decimal("9.47")
    assert [line["net"] for line in note["lines"] if line["kind"] == "shipping"] == ["4.95"]
    assert note["invoice_nos"] == [first.invoice_no, second.invoice_no]
    captured, refunded = order.balance()
    assert refunded == captured == int(charged * 100)
    with Session(engine) as session:  # Net-30: a credit note, named after both invoices
        credit = session.scalar(select(CreditNote).where(CreditNote.refund_id == refund.id))
        posting = session.scalar(
            select(ErpPosting).where(
                ErpPosting.order_id == order.id, ErpPosting.kind == "credit_note"
            )
        )
        told = session.scalar(
            select(Notification.message).where(
                Notification.order_id == order.id, Notification.kind == "refund_issued"
            )
        )
    assert credit is not None and credit.invoice_no == first.invoice_no
    assert credit.amount == charged
    assert posting is not None
    assert posting.payload["invoice_nos"] == [first.invoice_no, second.invoice_no]
    assert (posting.payload["tax"], Decimal(posting.payload["gross"])) == ("9.47", charged)
    assert told is not None
    assert f"against invoices {first.invoice_no} and {second.invoice_no}" in told
    assert order.violations() == []


def test_credit_exposure_counts_an_order_invoiced_in_part_once(engine: Engine) -> None:
    order = Waves(engine, PaymentTerms.NET_30)

    def owed() -> Decimal:
        with Session(engine) as session:
            return exposure(session, order.terms.customer_id, excluding_order_id="")

    with Session(engine) as session:
        record = session.get(OrderRecord, order.id)
        assert record is not None and record.gross_estimate is not None
        estimated = record.gross_estimate
    assert owed() == estimated  # open, nothing invoiced: the gross estimate
    order.capture(1)  # still open: the first invoice (30.19) and the rest of the estimate
    assert owed() == estimated
    order.capture(2)  # complete: the two unpaid invoices
    assert owed() == Decimal("54.39")
    order.refund(1, {A: 3, B: 1}, "arrived broken", Disposition.DISPOSE)
    assert owed() == Decimal(0)  # credited in full


def test_the_invariants_hold_per_invoice_and_catch_a_tampered_one(engine: Engine) -> None:
    order = Waves(engine, PaymentTerms.PREPAID)
    order.capture(1)
    order.capture(2)
    order.refund(1, {A: 1}, "does not fit", Disposition.RESTOCK)
    assert order.violations() == []
    first, second = order.invoices()

    def tampered(statement: Any) -> list[tuple[str, str]]:
        with Session(engine) as session, session.begin():
            session.execute(statement)
        return order.violations()

    # the second invoice says it is worth a cent more than its capture took
    found = tampered(
        update(Invoice).where(Invoice.invoice_no == second.invoice_no).values(amount="24.21")
    )
    assert found == [
        (
            "billed-shipped",
            f"REFUNDED: invoice {second.invoice_no} of 24.20 (24.21 booked) but captured 24.20",
        )
    ]
    tampered(update(Invoice).where(Invoice.invoice_no == second.invoice_no).values(amount="24.20"))

    # its document bills 2 of B: it no longer adds up, and the order bills more than left
    document = json.loads(json.dumps(second.document))
    goods = next(x for x in document["lines"] if x["sku"] == order.sku[B])
    goods.update(quantity=2, net="20.00")
    found = tampered(
        update(Invoice).where(Invoice.invoice_no == second.invoice_no).values(document=document)
    )
    # (the credit's check reads the invoices too: they no longer add up under it either)
    assert {rule for rule, _ in found} == {"billed-shipped", "credited-within-invoiced"}, found
    details = "\n".join(detail for _, detail in found)
    assert f"invoice {second.invoice_no} does not add up" in details
    assert f"2 of {order.sku[B]}, 1 left" in details
    tampered(
        update(Invoice)
        .where(Invoice.invoice_no == second.invoice_no)
        .values(document=second.document)
    )
    assert order.violations() == []

    # the second parcel was lost after all: billed units no longer match the goods out
    found = tampered(
        update(ShipmentRecord)
        .where(ShipmentRecord.shipment_id == order.parcels[1])
        .values(state="LOST")
    )
    assert (
        "billed-shipped",
        f"REFUNDED: invoices {first.invoice_no} + {second.invoice_no} "
        f"bill 1 of {order.sku[B]}, 0 left (lost parcels not counted)",
    ) in found
    tampered(
        update(ShipmentRecord)
        .where(ShipmentRecord.shipment_id == order.parcels[1])
        .values(state="DELIVERED")
    )

    # the balance forgets the second capture: refunds are bounded by every capture
    found = tampered(
        update(OrderBalance).where(OrderBalance.order_id == order.id).values(captured_minor=3019)
    )
    assert [rule for rule, _ in found] == ["refunded-within-captured"]
    tampered(
        update(OrderBalance).where(OrderBalance.order_id == order.id).values(captured_minor=5439)
    )

    # a credit that claims a cent more VAT than the two invoices charged on its units
    with Session(engine) as session:
        row = session.scalar(select(Refund).where(Refund.order_id == order.id))
        assert row is not None and row.document is not None
        credit = json.loads(json.dumps(row.document))
    credit["breakdown"][0]["tax"] = str(Decimal(credit["breakdown"][0]["tax"]) + Decimal("0.01"))
    found = tampered(update(Refund).where(Refund.id == row.id).values(document=credit))
    assert {rule for rule, _ in found} == {"credited-within-invoiced"}
    assert all(
        detail.startswith(f"{first.invoice_no} + {second.invoice_no}: ") for _, detail in found
    )
    tampered(update(Refund).where(Refund.id == row.id).values(document=row.document))
    assert order.violations() == []


def test_a_re_authorisation_covers_the_captures_after_it(engine: Engine) -> None:
    order = Waves(engine, PaymentTerms.PREPAID)
    order.capture(1)
    renewed = order.authorize(reauthorization=1)  # the first one lapsed, say
    order.capture(2, renewed)
    with Session(engine) as session:
        kinds = session.execute(
            select(Payment.kind, Payment.amount_minor)
            .where(Payment.order_id == order.id)
            .order_by(Payment.id)
        ).all()
    assert [kind for kind, _ in kinds] == ["AUTHORIZE", "CAPTURE", "REAUTHORIZE", "CAPTURE"]
    assert order.violations() == []

    # a capture above what the re-authorisation holds is caught
    with Session(engine) as session, session.begin():
        session.execute(
            update(Payment)
            .where(Payment.order_id == order.id, Payment.kind == "REAUTHORIZE")
            .values(amount_minor=2419)
        )
    assert order.violations() == [
        ("captured-within-authorised", "captured 2420 > authorised 2419 (minor units)")
    ]


def test_orderflow_invoice_shows_every_invoice_of_the_order(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    order = Waves(engine, PaymentTerms.NET_30)
    order.capture(1)
    order.capture(2)
    order.refund(1, {A: 3}, "does not fit", Disposition.RESTOCK)
    first, second = order.invoices()
    pdf = tmp_path / "waves.pdf"

    shown = orderflow(database_url, tmp_path, "invoice", order.id, "--pdf", str(pdf))

    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert f"Invoice {first.invoice_no}" in out and f"Invoice {second.invoice_no}" in out
    assert "(invoice 1 of 2)" in out and "(invoice 2 of 2)" in out
    assert line_with(out, "VAT 21 % NL, standard rate", "24.95", "5.24")
    assert line_with(out, "VAT 21 % NL, standard rate", "20.00", "4.20")
    assert line_with(out, "2 invoices", "gross € 54.39")
    assert f"on invoices {first.invoice_no} + {second.invoice_no}" in out
    assert f"pdf: {pdf} (3 pages)" in out

    one, two, credit = pdf_pages(pdf.read_bytes())
    assert line_with(one, "Invoice no", first.invoice_no) and "page 1 of 3" in one
    assert line_with(one, "VAT 21 % NL, standard rate", "24.95", "5.24")
    assert line_with(one, "Shipping", "4.95") and line_with(one, "Total", "€ 30.19")
    assert line_with(two, "Invoice no", second.invoice_no) and "page 2 of 3" in two
    assert line_with(two, "VAT 21 % NL, standard rate", "20.00", "4.20")
    assert line_with(two, "Total", "€ 24.20") and "Shipping" not in two
    assert line_with(two, "Part", "invoice 2 of 2 of the order")
    assert "CREDIT NOTE" in credit
    assert f"{first.invoice_no} of {first.issued_at.date()}" in credit
    assert f"{second.invoice_no} of {second.issued_at.date()}" in credit

    as_json = json.loads(orderflow(database_url, tmp_path, "invoice", order.id, "--json").stdout)
    assert as_json["invoices"] == [first.document, second.document]
    assert "invoice" not in as_json  # several: read `invoices`
    assert [n["invoice_nos"] for n in as_json["credit_notes"]] == [
        [first.invoice_no, second.invoice_no]
    ]

    # by an invoice's number: that invoice alone, with the credits that name it
    docs = invoice_documents(engine, second.invoice_no, SELLER)
    assert docs.numbers == [second.invoice_no] and len(docs.credit_notes) == 1
    assert docs.stored["invoice"] == second.document
    assert write_pdf(docs, tmp_path / "second.pdf") == 2


def test_a_card_order_billed_in_two_waves_never_captures_a_cent_above_its_authorisation(
    engine: Engine,
) -> None:
    # Found by the chaos test (seed 171399: captured 362.28 > authorised 362.27): each
    # invoice rounded its own VAT, so two waves could bill a cent more than one rounding of
    # the whole order, which is what the card was authorised for. At 10.04 that was
    # 5.26 + 4.22 = 9.48 against 9.47: now the second invoice's VAT is cumulative.
    order = Waves(engine, PaymentTerms.PREPAID, price="10.04")
    order.capture(1)
    order.capture(2)
    first, second = order.invoices()
    assert first.tax is not None and second.tax is not None
    assert first.tax + second.tax == Decimal("9.47")
    assert first.amount + second.amount <= order.authorization.amount
    assert order.violations() == []
