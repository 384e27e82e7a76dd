"""Backorders: wait for stock, get it by priority when it arrives, expire into cancellation."""

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from domain.statuses import OrderStatus
from starter import orders
from starter.inventory import restock
from tests.factories import make_order, new_sku, stock_of, until
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings


async def test_backordered_order_is_reserved_when_stock_arrives(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 3})
    order = make_order({sku: 5}, customer="C-ACME")  # ship complete: all or nothing
    await orders.place(client, worker, order)
    waiting = await orders.wait_for(client, order.order_id, OrderStatus.BACKORDERED, 30)
    assert waiting.status == OrderStatus.BACKORDERED
    assert stock_of(engine, sku) == {"AMS": (3, 0)}  # ship-complete holds nothing partially

    outcome = await restock(client, worker, sku, "AMS", 5)
    assert outcome.offered == [order.order_id] and outcome.now_reserved == [order.order_id]
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.status == OrderStatus.AWAITING_SHIPMENT
    assert stock_of(engine, sku) == {"AMS": (8, 5)}


async def test_scarce_stock_goes_to_the_higher_priority_customer_first(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 0})
    retail = make_order({sku: 3}, customer="C-WEB-001")  # priority 0, placed first
    await orders.place(client, worker, retail)
    await orders.wait_for(client, retail.order_id, OrderStatus.BACKORDERED, 30)
    b2b = make_order({sku: 3}, customer="C-ACME")  # priority 10, placed later
    await orders.place(client, worker, b2b)
    await orders.wait_for(client, b2b.order_id, OrderStatus.BACKORDERED, 30)

    outcome = await restock(client, worker, sku, "AMS", 3)
    assert outcome.offered == [b2b.order_id, retail.order_id]
    assert outcome.now_reserved == [b2b.order_id]
    assert (await orders.state_of(client, retail.order_id)).status == OrderStatus.BACKORDERED
    assert stock_of(engine, sku) == {"AMS": (3, 3)}


async def test_ship_when_available_ships_what_is_there_then_the_rest(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 2})
    order = make_order({sku: 3})  # ship when available: 2 now, 1 when it arrives
    await orders.place(client, worker, order)
    first = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert [(s.shipment_id, s.lines[0].quantity) for s in first.shipments] == [
        (f"{order.order_id}-AMS", 2)
    ]
    await ship_and_deliver(client, order.order_id)
    await until(client, order.order_id, lambda s: s.status == OrderStatus.BACKORDERED)

    await restock(client, worker, sku, "AMS", 5)
    second = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert [s.shipment_id for s in second.shipments] == [
        f"{order.order_id}-AMS",
        f"{order.order_id}-AMS-2",
    ]
    await ship_and_deliver(client, order.order_id, only_pending=True)
    done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    # Each wave is captured and invoiced once it is delivered: two invoices.
    assert [c.amount for c in done.captures] == [20, 10]
    assert [s.invoice_no for s in done.shipments] == [c.invoice_no for c in done.captures]
    assert stock_of(engine, sku) == {"AMS": (4, 0)}


@pytest.mark.settings(backorder_expire_after="3s")
async def test_an_expired_backorder_after_a_partial_shipment_bills_what_was_shipped(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 2})
    order = make_order({sku: 3})
    await orders.place(client, worker, order)
    await ship_and_deliver(client, order.order_id)
    done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert done.capture is not None and done.capture.amount == 20  # 2 of 3 shipped
    assert any("backorder expired: not shipped" in e.what for e in done.events)
    assert stock_of(engine, sku) == {"AMS": (0, 0)}


@pytest.mark.settings(backorder_expire_after="2s")
async def test_backorder_expires_into_cancellation_when_nothing_shipped(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 2})
    order = make_order({sku: 3}, customer="C-ACME")  # ship complete: nothing ships early
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.BACKORDERED, 30)
    state = await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 30)
    assert state.status == OrderStatus.CANCELLED
    assert "backorder expired" in (state.reason or "")
    assert stock_of(engine, sku) == {"AMS": (2, 0)}


async def test_a_receipt_is_booked_once(client: Client, worker: Settings, engine: Engine) -> None:
    sku = new_sku(engine, {"FRA": 1})
    await restock(client, worker, sku, "FRA", 4, receipt_id=f"R-{sku}")
    with pytest.raises(Exception, match="already booked"):
        await restock(client, worker, sku, "FRA", 4, receipt_id=f"R-{sku}")
    assert stock_of(engine, sku) == {"FRA": (5, 0)}
