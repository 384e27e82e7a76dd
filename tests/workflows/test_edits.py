"""Customer edits before fulfilment: an Update whose validator knows when it is too late."""

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import OrderLineRecord, OrderRecord
from domain.commands import OrderEdit
from domain.holds import ApprovalDecision
from domain.order import Address
from domain.statuses import OrderStatus
from starter import orders
from starter.orders import UserError
from tests.factories import ADDRESSES, make_order, new_sku, stock_of
from workers.settings import Settings


async def test_an_edit_on_hold_is_validated_again_and_may_clear_the_hold(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00")  # 6000: a manager must approve
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)

    answer = await orders.edit(client, order.order_id, OrderEdit(lines={sku: 4}, by="buyer"))
    assert answer.startswith("edited")
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.total == 4000 and not state.holds  # 4000: below the approval threshold
    assert stock_of(engine, sku) == {"AMS": (20, 4)}
    with Session(engine) as session:
        record = session.get(OrderRecord, order.order_id)
        assert record is not None and record.total == 4000
        quantities = list(
            session.scalars(
                select(OrderLineRecord.quantity).where(OrderLineRecord.order_id == order.order_id)
            )
        )
        assert quantities == [4]


async def test_edits_are_refused_once_stock_is_held_or_when_they_make_no_sense(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00")
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    bad_address = Address.model_validate({**ADDRESSES["NL"], "postal_code": "ABC"})
    refusals = {
        "would remove every line": OrderEdit(lines={sku: 0}),
        "is not on this order": OrderEdit(lines={"T-NOPE": 1}),
        "postal code 'ABC' is not valid for NL": OrderEdit(ship_to=bad_address),
        "changes nothing": OrderEdit(),
    }
    for message, change in refusals.items():
        with pytest.raises(UserError, match=message):
            await orders.edit(client, order.order_id, change)

    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    with pytest.raises(UserError, match="edits are possible until the order is approved"):
        await orders.edit(client, order.order_id, OrderEdit(lines={sku: 1}))
    assert (await orders.state_of(client, order.order_id)).lines[0]["quantity"] == 6
