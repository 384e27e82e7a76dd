"""What operators see in the Temporal UI: timer names, the order's card and current details,
handler descriptions, and search attributes that are unset (not "") when they say nothing."""

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle

from domain.details import order_card
from domain.holds import ApprovalDecision
from domain.sla import format_duration
from domain.statuses import OrderStatus
from starter import orders
from tests.factories import make_order, new_sku
from workers.codec import data_converter
from workers.settings import Settings
from workflows import search


async def timer_summaries(handle: WorkflowHandle[object, object]) -> list[str]:
    """The summary of every timer the order started, from its history (encrypted like every
    payload: decoded with the session's key)."""
    history = await handle.fetch_history()
    summaries = [
        event.user_metadata.summary
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    return await data_converter(Settings()).decode(summaries, [str] * len(summaries))


async def settled_timers(handle: WorkflowHandle[object, object], count: int) -> list[str]:
    """The timer summaries once `count` timers are in the history (a query can answer
    before the workflow task that starts the timer is recorded)."""
    for _ in range(50):
        summaries = await timer_summaries(handle)
        if len(summaries) >= count:
            return summaries
        await asyncio.sleep(0.2)
    return summaries


async def metadata(handle: WorkflowHandle[object, object]) -> WorkflowMetadata:
    result: WorkflowMetadata = await handle.query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    return result


async def until_details(handle: WorkflowHandle[object, object], text: str) -> str:
    for _ in range(100):
        details = (await metadata(handle)).current_details
        if text in details:
            return details
        await asyncio.sleep(0.2)
    raise AssertionError(f"current details never said {text!r}: {details}")


async def test_an_order_waiting_for_approval_names_its_timer_and_says_for_whom(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00", submitted_by="j.buyer")
    handle = await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)

    details = await until_details(handle, "approval SLA")
    assert "**AWAITING_APPROVAL** · stage APPROVAL" in details
    assert "- **waiting for** approval by a manager-tier approver (AMOUNT hold)" in details
    assert "- **timer** approval SLA: escalate after 4h" in details
    assert "- **since** 20" in details
    assert await settled_timers(handle, 1) == ["approval SLA: escalate after 4h"]

    described = await handle.describe()
    assert await described.static_details() == order_card(order)
    assert f"{sku} x 6 @ 1000.00 EUR" in (await described.static_details() or "")
    assert await described.static_summary() == (
        f"web order {order.order_id} for C-WEB-001: goods net 6000.00 EUR"
    )
    assert described.typed_search_attributes.get(search.AWAITING_APPROVER) == "manager"

    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    details = await until_details(handle, "ship notice from the warehouse")
    shipping = f"shipping SLA: escalate after {format_duration(timedelta(hours=24))}"
    assert f"- **timer** {shipping}" in details
    # The tier is unset, not "": it reads back as missing, and `list` shows None.
    described = await handle.describe()
    assert search.AWAITING_APPROVER not in described.typed_search_attributes
    rows: list[dict[str, object]] = []
    for _ in range(100):  # visibility follows the order's own state by a moment
        rows = [  # every order of the session's server: the limit keeps the oldest
            r
            for r in await orders.list_orders(client, OrderStatus.AWAITING_SHIPMENT, 10**6)
            if r["order_id"] == order.order_id
        ]
        if rows:
            break
        await asyncio.sleep(0.1)
    assert rows and rows[0]["awaiting_tier"] is None
    assert await settled_timers(handle, 2) == [
        "approval SLA: escalate after 4h",
        shipping,
    ]


@pytest.mark.settings(approval_escalate_after="1s")
async def test_an_escalated_order_shows_its_level_and_the_director(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00")
    handle = await orders.place(client, worker, order)
    details = await until_details(handle, "approval by a director-tier approver (AMOUNT hold)")
    assert "- **escalation level** 1" in details
    expiry = f"approval SLA: auto-reject after {format_duration(timedelta(hours=48))}"
    assert f"- **timer** {expiry}" in details
    assert await settled_timers(handle, 2) == ["approval SLA: escalate after 1s", expiry]
    described = await handle.describe()
    assert described.typed_search_attributes.get(search.ESCALATION_LEVEL) == 1
    assert described.typed_search_attributes.get(search.AWAITING_APPROVER) == "director"


async def test_every_handler_says_what_it_is_for_and_the_internal_one_says_so(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20})
    order = make_order({sku: 1})
    handle = await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    definition = (await metadata(handle)).definition
    assert definition.type == "OrderWorkflow"
    handlers = {
        d.name: d.description
        for d in [
            *definition.update_definitions,
            *definition.signal_definitions,
            *definition.query_definitions,
        ]
        if not d.name.startswith("__")  # the SDK's own queries
    }
    assert set(handlers) >= {
        "approve",
        "approve_signal",
        "reject",
        "edit",
        "cancel",
        "request_return",
        "receive_return",
        "inspect_return",
        "ship",
        "deliver",
        "lost",
        "stock_arrived",
        "status",
    }
    assert all(handlers.values()), [name for name, text in handlers.items() if not text]
    internal = sorted(name for name, text in handlers.items() if text.startswith("internal:"))
    assert internal == ["stock_arrived"]
    assert "orderflow restock" in handlers["stock_arrived"]
