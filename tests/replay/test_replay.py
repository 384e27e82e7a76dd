"""Determinism: OrderWorkflow replays the histories of real orders, live ones and recorded ones.

The recorded (golden) histories in `histories/` are orders run by an earlier version of the
workflow (completed, cancelled and approved: the returns-desk version, c56d578); those in
`histories/stage-table/` by the version with the stage table, whose approvals are audited by
the main loop behind the patch "approval-audited-by-main-loop" (the old ones replay through
its unpatched branch). A change to OrderWorkflow that would break orders already running
makes their replay fail here. When a change is deliberate (and patched with
`workflow.patched`), keep the old files and add new ones:
`ORDERFLOW_WRITE_HISTORIES=<dir> pytest tests/replay -k live` writes completed.json,
cancelled.json and approved.json of the current version into <dir>.
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.client import Client, WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from domain.holds import ApprovalDecision
from domain.order import Order
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from tests.factories import make_order, new_sku
from workers.settings import Settings
from workflows import search
from workflows.order import OrderWorkflow
from workflows.receipt import StockReceiptWorkflow

HISTORIES = Path(__file__).parent / "histories"
GOLDEN = ("completed", "cancelled", "approved")


def replayer(*workflows: type) -> Replayer:
    return Replayer(
        workflows=list(workflows) or [OrderWorkflow, StockReceiptWorkflow],
        data_converter=pydantic_data_converter,
    )


async def replay(histories: list[WorkflowHistory], *workflows: type) -> None:
    """Replay every history; the first nondeterminism (or other failure) is raised."""

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    results = await replayer(*workflows).replay_workflows(each(), raise_on_replay_failure=True)
    assert results.replay_failures == {}


def golden(path: Path) -> WorkflowHistory:
    """A recorded history, under the workflow id of the order in its start event."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    started = history.events[0].workflow_execution_started_event_attributes
    [order] = pydantic_data_converter.payload_converter.from_payloads(
        list(started.input.payloads), [Order]
    )
    return WorkflowHistory(search.workflow_id(order.order_id), history.events)


async def closed(client: Client, order_id: str) -> OrderState:
    handle = client.get_workflow_handle(search.workflow_id(order_id), result_type=OrderState)
    return await asyncio.wait_for(handle.result(), 30)


async def completed_order(client: Client, settings: Settings, engine: Engine) -> str:
    """Placed, shipped, delivered, invoiced; closes when the (short) return window ends."""
    sku = await asyncio.to_thread(new_sku, engine, {"AMS": 10, "MAD": 10})
    order = make_order({sku: 2})
    await orders.place(client, settings, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    for shipment in state.shipments:
        await orders.notify_shipment(client, order.order_id, "ship", shipment.shipment_id, "wms")
    await orders.wait_for(client, order.order_id, OrderStatus.SHIPPED, 30)
    for shipment in state.shipments:
        await orders.notify_shipment(client, order.order_id, "deliver", shipment.shipment_id, "dhl")
    assert (await closed(client, order.order_id)).status == OrderStatus.COMPLETED
    return order.order_id


async def cancelled_order(client: Client, settings: Settings, engine: Engine) -> str:
    """Cancelled once labels were booked: labels, stock and authorisation are undone."""
    sku = await asyncio.to_thread(new_sku, engine, {"FRA": 10})
    order = make_order({sku: 1}, country="DE")
    await orders.place(client, settings, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    await orders.cancel(client, order.order_id, "customer changed their mind", "cs-agent")
    state = await closed(client, order.order_id)
    assert state.status == OrderStatus.CANCELLED and len(state.events) > 4
    return order.order_id


async def approved_order(client: Client, settings: Settings, engine: Engine) -> str:
    """Held for a manager, approved, booked: still running, waiting for the warehouse."""
    sku = await asyncio.to_thread(new_sku, engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00")
    await orders.place(client, settings, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager", note="ok"))
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    return order.order_id


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.settings(return_window="2s")
async def test_live_histories_replay(client: Client, worker: Settings, engine: Engine) -> None:
    ids = await asyncio.gather(
        completed_order(client, worker, engine),
        cancelled_order(client, worker, engine),
        approved_order(client, worker, engine),
    )
    histories = [
        await client.get_workflow_handle(search.workflow_id(i)).fetch_history() for i in ids
    ]
    await replay(histories)

    target = os.environ.get("ORDERFLOW_WRITE_HISTORIES")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        for name, history in zip(GOLDEN, histories, strict=True):
            text = json.dumps(history.to_json_dict(), indent=1) + "\n"
            (Path(target) / f"{name}.json").write_text(text)


@pytest.mark.parametrize(
    "path", sorted(HISTORIES.glob("**/*.json")), ids=lambda p: str(p.relative_to(HISTORIES))
)
async def test_recorded_history_replays(path: Path) -> None:
    history = golden(path)
    assert len(history.events) > 20
    await replay([history])


def test_the_recorded_histories_are_there() -> None:
    assert {f"{name}.json" for name in GOLDEN} <= {p.name for p in HISTORIES.glob("*.json")}


@workflow.defn(name="OrderWorkflow", sandboxed=False)  # the sandbox would re-import pytest
class ReorderedWorkflow:
    """A 'new version' that sleeps before validating: running orders must not accept it."""

    @workflow.run
    async def run(self, order: Order) -> None:
        await workflow.sleep(1)


async def test_an_incompatible_change_fails_the_replay() -> None:
    with pytest.raises(workflow.NondeterminismError):
        await replay([golden(HISTORIES / "completed.json")], ReorderedWorkflow)
