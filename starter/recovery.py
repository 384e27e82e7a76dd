"""Re-drive an order whose step failed for good (README "When an order is stuck").

A step that fails with a non-retryable error the workflow does not expect (a compensation
refused by the gateway, a bug) fails the order's workflow with whatever it held still held.
Once the cause is fixed, `orderflow redrive` resets the workflow to the workflow task that
scheduled the failed step: the new run replays everything before it and runs the step again.
Signals and Updates that arrived after that point are re-applied by Temporal.
"""

import uuid

from temporalio.api.enums.v1 import EventType, ResetReapplyType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.api.workflowservice.v1 import ResetWorkflowExecutionRequest
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from starter.history import local_activity
from starter.orders import UnknownOrder, UserError
from workflows import search

FAILED_STEP = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
}


def _failed_locally(event: HistoryEvent) -> tuple[str, int] | None:
    """A local activity (a database or gateway step) that failed for good: its marker holds
    the failure (non-retryable), and its type in the SDK's bookkeeping."""
    local = local_activity(event)
    if local is None or not local[0].HasField("failure"):
        return None
    marker, facts = local
    cause = marker.failure
    while cause.HasField("cause") and not cause.HasField("application_failure_info"):
        cause = cause.cause
    if not cause.application_failure_info.non_retryable:
        return None  # gave up its quick attempts: the step went on as an ordinary activity
    return str(facts.get("activity_type", "?")), marker.workflow_task_completed_event_id


def failed_step(events: list[HistoryEvent]) -> tuple[str, int]:
    """The last step that failed for good: its activity type and the task to reset to."""
    scheduled: dict[int, HistoryEvent] = {
        e.event_id: e
        for e in events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    for event in reversed(events):
        local = _failed_locally(event)
        if local is not None:
            return local
        attributes = FAILED_STEP.get(event.event_type)
        if attributes is None:
            continue
        step = scheduled[getattr(event, attributes).scheduled_event_id]
        task = step.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        return step.activity_task_scheduled_event_attributes.activity_type.name, task
    raise UserError("no failed step in its history to re-drive")


async def redrive(client: Client, order_id: str, reason: str) -> str:
    """Reset a failed order to the task that scheduled its failed step; returns what ran."""
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    try:
        described = await handle.describe()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise UnknownOrder(f"unknown order {order_id}") from None
        raise
    if described.status != WorkflowExecutionStatus.FAILED:
        raise UserError(
            f"order {order_id}'s workflow is {described.status.name if described.status else '?'}"
            ", not FAILED: nothing to re-drive (see README, When an order is stuck)"
        )
    history = await handle.fetch_history()
    step, task = failed_step(list(history.events))
    response = await client.workflow_service.reset_workflow_execution(
        ResetWorkflowExecutionRequest(
            namespace=client.namespace,
            workflow_execution=described.raw_description.workflow_execution_info.execution,
            reason=f"orderflow redrive: {reason}",
            workflow_task_finish_event_id=task,
            request_id=str(uuid.uuid4()),
            reset_reapply_type=ResetReapplyType.RESET_REAPPLY_TYPE_ALL_ELIGIBLE,
        )
    )
    return f"{step} runs again (new run {response.run_id})"
