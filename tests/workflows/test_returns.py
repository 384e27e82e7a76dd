"""Returns on the real dev server: window, quantities, inspection, restock and refund."""

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.statuses import OrderStatus
from starter import orders
from starter.orders import UserError
from starter.returns import inspect_return, receive_return, request_return
from tests.factories import make_order, new_sku, payments_of, stock_of
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings
from workflows import search


async def delivered(client: Client, settings: Settings, engine: Engine) -> tuple[str, str, str]:
    keep, back = new_sku(engine, {"AMS": 10}), new_sku(engine, {"AMS": 10})
    order = make_order({keep: 1, back: 3})  # 40.00
    await orders.place(client, settings, order)
    await ship_and_deliver(client, order.order_id)
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    return order.order_id, keep, back


async def test_return_restocks_disposes_and_refunds_what_came_back(
    client: Client, worker: Settings, engine: Engine
) -> None:
    order_id, _, back = await delivered(client, worker, engine)
    assert stock_of(engine, back) == {"AMS": (7, 0)}
    rma = await request_return(client, order_id, ReturnRequest(lines={back: 2}, reason="too big"))
    assert rma.rma_id == f"RMA-{order_id}-1" and rma.tracking_number
    with pytest.raises(UserError, match=f"only 1 of {back} can still be returned"):
        await request_return(client, order_id, ReturnRequest(lines={back: 2}, reason="more"))
    with pytest.raises(UserError, match="inspect after receipt"):
        await inspect_return(
            client,
            InspectionRequest(
                rma_id=rma.rma_id,
                lines=[InspectionLine(sku=back, quantity=2, disposition=Disposition.RESTOCK)],
            ),
        )

    await receive_return(client, rma.rma_id)
    refund = await inspect_return(
        client,
        InspectionRequest(
            rma_id=rma.rma_id,
            lines=[
                InspectionLine(sku=back, quantity=1, disposition=Disposition.RESTOCK),
                InspectionLine(sku=back, quantity=1, disposition=Disposition.DISPOSE),
            ],
        ),
    )
    assert refund.amount == 20 and refund.refunded_total == 20
    assert stock_of(engine, back) == {"AMS": (8, 0)}  # one unit back on the shelf, one scrapped
    state = await orders.state_of(client, order_id)
    assert state.status == OrderStatus.REFUNDED
    assert state.returns[0].state == "REFUNDED" and state.returns[0].refund_amount == 20
    assert payments_of(engine, order_id)["CAPTURE"] == 40
    with pytest.raises(
        UserError, match=r"is already refunded \(20.00 EUR\); nothing left to receive"
    ):
        await receive_return(client, rma.rma_id)
    with pytest.raises(UserError, match="SKU T-X was not delivered"):
        await request_return(client, order_id, ReturnRequest(lines={"T-X": 1}, reason="?"))


@pytest.mark.settings(return_window="3s")
async def test_the_return_window_closes_and_the_order_finishes(
    client: Client, worker: Settings, engine: Engine
) -> None:
    order_id, keep, _ = await delivered(client, worker, engine)
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    await handle.result()  # the workflow ends once the window has closed
    with pytest.raises(UserError, match="COMPLETED and closed for changes"):
        await request_return(client, order_id, ReturnRequest(lines={keep: 1}, reason="late"))


async def test_returns_before_delivery_are_refused(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 3})
    order = make_order({sku: 1})
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    with pytest.raises(UserError, match="returns open once the order is delivered"):
        await request_return(client, order.order_id, ReturnRequest(lines={sku: 1}, reason="x"))


async def received_return(client: Client, settings: Settings, engine: Engine) -> tuple[str, str]:
    """A completed order of 2 units with 1 unit returned and received: (sku, rma id)."""
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    await orders.place(client, settings, order)
    await ship_and_deliver(client, order.order_id)
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    rma = await request_return(client, order.order_id, ReturnRequest(lines={sku: 1}, reason="x"))
    await receive_return(client, rma.rma_id)
    return sku, rma.rma_id
