"""Fifty orders through Temporal at once for ten units: exactly ten are held, none oversold."""

import asyncio

from sqlalchemy import Engine
from temporalio.client import Client

from domain.statuses import FulfilmentPolicy, OrderStatus
from starter import orders
from tests.factories import make_order, new_sku, stock_of
from workers.settings import Settings


async def test_fifty_orders_at_once_for_ten_units(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 6, "FRA": 4})
    placed = [make_order({sku: 1}, fulfilment_policy=FulfilmentPolicy.REJECT) for _ in range(50)]
    await asyncio.gather(*(orders.place(client, worker, order) for order in placed))
    states = await asyncio.gather(
        *(
            orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 120)
            for order in placed
        )
    )
    held = [s for s in states if s.status == OrderStatus.AWAITING_SHIPMENT]
    refused = [s for s in states if s.status == OrderStatus.REJECTED]
    assert len(held) == 10 and len(refused) == 40
    assert all("OutOfStock" in (s.reason or "") for s in refused)
    assert stock_of(engine, sku) == {"AMS": (6, 6), "FRA": (4, 4)}
