"""Returns and the refund ledger on SQLite and PostgreSQL: labels, restock, refund races."""

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.carriers import carriers_from_config
from activities.credit import exposure
from activities.db.models import (
    CarrierLabel,
    CreditNote,
    Invoice,
    OrderBalance,
    OrderEvent,
    Refund,
    ReturnLine,
    Stock,
    StockReservation,
    utcnow,
)
from activities.inventory import load_changes
from activities.payments import SimulatedGateway
from activities.refunds import RefundActivities
from activities.returns import ReturnsActivities
from activities.shipping import DatabaseLabelBook
from domain.order import Order
from domain.policy import CustomerTerms
from domain.returns import (
    Disposition,
    InspectionLine,
    InspectionRequest,
    RefundRequest,
    RefundResult,
    ReturnedLine,
    Rma,
    rma_id_for,
)
from domain.shipping import DEFAULT_CARRIERS
from domain.statuses import PaymentTerms
from tests.factories import (
    PREPAID,
    add_order,
    authorize,
    capture,
    delivered_parcel,
    make_order,
    net30_customer,
    new_sku,
    stock_of,
)


def run(fn: Callable[..., Any], *args: Any) -> Any:
    return ActivityEnvironment().run(fn, *args)


def returns(engine: Engine, **down: bool) -> Any:
    labels = DatabaseLabelBook(engine)
    carriers = carriers_from_config(
        DEFAULT_CARRIERS, labels, down=set(down), failure_rate=0.0, latency_ms=(1, 2)
    )
    return ReturnsActivities(engine, list(carriers))


def ledger(engine: Engine, gateway: SimulatedGateway | None = None) -> RefundActivities:
    return RefundActivities(engine, gateway or SimulatedGateway(latency_ms=(1, 2)))


def delivered_order(
    engine: Engine, sku: str, quantity: int, price: str = "10.00", terms: CustomerTerms = PREPAID
) -> Order:
    """The rows a completed order has: shipped from AMS, delivered, captured (balance too)."""
    order = make_order({sku: quantity}, price=price, customer=terms.customer_id)
    with Session(engine) as session, session.begin():
        add_order(session, order, lines=False)
        session.add(
            StockReservation(
                idempotency_key=f"{order.order_id}/0/{sku}/AMS",
                order_id=order.order_id,
                sku=sku,
                warehouse="AMS",
                quantity=quantity,
                state="SHIPPED",
            )
        )
        load_changes(session, "AMS", utcnow().date(), +1)  # as the reservation counted it
        stock = session.get(Stock, (sku, "AMS"))
        assert stock is not None
        stock.on_hand -= quantity
        session.add(delivered_parcel(order.order_id))
    capture(engine, order, authorize(engine, order, terms), terms)
    return order


def rma_of(order: Order, n: int = 1) -> Rma:
    return Rma(
        rma_id=rma_id_for(order.order_id, n),
        order_id=order.order_id,
        lines=[ReturnedLine(**line.model_dump(), warehouse="AMS") for line in order.lines],
        reason="does not fit",
        carrier=None,
        tracking_number=None,
        label_id=None,
    )


def refund_request(order: Order, amount: str, key: str, rma_id: str | None = None) -> RefundRequest:
    return RefundRequest(
        order_id=order.order_id,
        rma_id=rma_id,
        amount=Decimal(amount),
        currency="EUR",
        idempotency_key=f"{order.order_id}/{key}",
    )


def balance(engine: Engine, order_id: str) -> tuple[int, int]:
    with Session(engine) as session:
        row = session.get(OrderBalance, order_id)
        assert row is not None
        return row.captured_minor, row.refunded_minor


def refunds(engine: Engine, order_id: str) -> int:
    with Session(engine) as session:
        query = select(func.count()).select_from(Refund).where(Refund.order_id == order_id)
        return session.scalar(query) or 0


