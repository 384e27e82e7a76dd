"""How the order workflow calls its activities: timeouts, retries, business failures."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, RetryState
from temporalio.workflow import ActivityCancellationType

from workflows import versions
from workflows.versions import LOCAL_DATABASE_STEPS, LOCAL_FIRST_PATCH

# Typed business failures: the order cannot go on, retrying would not help.
BUSINESS_FAILURES = frozenset(
    {
        "InvalidOrder",
        "DuplicateOrder",
        "OutOfStock",
        "PaymentDeclined",
        "AuthorizationLapsed",
        "RefundExceedsCapture",
    }
)
# Failures raised before the order was accepted end it REJECTED; later ones end it FAILED.
INTAKE_FAILURES = frozenset(
    {
        "InvalidOrder",
        "DuplicateOrder",
        "OutOfStock",
        "PaymentDeclined",
        "Rejected",
        "ApprovalExpired",
    }
)


class BusinessFailure(Exception):
    """A step refused the order for a business reason (typed, non-retryable)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


STEP_TIMEOUT = timedelta(seconds=30)
"""Start-to-close of an ordinary step; the SQLite busy timeout stays below it."""


def retry_policy(attempts: int | None = None) -> RetryPolicy:
    """Infrastructure failures retry with backoff; forever unless the step has a budget.

    A step that holds something must eventually succeed or be compensated, never be left
    half-way: only steps with a business deadline (carrier booking) get an attempt budget.
    """
    return RetryPolicy(
        initial_interval=timedelta(milliseconds=500),
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=30),
        maximum_attempts=attempts or 0,
    )


DATABASE_STEPS = frozenset(
    {
        "validate_order",
        "assess_holds",
        "load_approvers",
        "reserve_inventory",
        "release_inventory",
        "record_status",
        "record_edit",
        "record_shipment_progress",
        "ship_stock",
        "receive_stock",
        "backordered_orders",
        "receive_return",
        "inspect_return",
        "expire_rma",
    }
)
"""Steps that only touch our own database, are short and idempotent (a key per order and
step, a unique constraint): they run as local activities, inside the workflow task, without a
round trip through the server each. Steps that call the outside world (gateway, carriers,
notifications, the other orders) stay ordinary activities: they are slow, may retry for long,
heartbeat, or must be cancellable on their own."""

LOCAL_FIRST = {
    "authorize_payment": 3,
    "void_authorization": 3,
    "capture_payment": 3,
    "book_shipments": 1,
}
"""Steps that call the outside world (the payment gateway, the carriers) and their quick
local attempts. Each is short when the other side answers (a gateway call; a few quotes and a
label) and idempotent by its key, so its first attempts run as local activities inside the
workflow task, 0.5 s and 1 s apart; only a side that stays away moves the step to an ordinary
activity, which retries (with backoff up to 30 s, heartbeating where it does) without adding
to the order's history, where a local activity retrying for hours would add a workflow task
every few seconds. A booking's attempt budget counts its quick attempt; a cancel waits for a
local attempt to finish as it does for an ordinary one (WAIT_CANCELLATION_COMPLETED)."""


def _runs_locally(activity: Callable[..., Any], heartbeat: timedelta | None) -> bool:
    name = getattr(activity, "__name__", "")
    return name in DATABASE_STEPS and heartbeat is None and versions.patched(LOCAL_DATABASE_STEPS)


def _quick_attempts(activity: Callable[..., Any], attempts: int | None) -> int:
    """How many local attempts a step gets before it becomes an ordinary activity (0: none;
    a budget of one attempt is spent by the ordinary activity, which reports giving up)."""
    quick = LOCAL_FIRST.get(getattr(activity, "__name__", ""), 0)
    if attempts is not None:
        quick = min(quick, attempts - 1)
    return quick if quick > 0 and versions.patched(LOCAL_FIRST_PATCH) else 0


def _final(error: ActivityError | ApplicationError) -> bool:
    """A step's own answer that retrying elsewhere would not change: a non-retryable
    (business) error, or the attempt cancelled (a cancel was accepted: the order stops, it
    must not book again as an ordinary activity). Anything else (the gateway away, a timeout)
    is worth more attempts."""
    cause = step_failure(error)
    if isinstance(cause, CancelledError):
        return True
    return isinstance(cause, ApplicationError) and (
        cause.non_retryable or cause.type in BUSINESS_FAILURES
    )


def step_failure(error: ActivityError | ApplicationError) -> BaseException | None:
    """What the step itself raised: an ordinary activity's failure comes wrapped in an
    ActivityError, a local activity's as the activity's own ApplicationError."""
    return error.cause if isinstance(error, ActivityError) else error


async def run_step(
    activity: Callable[..., Any],
    *args: Any,
    summary: str,
    timeout: timedelta | None = None,
    heartbeat: timedelta | None = None,
    attempts: int | None = None,
    cancellation_type: ActivityCancellationType = ActivityCancellationType.TRY_CANCEL,
) -> Any:
    """Execute one activity method with the standard options; translate business failures.

    Raises:
        BusinessFailure: the activity raised a typed business error, or used up its budget.
    """

    def local(retries: int | None) -> Any:
        return workflow.execute_local_activity_method(
            activity,
            args=args,
            start_to_close_timeout=timeout or STEP_TIMEOUT,
            retry_policy=retry_policy(retries),
            summary=summary,
            cancellation_type=cancellation_type,
        )

    try:
        if _runs_locally(activity, heartbeat):
            return await local(attempts)
        quick = _quick_attempts(activity, attempts)
        if quick:
            try:
                return await local(quick)
            except (ActivityError, ApplicationError) as error:
                if _final(error):
                    raise
                workflow.logger.info("%s: no answer yet; retrying as an activity", summary)
        return await workflow.execute_activity_method(
            activity,
            args=args,
            start_to_close_timeout=timeout or STEP_TIMEOUT,
            heartbeat_timeout=heartbeat,
            retry_policy=retry_policy(attempts - quick if attempts else None),
            summary=summary,
            cancellation_type=cancellation_type,
        )
    except (ActivityError, ApplicationError) as error:
        cause = step_failure(error)
        if isinstance(cause, ApplicationError):
            if cause.type in BUSINESS_FAILURES:
                raise BusinessFailure(cause.type, cause.message) from error
            retry_state = error.retry_state if isinstance(error, ActivityError) else None
            if retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED and cause.type:
                raise BusinessFailure(
                    cause.type, f"gave up after {attempts} attempts: {cause.message}"
                ) from error
        raise
