"""Cancel at every stage and fail mid-order: every compensation runs once, nothing stays held."""

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import Payment
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.orders import UserError
from tests.factories import live_labels, make_order, new_sku, stock_of
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings
from workflows import search


def payment_rows(engine: Engine, order_id: str) -> dict[str, int]:
    with Session(engine) as session:
        rows = session.execute(
            select(Payment.kind, func.count())
            .where(Payment.order_id == order_id)
            .group_by(Payment.kind)
        )
        return {kind: count for kind, count in rows}


async def final_state(client: Client, order_id: str) -> OrderState:
    handle = client.get_workflow_handle(search.workflow_id(order_id), result_type=OrderState)
    result: OrderState = await handle.result()
    return result


def compensations(state: OrderState) -> list[str]:
    return [
        e.what.removeprefix("compensated: ")
        for e in state.events
        if e.what.startswith("compensated: ")
    ]


@pytest.mark.settings(carriers_down="PARCELCO,SWIFTPOST,GLOBEX", booking_attempts=1000)
async def test_cancel_after_reservation_stops_the_booking_and_releases_everything(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 3})
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.ROUTED, 30)  # booking retries
    assert stock_of(engine, sku) == {"AMS": (5, 3)}
    await orders.cancel(client, order.order_id, "found it cheaper", "customer")
    state = await final_state(client, order.order_id)
    assert state.status == OrderStatus.CANCELLED and state.reason == "found it cheaper"
    assert compensations(state) == ["void_labels", "release_inventory", "void_authorization"]
    assert stock_of(engine, sku) == {"AMS": (5, 0)}
    assert live_labels(engine, order.order_id) == 0
    assert payment_rows(engine, order.order_id) == {"AUTHORIZE": 1, "VOID": 1}


async def test_cancel_after_booking_voids_the_label_too(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"FRA": 5})
    order = make_order({sku: 2}, country="DE")
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert live_labels(engine, order.order_id) == 1
    await orders.cancel(client, order.order_id, "address moved", "cs-agent")
    state = await final_state(client, order.order_id)
    assert state.status == OrderStatus.CANCELLED
    assert compensations(state) == ["void_labels", "release_inventory", "void_authorization"]
    assert live_labels(engine, order.order_id) == 0
    assert stock_of(engine, sku) == {"FRA": (5, 0)}
    assert payment_rows(engine, order.order_id) == {"AUTHORIZE": 1, "VOID": 1}
    with pytest.raises(UserError, match="already CANCELLED"):
        await orders.cancel(client, order.order_id, "again", "cs-agent")


async def test_cancel_after_shipment_is_refused_and_points_to_a_return(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 1})
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    await orders.notify_shipment(client, order.order_id, "ship", None, "wms")
    await orders.wait_for(client, order.order_id, OrderStatus.SHIPPED, 30)
    with pytest.raises(UserError, match="open a return instead"):
        await orders.cancel(client, order.order_id, "too late", "customer")
    assert (await orders.state_of(client, order.order_id)).status == OrderStatus.SHIPPED


async def test_cancel_after_capture_is_refused_and_the_money_stays_captured(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    await orders.place(client, worker, order)
    await ship_and_deliver(client, order.order_id)
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    with pytest.raises(UserError, match="open a return instead"):
        await orders.cancel(client, order.order_id, "changed my mind", "customer")
    state = await orders.state_of(client, order.order_id)
    assert state.status == OrderStatus.COMPLETED and state.compensations == []
    assert payment_rows(engine, order.order_id) == {"AUTHORIZE": 1, "CAPTURE": 1}
    assert stock_of(engine, sku) == {"AMS": (3, 0)}  # the goods left: nothing to release


@pytest.mark.settings(carriers_down="PARCELCO,SWIFTPOST,GLOBEX", booking_attempts=2)
async def test_a_step_that_fails_for_good_is_compensated_in_reverse_order(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    await orders.place(client, worker, order)
    state = await final_state(client, order.order_id)
    assert state.status == OrderStatus.FAILED
    assert "NoCarrierAvailable" in (state.reason or "")
    assert compensations(state) == ["void_labels", "release_inventory", "void_authorization"]
    assert stock_of(engine, sku) == {"AMS": (5, 0)}
    assert live_labels(engine, order.order_id) == 0
    assert payment_rows(engine, order.order_id) == {"AUTHORIZE": 1, "VOID": 1}
