"""Orders that live for weeks: the return window runs in fresh, small runs of the workflow."""

import asyncio
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from sqlalchemy import Engine
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Replayer, Worker

from domain.order import Order
from domain.policy import SlaPolicy
from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.state import ContinuedOrder, OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.returns import inspect_return, receive_return, request_return
from tests.factories import make_order, new_sku, payments_of
from tests.gates import assert_invariants
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings
from workers.worker import build_activities
from workflows import search, versions
from workflows.order import OrderWorkflow

UNITS = 4


async def runs_of(
    client: Client, order_id: str
) -> list[tuple[WorkflowExecutionStatus | None, int]]:
    """Each run of the order's workflow, oldest first: its status and history length."""
    found = []
    async for run in client.list_workflows(f"WorkflowId = '{search.workflow_id(order_id)}'"):
        handle = client.get_workflow_handle(run.id, run_id=run.run_id)
        history = await handle.fetch_history()
        found.append((run.start_time, run.status, len(history.events)))
    return [(status, events) for _, status, events in sorted(found, key=lambda r: r[0])]


async def test_a_fully_returned_order_lives_in_small_runs(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    order = make_order({sku: UNITS})
    await orders.place(client, worker, order)
    await ship_and_deliver(client, order.order_id)
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)

    for n in range(UNITS):  # one unit at a time: each RMA is three messages and a refund
        rma = await request_return(
            client, order.order_id, ReturnRequest(lines={sku: 1}, reason=f"unit {n + 1}")
        )
        await receive_return(client, rma.rma_id)
        line = InspectionLine(sku=sku, quantity=1, disposition=Disposition.RESTOCK)
        await inspect_return(client, InspectionRequest(rma_id=rma.rma_id, lines=[line]))

    state = await orders.state_of(client, order.order_id)
    assert state.status == OrderStatus.REFUNDED and len(state.returns) == UNITS
    assert all(r.state == "REFUNDED" for r in state.returns)
    refunded = sum((r.refund_amount or Decimal(0) for r in state.returns), Decimal(0))
    assert refunded == order.total == payments_of(engine, order.order_id)["CAPTURE"]
    assert state.events[0].what == "validated"  # the audit trail came along

    runs = await runs_of(client, order.order_id)
    print(f"\nruns of a fully returned order ({UNITS} RMAs), events each: {runs}")
    *earlier, (latest_status, _) = runs
    assert latest_status == WorkflowExecutionStatus.RUNNING
    assert all(status == WorkflowExecutionStatus.CONTINUED_AS_NEW for status, _ in earlier)
    assert len(earlier) >= 2  # at invoicing, and again when Temporal suggested it
    assert max(events for _, events in runs[1:]) < 100

    # Earlier runs keep the status they had when they continued as new: `list` shows the order
    # once, as its latest run says (visibility is updated asynchronously: poll a moment).
    def mine(rows: list[dict[str, object]]) -> list[object]:
        return [r["status"] for r in rows if r["order_id"] == order.order_id]

    for _ in range(50):
        refunded = mine(await orders.list_orders(client, OrderStatus.REFUNDED, limit=10**6))
        if refunded == ["REFUNDED"]:
            break
        await asyncio.sleep(0.1)
    assert refunded == ["REFUNDED"]
    assert mine(await orders.list_orders(client, OrderStatus.COMPLETED, limit=10**6)) == []
    assert mine(await orders.list_orders(client, limit=10**6)) == ["REFUNDED"]
    await assert_invariants(client, worker, engine)


@workflow.defn(name="OrderWorkflow", sandboxed=False)
class OrderWorkflowBeforeTheFreshRun(OrderWorkflow):
    """The workflow as it was before "returns-in-a-fresh-run": the window in the same run."""

    @workflow.init
    def __init__(self, placed: Order | ContinuedOrder) -> None:
        super().__init__(placed)

    @workflow.run
    async def run(self, placed: Order | ContinuedOrder) -> OrderState:
        return await super().run(placed)

    async def _open_returns(self, sla: SlaPolicy) -> None:
        await self._returns.stay_open(sla, lambda: False)


def worker_running(client: Client, settings: Settings, engine: Engine, cls: type) -> Worker:
    """A worker with one version of the order workflow (and today's activities)."""
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[cls],
        activities=build_activities(settings, engine, client),
        activity_executor=ThreadPoolExecutor(4),
    )


@pytest.mark.settings(return_window="8s")
async def test_an_order_invoiced_before_the_change_finishes_on_the_new_code(
    client: Client, settings: Settings, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    order = make_order({sku: 2})
    # That code was also older than "patches-decided-at-start": each patch asked where it is
    # used (the worker runs in this process, so its module is this one).
    monkeypatch.setattr(versions, "decide_at_start", lambda: None)
    monkeypatch.setattr(versions, "patched", workflow.patched)
    async with worker_running(client, settings, engine, OrderWorkflowBeforeTheFreshRun):
        await orders.place(client, settings, order)
        await ship_and_deliver(client, order.order_id)
        await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    monkeypatch.undo()

    # The new code takes over a run that entered its return window under the old code: it
    # replays it through the unpatched branch and goes on in the same run.
    async with worker_running(client, settings, engine, OrderWorkflow):
        rma = await request_return(
            client, order.order_id, ReturnRequest(lines={sku: 1}, reason="x")
        )
        await receive_return(client, rma.rma_id)
        line = InspectionLine(sku=sku, quantity=1, disposition=Disposition.RESTOCK)
        refund = await inspect_return(client, InspectionRequest(rma_id=rma.rma_id, lines=[line]))
        handle = client.get_workflow_handle(search.workflow_id(order.order_id))
        final = await client.get_workflow_handle(handle.id, result_type=OrderState).result()
    assert refund.amount == Decimal("10.00") and final.status == OrderStatus.REFUNDED
    runs = await runs_of(client, order.order_id)
    assert [status for status, _ in runs] == [WorkflowExecutionStatus.COMPLETED]
    history = await handle.fetch_history()
    await Replayer(workflows=[OrderWorkflow], data_converter=client.data_converter).replay_workflow(
        history
    )