def in_threads(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run the calls at once; each result is the return value or the exception raised."""

    def attempt(call: Callable[[], Any]) -> Any:
        try:
            return call()
        except Exception as error:
            return error

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(attempt, calls))


def test_capture_creates_the_order_balance_once(engine: Engine) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 3, "12.50")
    capture(engine, order, authorize(engine, order))
    assert balance(engine, order.order_id) == (3750, 0)


def test_open_rma_twice_books_one_cheapest_return_label(engine: Engine) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 2)
    activities = returns(engine)
    first = run(activities.open_rma, rma_of(order))
    again = run(activities.open_rma, rma_of(order))
    assert first == again
    assert first.state == "OPEN" and first.carrier == "PARCELCO"  # NL -> AMS: domestic
    assert first.tracking_number and first.label_id
    with Session(engine) as session:
        labels = session.scalars(
            select(CarrierLabel).where(CarrierLabel.idempotency_key.like(f"{first.rma_id}@%"))
        ).all()
    assert [label.label_id for label in labels] == [first.label_id]


def test_return_label_falls_back_to_the_next_quote(engine: Engine) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 1)
    rma = run(returns(engine, PARCELCO=True).open_rma, rma_of(order))
    assert rma.carrier == "SWIFTPOST"


def test_restocked_units_become_available_again_disposed_ones_do_not(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 10})
    order = delivered_order(engine, sku, 4)
    assert stock_of(engine, sku) == {"AMS": (6, 0)}
    activities = returns(engine)
    rma = run(activities.open_rma, rma_of(order))
    inspection = InspectionRequest(
        rma_id=rma.rma_id,
        lines=[
            InspectionLine(sku=sku, quantity=2, disposition=Disposition.RESTOCK),
            InspectionLine(sku=sku, quantity=1, disposition=Disposition.REFURBISH),
            InspectionLine(sku=sku, quantity=1, disposition=Disposition.DISPOSE),
        ],
    )
    with pytest.raises(ApplicationError) as early:
        run(activities.inspect_return, inspection)
    assert early.value.type == "ReturnNotReceived"
    assert run(activities.receive_return, rma.rma_id).state == "RECEIVED"
    assert run(activities.receive_return, rma.rma_id).state == "RECEIVED"
    wrong = inspection.model_copy(update={"lines": inspection.lines[:2]})
    with pytest.raises(ApplicationError, match="inspected 3 of") as refused:
        run(activities.inspect_return, wrong)
    assert refused.value.type == "InspectionRefused" and refused.value.non_retryable

    inspected = run(activities.inspect_return, inspection)
    assert inspected.state == "INSPECTED"
    assert run(activities.inspect_return, inspection) == inspected  # stored, not applied twice
    assert stock_of(engine, sku) == {"AMS": (8, 0)}  # +2 restocked, sellable again
    with Session(engine) as session:
        line = session.get(ReturnLine, (rma.rma_id, sku))
        assert line is not None
        assert (line.restocked, line.refurbished, line.disposed) == (2, 1, 1)


def test_partial_refunds_up_to_the_capture_then_one_cent_more_is_refused(engine: Engine) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 3)  # 30.00 captured
    activities, money = returns(engine), ledger(engine)
    rma = run(activities.open_rma, rma_of(order))
    first = run(money.refund, refund_request(order, "10.00", "r1", rma.rma_id))
    assert first.refunded_total == Decimal("10.00") and first.rma_id == rma.rma_id
    assert run(money.refund, refund_request(order, "10.00", "r1", rma.rma_id)) == first
    second = run(money.refund, refund_request(order, "20.00", "r2"))
    assert second.refunded_total == Decimal("30.00") and second.reference != first.reference
    with pytest.raises(ApplicationError) as refused:
        run(money.refund, refund_request(order, "0.01", "r3"))
    assert refused.value.type == "RefundExceedsCapture" and refused.value.non_retryable
    assert balance(engine, order.order_id) == (3000, 3000)
    assert refunds(engine, order.order_id) == 2
    assert audit_lines(engine, order.order_id, "refunded") == [
        f"{rma.rma_id}: refunded 10.00 EUR",
        "no RMA: refunded 20.00 EUR",
    ]
    stored = run(activities.receive_return, rma.rma_id)
    assert stored.state == "REFUNDED" and stored.refund_amount == Decimal("10.00")


def test_refund_of_an_order_never_captured_is_refused(engine: Engine) -> None:
    order = make_order({"KB-100": 1})
    with pytest.raises(ApplicationError) as refused:
        run(ledger(engine).refund, refund_request(order, "1.00", "r1"))
    assert refused.value.type == "NothingCaptured"


def test_concurrent_refunds_with_one_key_move_money_once(engine: Engine) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 2)  # 20.00 captured
    money = ledger(engine)
    request = refund_request(order, "15.00", "same")
    results = in_threads([partial(run, money.refund, request) for _ in range(6)])
    assert all(isinstance(result, RefundResult) for result in results), results
    assert len({result.reference for result in results}) == 1
    assert refunds(engine, order.order_id) == 1
    assert balance(engine, order.order_id) == (2000, 1500)


class CountingGateway(SimulatedGateway):
    """Counts the refunds that reached the gateway: money that actually left."""

    def __init__(self) -> None:
        super().__init__(latency_ms=(1, 2))
        self.refunds: list[str] = []
        self._lock = threading.Lock()

    def refund(self, key: str, reference: str, amount: Decimal) -> str:
        with self._lock:
            self.refunds.append(key)
        return super().refund(key, reference, amount)


def test_concurrent_refunds_above_the_capture_one_is_refused_before_money_moves(
    engine: Engine,
) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 3)  # 30.00 captured
    gateway = CountingGateway()
    money = ledger(engine, gateway)
    requests = [refund_request(order, "20.00", key) for key in ("a", "b")]
    results = in_threads([partial(run, money.refund, request) for request in requests])
    won = [r for r in results if isinstance(r, RefundResult)]
    lost = [r for r in results if isinstance(r, ApplicationError)]
    assert len(won) == 1 and len(lost) == 1, results
    assert lost[0].type == "RefundExceedsCapture"
    assert len(gateway.refunds) == 1  # the ledger refused the loser before the gateway call
    assert refunds(engine, order.order_id) == 1
    assert balance(engine, order.order_id) == (3000, 2000)


def test_the_database_itself_refuses_refunds_above_the_capture(engine: Engine) -> None:
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 1)  # 10.00 captured
    statement = text(
        "UPDATE order_balances SET refunded_minor = refunded_minor + :amount "
        "WHERE order_id = :order_id"
    )
    with (
        pytest.raises(IntegrityError, match="refunds_within_capture"),
        engine.begin() as connection,
    ):
        connection.execute(statement, {"amount": 1001, "order_id": order.order_id})
    with engine.begin() as connection:
        connection.execute(statement, {"amount": 1000, "order_id": order.order_id})
    assert balance(engine, order.order_id) == (1000, 1000)


def test_a_net30_refund_is_a_credit_note_and_no_money_leaves(engine: Engine) -> None:
    """Account customers were invoiced, not charged: a refund credits the invoice."""
    terms = PREPAID.model_copy(
        update={
            "customer_id": net30_customer(engine, "5000"),
            "payment_terms": PaymentTerms.NET_30,
            "credit_limit": Decimal(5000),
        }
    )
    order = delivered_order(engine, new_sku(engine, {"AMS": 5}), 3, terms=terms)  # 30.00
    gateway = CountingGateway()
    money = ledger(engine, gateway)
    with Session(engine) as session:
        owed = exposure(session, terms.customer_id, excluding_order_id="")
    assert owed == Decimal("30.00")  # the unpaid Net-30 invoice

    first = run(money.refund, refund_request(order, "10.00", "r1"))
    assert first.reference.startswith("CN-") and first.refunded_total == Decimal("10.00")
    assert run(money.refund, refund_request(order, "10.00", "r1")) == first  # a retry
    with pytest.raises(ApplicationError) as refused:
        run(money.refund, refund_request(order, "20.01", "r2"))
    assert refused.value.type == "RefundExceedsCapture"

    assert gateway.refunds == []  # no money left the company
    with Session(engine) as session:
        invoice_no = session.scalar(
            select(Invoice.invoice_no).where(Invoice.order_id == order.order_id)
        )
        assert invoice_no is not None and invoice_no.startswith(f"INV-{date.today().year}-")
        notes = session.scalars(select(CreditNote)).all()
        mine = [n for n in notes if n.invoice_no == invoice_no]
        assert [(n.credit_note_no, n.amount) for n in mine] == [(first.reference, Decimal("10.00"))]
        assert exposure(session, terms.customer_id, excluding_order_id="") == Decimal("20.00")
    assert audit_lines(engine, order.order_id, "refunded") == [
        f"no RMA: refunded 10.00 EUR as credit note {first.reference} on {invoice_no}"
    ]


def audit_lines(engine: Engine, order_id: str, containing: str) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(OrderEvent.reason)
                .where(OrderEvent.order_id == order_id, OrderEvent.reason.contains(containing))
                .order_by(OrderEvent.id)
            )
        )
