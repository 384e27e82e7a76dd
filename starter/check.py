"""`orderflow check`: the invariant audit over the read model and Temporal (fsck for orders)."""

import asyncio
import re
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowExecution, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import Replayer

from activities.db.models import OrderRecord
from activities.invariants import Violation, check_database, exceptions
from domain.state import OrderState
from starter.orders import runs_by_order
from workers.settings import Settings
from workflows import search

FAILURE_MESSAGE = re.compile(r'message: "((?:[^"\\]|\\.)*)"')
"""The SDK's failure, inside the replayer's debug text of it."""

# A workflow task that failed this often in a row is not a blip: the order is wedged.
FAILING_TASK_ATTEMPTS = 2


async def check_orders(
    client: Client,
    settings: Settings,
    engine: Engine,
    *,
    task_queue: str | None = None,
    replay: bool = False,
) -> dict[str, Any]:
    """Every rule; {"ok", "violations": [...], "exceptions": [...], "checked": {...}}.

    `task_queue` limits the audit to the orders started on it (a test's own orders).
    `replay`: also replay each order's latest run with this code, as a worker would after a
    restart or to answer a query (a history it cannot replay wedges the order then).
    """
    replayer = _replayer(client) if replay else None
    temporal, checked, scope = await _check_workflows(client, engine, task_queue, replayer)
    violations = await asyncio.to_thread(
        check_database, engine, settings.approval_manager_threshold, scope
    )
    found = violations + temporal
    waiting = await asyncio.to_thread(exceptions, engine, scope)
    return {
        "ok": not found,
        "violations": [v.model_dump() for v in found],
        "exceptions": [v.model_dump() for v in waiting],
        "checked": checked,
    }


async def _check_workflows(
    client: Client, engine: Engine, task_queue: str | None, replayer: Replayer | None
) -> tuple[list[Violation], dict[str, int], set[str] | None]:
    """The read model's status matches each closed workflow's result; no running order has a
    failing workflow task; with a `replayer`, this code replays each history. Only the latest
    run of each order counts."""
    statuses = await asyncio.to_thread(_read_model_statuses, engine)
    query = "WorkflowType = 'OrderWorkflow'"
    if task_queue:
        query += f" AND TaskQueue = '{task_queue}'"
    latest = {wid: runs[0] for wid, runs in (await runs_by_order(client, query)).items()}
    found: list[Violation] = []
    running = closed = 0
    for workflow_id, execution in sorted(latest.items()):
        order_id = search.order_id_of(workflow_id)
        if replayer is not None:
            found += await _replays(client, replayer, execution, order_id)
        if execution.status == WorkflowExecutionStatus.RUNNING:
            running += 1
            found += await _failing_task(client, workflow_id, order_id)
            continue
        closed += 1
        if execution.status != WorkflowExecutionStatus.COMPLETED:
            ended = execution.status.name if execution.status else "?"
            found.append(
                Violation(
                    order_id=order_id,
                    rule="workflow-completed",
                    detail=f"workflow ended {ended} instead of completing",
                )
            )
            continue
        handle = client.get_workflow_handle(
            workflow_id, run_id=execution.run_id, result_type=OrderState
        )
        final: OrderState = await handle.result()
        if statuses.get(order_id) != final.status.value:
            found.append(
                Violation(
                    order_id=order_id,
                    rule="status-matches",
                    detail=f"workflow ended {final.status.value}, read model says "
                    f"{statuses.get(order_id, 'nothing')}",
                )
            )
    scope = {search.order_id_of(w) for w in latest} if task_queue else None
    orders = len(scope) if scope is not None else len(statuses)
    return found, {"orders": orders, "running": running, "closed": closed}, scope


async def _failing_task(client: Client, workflow_id: str, order_id: str) -> list[Violation]:
    described = (await client.get_workflow_handle(workflow_id).describe()).raw_description
    task = described.pending_workflow_task
    if described.HasField("pending_workflow_task") and task.attempt >= FAILING_TASK_ATTEMPTS:
        return [
            Violation(
                order_id=order_id,
                rule="no-failing-task",
                detail=f"workflow task failing (attempt {task.attempt})",
            )
        ]
    return []


def _replayer(client: Client) -> Replayer:
    """Replays as the workers run: the same workflow code, converter and runner."""
    from temporalio.worker import UnsandboxedWorkflowRunner

    from workflows.order import OrderWorkflow

    return Replayer(
        workflows=[OrderWorkflow],
        data_converter=client.data_converter,
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


async def _replays(
    client: Client, replayer: Replayer, execution: WorkflowExecution, order_id: str
) -> list[Violation]:
    handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
    try:
        history = await handle.fetch_history()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:  # gone since the listing (retention)
            return []
        raise
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    if result.replay_failure is None:
        return []
    said = str(result.replay_failure)
    why = FAILURE_MESSAGE.search(said)
    return [
        Violation(
            order_id=order_id,
            rule="replays",
            detail="this code cannot replay the order's history: "
            + (why.group(1) if why else said.splitlines()[0])[:300],
        )
    ]


def _read_model_statuses(engine: Engine) -> dict[str, str]:
    with Session(engine) as session:
        return dict(session.execute(select(OrderRecord.order_id, OrderRecord.status)).all())
