"""Capture per wave, on real orders with the real rates: a backordered order is captured and
invoiced once per wave delivered; a card authorisation that lapsed in between is renewed
before the next wave is booked, and a declined renewal holds the order for finance.

The simulated gateway enforces the lapse (a capture after `card_authorization_valid_for`
is refused), so a renewal the workflow forgot would fail the capture, not pass unnoticed.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import Invoice, Payment
from activities.payments import GatewayDeclined, PaymentActivities, SimulatedGateway
from domain.holds import ApprovalDecision, HoldType, RejectionDecision, Tier
from domain.returns import ReturnRequest
from domain.stages import Stage
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.check import check_orders
from starter.inventory import restock
from starter.orders import UserError
from starter.returns import request_return
from tests.factories import make_order, new_sku, stock_of, until
from tests.gates import assert_invariants
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings
from workers.worker import build_worker, money_rules

VALID_FOR = "2s"  # the gateway's authorisation lifetime (7 days in real life)
pytestmark = pytest.mark.settings(
    tax_rates_file=None, charges_file=None, card_authorization_valid_for=VALID_FOR
)


class IssuerGateway(SimulatedGateway):
    """The simulated processor, whose issuer declines renewals while the test says so (a
    cardholder's card blocked between the first wave and the second)."""

    declining = False

    def authorize(self, key: str, amount: Decimal, currency: str) -> str:
        if self.declining and "/reauthorize-" in key:
            raise GatewayDeclined(f"card declined: the issuer refused {amount} {currency}")
        return super().authorize(key, amount, currency)

    def authorize_payment(self, engine: Engine, settings: Settings) -> Callable[..., Any]:
        """Our authorisation step, calling this gateway (register it as a worker override)."""
        step: Callable[..., Any] = PaymentActivities(
            engine, self, money_rules(settings)
        ).authorize_payment
        return step


def lapsed(state: OrderState) -> bool:
    payment = state.payment
    return payment is not None and payment.lapsed(datetime.now(UTC))


async def first_wave_billed_then_lapsed(client: Client, settings: Settings, order_id: str) -> None:
    """Wave one delivered and invoiced, the order backordered, its authorisation lapsed."""
    await ship_and_deliver(client, order_id)
    await until(client, order_id, lambda s: s.status == OrderStatus.BACKORDERED)
    first = await orders.state_of(client, order_id)
    assert (
        len(first.captures) == 1 and first.shipments[0].invoice_no == first.captures[0].invoice_no
    )
    await until(client, order_id, lapsed)


async def second_wave_delivered(client: Client, order_id: str) -> OrderState:
    await until(
        client,
        order_id,
        lambda s: len(s.shipments) == 2 and s.status == OrderStatus.AWAITING_SHIPMENT,
    )
    await ship_and_deliver(client, order_id, only_pending=True)
    return await orders.wait_for(client, order_id, OrderStatus.COMPLETED, 30)


def ledger(engine: Engine, order_id: str) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(Payment).where(Payment.order_id == order_id).order_by(Payment.id)
        )
        return [(p.kind, p.idempotency_key.split("/")[1]) for p in rows]


def invoices(engine: Engine, order_id: str) -> list[tuple[int, str, Decimal]]:
    with Session(engine) as session:
        rows = session.scalars(
            select(Invoice).where(Invoice.order_id == order_id).order_by(Invoice.capture_no)
        )
        return [(i.capture_no, i.invoice_no, i.amount) for i in rows]


async def test_a_backorder_is_billed_per_wave_and_a_lapsed_authorisation_renewed(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"FRA": 2})
    order = make_order({sku: 3}, country="DE")  # 2 ship now from Frankfurt, 1 after goods in
    await orders.place(client, worker, order)
    await first_wave_billed_then_lapsed(client, worker, order.order_id)

    await restock(client, worker, sku, "FRA", 5)
    done = await second_wave_delivered(client, order.order_id)

    # Two invoices, each the gross of its wave: 20.00 + 4.95 shipping (once, on the first)
    # + 19 % VAT, then 10.00 + 19 % VAT; one capture each.
    assert [c.amount for c in done.captures] == [Decimal("29.69"), Decimal("11.90")]
    billed = invoices(engine, order.order_id)
    assert [(n, amount) for n, _, amount in billed] == [
        (1, Decimal("29.69")),
        (2, Decimal("11.90")),
    ]
    assert [s.invoice_no for s in done.shipments] == [number for _, number, _ in billed]
    money = ledger(engine, order.order_id)
    assert money[0] == ("AUTHORIZE", "authorize")
    assert ("REAUTHORIZE", "reauthorize-1") in money  # before wave two was booked
    assert [m for m in money if m[0] == "CAPTURE"] == [
        ("CAPTURE", "capture"),
        ("CAPTURE", "capture-2"),
    ]
    events = done.events
    second_booking = [i for i, e in enumerate(events) if e.status == OrderStatus.ROUTED][1]
    waited = max(i for i, e in enumerate(events[:second_booking]) if e.status == "BACKORDERED")
    # renewed after the goods came in and before the wave was booked, not only at a capture
    assert any(e.what.startswith("authorisation renewed") for e in events[waited:second_booking])
    await assert_invariants(client, worker, engine)


