"""Client operations on orders: place, wait, notify shipments, cancel, status, list."""

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.client import (
    Client,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from domain.commands import (
    CancelRequest,
    CommandRefused,
    OrderEdit,
    ShipmentNotice,
    pick_shipment,
)
from domain.details import order_card
from domain.holds import ApprovalDecision, RejectionDecision
from domain.order import Order
from domain.state import OrderState
from domain.statuses import OrderStatus, has_reached
from workers.settings import Settings, get_settings
from workflows import search
from workflows.order import OrderWorkflow

NO_ANSWER = "no answer in time; is a worker running (orderflow worker)?"


async def answer_within(call: Any) -> Any:
    """Wait for a workflow's answer at most ORDERFLOW_ANSWER_TIMEOUT (the request itself stays
    queued in Temporal and is applied when a worker comes back)."""
    return await asyncio.wait_for(call, get_settings().answer_timeout.total_seconds())


class UserError(Exception):
    """A mistake the user can fix; shown as one line, exit code 1."""


class UnknownOrder(UserError):
    """Temporal has no workflow for this order (never placed, or past retention)."""


async def place(
    client: Client, settings: Settings, order: Order, *, existing_ok: bool = False
) -> WorkflowHandle[Any, Any]:
    """Start the order's workflow; a second start with the same order id is refused, unless
    `existing_ok` (the intake, which has claimed the order's reference: a start that finds
    the workflow running or closed means it was started already, it is the same order)."""
    try:
        return await client.start_workflow(
            OrderWorkflow.run,
            order,
            id=search.workflow_id(order.order_id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            id_conflict_policy=(
                WorkflowIDConflictPolicy.USE_EXISTING
                if existing_ok
                else WorkflowIDConflictPolicy.FAIL
            ),
            search_attributes=TypedSearchAttributes(
                [
                    SearchAttributePair(search.ORDER_STATUS, OrderStatus.RECEIVED.value),
                    SearchAttributePair(search.CUSTOMER_ID, order.customer_id),
                    SearchAttributePair(search.ORDER_CHANNEL, order.channel.value),
                    SearchAttributePair(search.ORDER_TOTAL, float(order.total)),
                    SearchAttributePair(search.ESCALATION_LEVEL, 0),
                    SearchAttributePair(search.PLACED_AT, datetime.now(UTC)),
                ]
            ),
            static_summary=(
                f"{order.channel.value} order {order.order_id} for "
                f"{order.customer_id}: goods net {order.total} {order.currency}"
            ),
            static_details=order_card(order),
        )
    except WorkflowAlreadyStartedError:
        if existing_ok:  # closed already: the same order
            return client.get_workflow_handle(search.workflow_id(order.order_id))
        raise UserError(f"order {order.order_id} already exists; order ids are used once") from None


async def state_of(client: Client, order_id: str) -> OrderState:
    """The workflow's own view of the order (running or closed)."""
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    try:
        state: OrderState = await handle.query(OrderWorkflow.status)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise UnknownOrder(f"unknown order {order_id}") from None
        raise
    return state


async def wait_for(
    client: Client, order_id: str, stage: OrderStatus, timeout: float = 60
) -> OrderState:
    """Poll until the order reaches `stage` (or closes); raise UserError on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        state = await state_of(client, order_id)
        if has_reached(state.status, stage):
            return state
        if time.monotonic() > deadline:
            raise UserError(
                f"order {order_id} is {state.status.value}, not {stage.value} after {timeout:.0f}s"
            )
        await asyncio.sleep(0.25)


async def notify_shipment(
    client: Client, order_id: str, kind: str, shipment_id: str | None, by: str
) -> str:
    """Send a ship or deliver notice after checking it makes sense now; returns the shipment."""
    state = await state_of(client, order_id)
    if kind == "ship":
        candidates = {s.shipment_id: s.shipped for s in state.shipments}
    elif kind == "lost":
        candidates = {s.shipment_id: s.delivered or s.lost for s in state.shipments if s.shipped}
    else:
        # A delivery may be reported before its ship notice (carriers' webhooks race).
        candidates = {s.shipment_id: s.delivered for s in state.shipments}
    if state.status.is_final:
        raise UserError(f"order {order_id} is {state.status.value}")
    try:
        chosen = pick_shipment(
            ShipmentNotice(shipment_id=shipment_id),
            candidates,
            kind,
            {"ship": "shipped", "deliver": "delivered", "lost": "closed"}[kind],
        )
    except CommandRefused as refused:
        raise UserError(f"order {order_id}: {refused}") from None
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    await handle.signal(kind, ShipmentNotice(shipment_id=chosen, by=by))
    return chosen


async def decide(client: Client, order_id: str, update: Any, decision: Any) -> Any:
    """Send a decision as an Update: the caller hears at once whether it was accepted."""
    state = await state_of(client, order_id)  # unknown order: a clear error
    if state.status.is_final:
        raise UserError(f"order {order_id} is already {state.status.value}")
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    try:
        answer = await answer_within(handle.execute_update(update, decision))
    except TimeoutError:
        raise UserError(f"order {order_id}: {NO_ANSWER}") from None
    except WorkflowUpdateFailedError as error:
        cause = error.cause
        raise UserError(f"order {order_id}: {getattr(cause, 'message', cause)}") from None
    except RPCError as error:
        if "already completed" in error.message:
            raise UserError(
                f"order {order_id} is {state.status.value} and closed for changes "
                "(its return window has ended)"
            ) from None
        raise UserError(f"order {order_id}: {error.message}") from None
    return answer


async def cancel(client: Client, order_id: str, reason: str, by: str) -> str:
    """Ask the order to cancel; refused with the workflow's reason when too late."""
    answer: str = await decide(
        client, order_id, OrderWorkflow.cancel, CancelRequest(reason=reason, by=by)
    )
    return answer


async def edit(client: Client, order_id: str, change: OrderEdit) -> str:
    """Change quantities / address before stock is held; refused with the reason after."""
    answer: str = await decide(client, order_id, OrderWorkflow.edit, change)
    return answer


async def approve(client: Client, order_id: str, decision: ApprovalDecision) -> str:
    """Release a hold (or every hold the approver may release)."""
    answer: str = await decide(client, order_id, OrderWorkflow.approve, decision)
    return answer


async def reject(client: Client, order_id: str, decision: RejectionDecision) -> str:
    """Reject an order waiting for approval."""
    answer: str = await decide(client, order_id, OrderWorkflow.reject, decision)
    return answer


async def list_orders(
    client: Client, status: OrderStatus | None = None, limit: int = 100, page_size: int = 1000
) -> list[dict[str, Any]]:
    """Orders from the visibility store (search attributes), oldest first, one row each.

    Pages through every match before sorting, so the oldest order is never missed. A reset
    or continue-as-new leaves earlier runs of the same order behind: only its latest run
    counts (with a status filter, a stale earlier run is checked against the latest one).
    """
    query = "WorkflowType = 'OrderWorkflow'"
    if status is not None:
        query += f" AND OrderStatus = '{status.value}'"
    runs = await runs_by_order(client, query, page_size)
    latest = {wid: found[0] for wid, found in runs.items()}
    placed = {
        wid: min(r.typed_search_attributes.get(search.PLACED_AT) or r.start_time for r in found)
        for wid, found in runs.items()
    }
    if status is not None:
        await _drop_superseded(client, latest)
    rows = [_row(execution, placed[wid]) for wid, execution in latest.items()]
    rows.sort(key=lambda row: row["started_at"])
    return rows[:limit]


async def runs_by_order(
    client: Client, query: str, page_size: int = 1000
) -> dict[str, list[WorkflowExecution]]:
    """Every run that matches `query` (all pages), by workflow id, the latest run first."""
    runs: dict[str, list[WorkflowExecution]] = {}
    async for execution in client.list_workflows(query, page_size=page_size):
        runs.setdefault(execution.id, []).append(execution)
    for found in runs.values():
        found.sort(key=lambda r: r.start_time, reverse=True)
    return runs


SUPERSEDED = (WorkflowExecutionStatus.TERMINATED, WorkflowExecutionStatus.CONTINUED_AS_NEW)
"""How a run ends when a newer run of its order replaces it: a reset, a continue-as-new."""


async def _drop_superseded(client: Client, latest: dict[str, WorkflowExecution]) -> None:
    """Drop runs that a newer run of the same order replaced (one describe each)."""
    for wid, execution in list(latest.items()):
        if execution.status not in SUPERSEDED:
            continue
        current = await client.get_workflow_handle(wid).describe()
        if current.run_id != execution.run_id:
            del latest[wid]


def _row(execution: WorkflowExecution, placed_at: datetime) -> dict[str, Any]:
    attrs = execution.typed_search_attributes
    return {
        "order_id": search.order_id_of(execution.id),
        "status": attrs.get(search.ORDER_STATUS),
        "customer_id": attrs.get(search.CUSTOMER_ID),
        "channel": attrs.get(search.ORDER_CHANNEL),
        "total": _money(attrs.get(search.ORDER_TOTAL)),
        "escalation_level": attrs.get(search.ESCALATION_LEVEL) or 0,
        "awaiting_tier": attrs.get(search.AWAITING_APPROVER) or None,
        "running": execution.status == WorkflowExecutionStatus.RUNNING,
        "started_at": placed_at.astimezone(UTC).isoformat(),
        "source": "temporal",
    }


def _money(value: float | None) -> str | None:
    # Visibility stores totals as doubles; show them as the decimal strings we use elsewhere.
    return None if value is None else f"{value:.2f}"
