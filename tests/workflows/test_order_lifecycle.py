"""The order lifecycle on a real dev server, a real worker and a real database (both kinds)."""

import asyncio

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import Invoice, OrderRecord
from domain.commands import ShipmentNotice
from domain.holds import ApprovalDecision, HoldType, RejectionDecision, Tier
from domain.statuses import OrderStatus
from starter import orders
from starter.orders import UserError
from tests.factories import live_labels, make_order, new_sku, payments_of, steps_of, stock_of
from workers.settings import Settings
from workflows import search


async def ship_and_deliver(client: Client, order_id: str, only_pending: bool = False) -> None:
    state = await orders.wait_for(client, order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    parcels = [s for s in state.shipments if not (only_pending and s.shipped)]
    for shipment in parcels:
        await orders.notify_shipment(client, order_id, "ship", shipment.shipment_id, "wms")
    await orders.wait_for(client, order_id, OrderStatus.SHIPPED, 30)
    for shipment in parcels:
        await orders.notify_shipment(client, order_id, "deliver", shipment.shipment_id, "dhl")


async def test_order_goes_from_placement_to_invoice(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20, "MAD": 20})
    order = make_order({sku: 3})
    await orders.place(client, worker, order)
    await ship_and_deliver(client, order.order_id)
    state = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)

    assert state.status == OrderStatus.COMPLETED
    assert [e.status for e in state.events] == [
        OrderStatus.VALIDATED,
        OrderStatus.RESERVED,
        OrderStatus.ROUTED,
        OrderStatus.AWAITING_SHIPMENT,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    ]
    assert state.shipments[0].warehouse == "AMS"  # nearest to Amsterdam with stock
    assert stock_of(engine, sku) == {"AMS": (17, 0), "MAD": (20, 0)}
    assert live_labels(engine, order.order_id) == 1
    assert payments_of(engine, order.order_id) == {"AUTHORIZE": 30, "CAPTURE": 30}
    assert steps_of(engine, order.order_id) == [
        "received",
        "validated",
        "reserve-0",
        "routed",
        "booked",
        "shipped",
        "delivered",
        "captured",
    ]
    with Session(engine) as session:
        record = session.get(OrderRecord, order.order_id)
        assert record is not None and record.status == "COMPLETED"
        assert record.routing and record.routing["allocations"][0]["warehouse"] == "AMS"
        assert session.query(Invoice).filter_by(order_id=order.order_id).one().amount == 30


async def test_notices_that_arrive_while_a_step_runs_are_not_lost(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """Ship and deliver back to back: the deliver lands while goods-out is still running."""
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 2})
    await orders.place(client, worker, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    handle = client.get_workflow_handle(search.workflow_id(order.order_id))
    notice = ShipmentNotice(shipment_id=state.shipments[0].shipment_id, by="wms")
    await handle.signal("ship", notice)
    await handle.signal("deliver", notice.model_copy(update={"by": "carrier"}))
    await handle.signal("deliver", notice.model_copy(update={"by": "carrier"}))  # a repeat
    done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert [e.status for e in done.events][-3:] == [
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
    ]
    assert stock_of(engine, sku) == {"AMS": (3, 0)}
    assert steps_of(engine, order.order_id)[-3:] == ["shipped", "delivered", "captured"]


async def test_the_same_order_id_is_refused_a_second_time(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 1})
    await orders.place(client, worker, order)
    with pytest.raises(UserError, match="already exists"):
        await orders.place(client, worker, order)


async def test_invalid_order_is_rejected_with_every_reason(
    client: Client, worker: Settings, engine: Engine
) -> None:
    order = make_order({"NOPE-1": 1}, customer="C-NOBODY")
    await orders.place(client, worker, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.REJECTED, 30)
    assert state.status == OrderStatus.REJECTED
    assert "unknown SKU NOPE-1" in (state.reason or "")
    assert "unknown customer C-NOBODY" in (state.reason or "")
    with Session(engine) as session:
        record = session.get(OrderRecord, order.order_id)
        assert record is not None and record.status == "REJECTED"