async def test_a_declined_renewal_holds_the_order_for_finance(
    client: Client, settings: Settings, engine: Engine
) -> None:
    issuer = IssuerGateway(
        latency_ms=(1, 5), authorization_valid_for=settings.card_authorization_valid_for
    )
    kept, dropped = new_sku(engine, {"FRA": 2}), new_sku(engine, {"FRA": 2})
    released = make_order({kept: 3}, country="DE")
    refused = make_order({dropped: 3}, country="DE")
    async with build_worker(
        client, settings, engine, overrides=[issuer.authorize_payment(engine, settings)]
    ):
        for order in (released, refused):
            await orders.place(client, settings, order)
            await first_wave_billed_then_lapsed(client, settings, order.order_id)
        issuer.declining = True  # the cardholder's card is blocked now
        for order, sku in ((released, kept), (refused, dropped)):
            await restock(client, settings, sku, "FRA", 1)
            held = await until(
                client, order.order_id, lambda s: s.status == OrderStatus.AWAITING_APPROVAL
            )
            assert held.stage == Stage.PAYMENT_HOLD
            [hold] = [h for h in held.holds if h.is_open]
            assert (hold.type, hold.tier) == (HoldType.PAYMENT, Tier.FINANCE)
            assert "re-authorisation declined" in hold.reason
            assert len(held.shipments) == 1  # nothing more is booked while it waits
            with pytest.raises(UserError, match="finance rejects the hold"):
                await orders.cancel(client, order.order_id, "changed my mind", "customer")
            with pytest.raises(UserError, match="finance"):  # a manager may not release it
                await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))

        # Released: finance had the customer unblock the card; the card is tried again.
        issuer.declining = False
        await orders.approve(
            client, released.order_id, ApprovalDecision(by="fiona.finance", note="card unblocked")
        )
        done = await second_wave_delivered(client, released.order_id)
        assert len(done.captures) == 2 and len(invoices(engine, released.order_id)) == 2
        assert [h.released_by for h in done.holds if h.type == HoldType.PAYMENT] == [
            "fiona.finance"
        ]

        # Rejected: what was delivered stays billed, the rest does not ship and its stock
        # is released.
        await orders.reject(
            client,
            refused.order_id,
            RejectionDecision(by="fiona.finance", reason="customer cannot pay"),
        )
        final = await orders.wait_for(client, refused.order_id, OrderStatus.COMPLETED, 30)
        assert len(final.captures) == 1 and len(final.shipments) == 1
        assert any(
            "the rest of the order was dropped: PaymentDeclined: payment refused by fiona.finance"
            in e.what
            for e in final.events
        )
        assert stock_of(engine, dropped) == {"FRA": (1, 0)}  # on hand 1, nothing held
        await assert_invariants(client, settings, engine)


@pytest.mark.settings(
    tax_rates_file=None,
    charges_file=None,
    card_authorization_valid_for=VALID_FOR,
    booking_attempts=1,
)
async def test_a_renewal_nothing_was_captured_against_is_voided(
    client: Client, settings: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"FRA": 2})
    order = make_order({sku: 3}, country="DE")
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        await first_wave_billed_then_lapsed(client, settings, order.order_id)
    down = settings.model_copy(update={"carriers_down": "PARCELCO,SWIFTPOST,GLOBEX"})
    async with build_worker(client, down, engine):
        await restock(client, down, sku, "FRA", 1)  # renewed, then no carrier books wave two
        done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 60)
    assert len(done.captures) == 1
    # the renewal held the rest on the card: released, not left there until it lapses
    assert [kind for kind, _ in ledger(engine, order.order_id)] == [
        "AUTHORIZE",
        "CAPTURE",
        "REAUTHORIZE",
        "VOID",
    ]
    assert ("VOID", "void-1") in ledger(engine, order.order_id)
    await assert_invariants(client, settings, engine)


async def test_a_renewal_declined_at_capture_leaves_the_delivered_wave_to_finance(
    client: Client, settings: Settings, engine: Engine
) -> None:
    issuer = IssuerGateway(
        latency_ms=(1, 5), authorization_valid_for=settings.card_authorization_valid_for
    )
    sku = new_sku(engine, {"FRA": 2})
    order = make_order({sku: 2}, country="DE")  # one wave
    async with build_worker(
        client, settings, engine, overrides=[issuer.authorize_payment(engine, settings)]
    ):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.notify_shipment(client, order.order_id, "ship", None, "wms")
        await until(client, order.order_id, lapsed)  # in transit longer than the card's hold
        issuer.declining = True
        await orders.notify_shipment(client, order.order_id, "deliver", None, "carrier")
        held = await until(
            client, order.order_id, lambda s: s.status == OrderStatus.AWAITING_APPROVAL
        )
        assert held.stage == Stage.PAYMENT_HOLD and not held.captures
        await orders.reject(
            client,
            order.order_id,
            RejectionDecision(by="fiona.finance", reason="card blocked, we invoice by mail"),
        )
        done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
        assert done.events[-1].what == "delivered, not billed: payment refused"
        assert not done.captures and invoices(engine, order.order_id) == []
        assert any(e.what.startswith("delivered but not billed") for e in done.events)
        with pytest.raises(UserError):  # nothing was invoiced: nothing a return could credit
            await request_return(
                client, order.order_id, ReturnRequest(lines={sku: 1}, reason="changed mind")
            )
    # `orderflow check` keeps listing it until a person has invoiced and collected it
    audit = await check_orders(client, settings, engine, task_queue=settings.task_queue)
    assert {(v["order_id"], v["rule"]) for v in audit["violations"]} == {
        (order.order_id, "billed-shipped")
    }
