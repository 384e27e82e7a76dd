"""SLA timers of every waiting stage, with second-long durations on the real dev server."""

import asyncio

import pytest
from sqlalchemy import Engine
from temporalio.client import Client

from domain.holds import ApprovalDecision
from domain.statuses import OrderStatus
from starter import orders
from tests.factories import make_order, new_sku, stock_of, until
from tests.workflows.test_returns import received_return
from workers.settings import Settings


def big_order(engine: Engine) -> tuple[str, object]:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    return sku, make_order({sku: 6}, price="1000.00")


@pytest.mark.settings(
    approval_escalate_after="1s", approval_expire_after="2s", approval_expire_action="cancel"
)
async def test_expired_approval_can_auto_cancel(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku, order = big_order(engine)
    await orders.place(client, worker, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 30)
    assert state.status == OrderStatus.CANCELLED
    assert "auto-cancelled" in (state.reason or "") and state.escalation_level == 1
    assert stock_of(engine, sku) == {"AMS": (20, 0)}


@pytest.mark.settings(
    approval_escalate_after="1s", approval_expire_after="2s", approval_expire_action="alert"
)
async def test_expired_approval_can_alert_and_keep_waiting(
    client: Client, worker: Settings, engine: Engine
) -> None:
    _, order = big_order(engine)
    await orders.place(client, worker, order)
    state = await until(client, order.order_id, lambda s: s.escalation_level >= 2)
    assert state.status == OrderStatus.AWAITING_APPROVAL
    await asyncio.sleep(1.5)  # alerted once: no further escalation
    assert (await orders.state_of(client, order.order_id)).escalation_level == 2
    await orders.approve(client, order.order_id, ApprovalDecision(by="dirk.director"))
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)


@pytest.mark.settings(ship_escalate_after="1s")
async def test_a_parcel_not_shipped_in_time_escalates(
    client: Client, worker: Settings, engine: Engine
) -> None:
    order = make_order({new_sku(engine, {"AMS": 5}): 1})
    await orders.place(client, worker, order)
    state = await until(client, order.order_id, lambda s: s.escalation_level >= 1)
    assert state.status == OrderStatus.AWAITING_SHIPMENT
    assert any(e.what.startswith("SLA breached: no ship notice") for e in state.events)


@pytest.mark.settings(refund_escalate_after="1s")
async def test_a_received_return_not_refunded_in_time_escalates(
    client: Client, worker: Settings, engine: Engine
) -> None:
    _sku, rma_id = await received_return(client, worker, engine)
    order_id = rma_id.removeprefix("RMA-").rsplit("-", 1)[0]
    state = await until(client, order_id, lambda s: s.escalation_level >= 1)
    assert any("not refunded within" in e.what for e in state.events)
    assert state.status == OrderStatus.RETURN_RECEIVED