async def test_same_content_under_a_new_id_is_held_as_a_suspected_duplicate(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """A second identical order is not thrown away: a person decides. Released, it ships."""
    sku = new_sku(engine, {"AMS": 5})
    first = make_order({sku: 1})
    again = first.model_copy(update={"order_id": first.order_id + "-x"})
    await orders.place(client, worker, first)
    await orders.wait_for(client, first.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    await orders.place(client, worker, again)
    state = await orders.wait_for(client, again.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    [hold] = state.holds
    assert hold.type == HoldType.DUPLICATE and hold.tier == Tier.REVIEW
    assert f"as order {first.order_id}" in hold.reason
    assert stock_of(engine, sku) == {"AMS": (5, 1)}  # nothing held for the suspect yet

    await orders.approve(client, again.order_id, ApprovalDecision(by="rob.review"))
    state = await orders.wait_for(client, again.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.status == OrderStatus.AWAITING_SHIPMENT
    assert stock_of(engine, sku) == {"AMS": (5, 2)}


async def test_copies_placed_at_once_let_exactly_one_through(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """A double-clicked checkout: five copies at once, one order, four held as duplicates
    of it (rejected by the reviewer: nothing was held for them)."""
    sku = new_sku(engine, {"AMS": 50})
    first = make_order({sku: 1})
    copies = [first.model_copy(update={"order_id": f"{first.order_id}-{n}"}) for n in range(5)]
    await asyncio.gather(*(orders.place(client, worker, copy) for copy in copies))
    ends = [
        await orders.wait_for(client, copy.order_id, OrderStatus.AWAITING_APPROVAL, 60)
        for copy in copies
    ]
    held_ones = [s for s in ends if s.status == OrderStatus.AWAITING_APPROVAL]
    [kept] = [s.order_id for s in ends if s.status != OrderStatus.AWAITING_APPROVAL]
    assert len(held_ones) == 4
    await orders.wait_for(client, kept, OrderStatus.AWAITING_SHIPMENT, 30)
    for held in held_ones:
        assert [h.type for h in held.holds] == [HoldType.DUPLICATE]
        assert f"as order {kept}" in held.holds[0].reason
        why = RejectionDecision(by="rob.review", reason="sent twice")
        await orders.reject(client, held.order_id, why)
        assert (await orders.state_of(client, held.order_id)).status == OrderStatus.REJECTED
    assert stock_of(engine, sku) == {"AMS": (50, 1)}


async def test_split_order_gets_one_label_per_warehouse(
    client: Client, worker: Settings, engine: Engine
) -> None:
    a = new_sku(engine, {"AMS": 5})
    b = new_sku(engine, {"FRA": 5})
    order = make_order({a: 2, b: 1})  # C-WEB-001 ships when available: split allowed
    await orders.place(client, worker, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert sorted(s.warehouse for s in state.shipments) == ["AMS", "FRA"]
    assert len({s.tracking_number for s in state.shipments}) == 2
    assert live_labels(engine, order.order_id) == 2
    # one parcel shipped is not the order shipped
    await orders.notify_shipment(
        client, order.order_id, "ship", state.shipments[0].shipment_id, "wms"
    )
    with pytest.raises(UserError, match="already shipped"):
        await orders.notify_shipment(
            client, order.order_id, "ship", state.shipments[0].shipment_id, "wms"
        )
    await ship_and_deliver_rest(client, order.order_id)
    final = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert final.status == OrderStatus.COMPLETED
    assert stock_of(engine, a) == {"AMS": (3, 0)} and stock_of(engine, b) == {"FRA": (4, 0)}


async def ship_and_deliver_rest(client: Client, order_id: str) -> None:
    state = await orders.state_of(client, order_id)
    for s in state.shipments:
        if not s.shipped:
            await orders.notify_shipment(client, order_id, "ship", s.shipment_id, "wms")
    await orders.wait_for(client, order_id, OrderStatus.SHIPPED, 30)
    for s in state.shipments:
        await orders.notify_shipment(client, order_id, "deliver", s.shipment_id, "carrier")


@pytest.mark.settings(carriers_down="PARCELCO")
async def test_failed_carrier_falls_back_to_the_next_quote(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 5})
    order = make_order({sku: 1})
    await orders.place(client, worker, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    shipment = state.shipments[0]
    assert shipment.carrier != "PARCELCO"
    assert any("PARCELCO" in failure for failure in shipment.failed_carriers)
    assert live_labels(engine, order.order_id) == 1
