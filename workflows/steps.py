"""How the order workflow calls its activities: timeouts, retries, business failures."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.workflow import ActivityCancellationType

# Typed business failures: the order cannot go on, retrying would not help.
BUSINESS_FAILURES = frozenset(
    {"InvalidOrder", "DuplicateOrder", "OutOfStock", "PaymentDeclined", "RefundExceedsCapture"}
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
    try:
        return await workflow.execute_activity_method(
            activity,
            args=args,
            start_to_close_timeout=timeout or STEP_TIMEOUT,
            heartbeat_timeout=heartbeat,
            retry_policy=retry_policy(attempts),
            summary=summary,
            cancellation_type=cancellation_type,
        )
    except ActivityError as error:
        cause = error.cause
        if isinstance(cause, ApplicationError):
            if cause.type in BUSINESS_FAILURES:
                raise BusinessFailure(cause.type, cause.message) from error
            if error.retry_state == RetryState.MAXIMUM_ATTEMPTS_REACHED and cause.type:
                raise BusinessFailure(
                    cause.type, f"gave up after {attempts} attempts: {cause.message}"
                ) from error
        raise
