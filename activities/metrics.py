"""Business metrics recorded by activities through the SDK's activity metric meter.

They come out of the worker's Prometheus endpoint (README, "Metrics, traces and logs") with
the labels namespace, task_queue and activity_type added by the SDK. Outside an activity (a
test calling the method directly) nothing is recorded.

- orderflow_refund_amount {currency, kind} (minor units, a histogram: its _count is the number
  of refunds, its _sum the money): a refund booked in the ledger, once per idempotency key
  (kind "card": paid back through the gateway; "credit_note": credited on account terms)
- orderflow_activity_cpu {activity_type} (seconds, a histogram: _sum is the CPU time the
  step's attempts used, _count the attempts): the CPU time of the thread that ran the step,
  Python and the database driver, not time spent waiting for a lock, the network or the GIL
  (`StepCpu`, an interceptor every worker has; `orderflow bench` reads it per order)
"""

import dataclasses
import inspect
import time
from collections.abc import Callable
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

CPU_METRIC = "orderflow_activity_cpu"


class StepCpu(Interceptor):
    """Records each attempt of a (threaded, synchronous) activity's CPU time."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimedActivity(next)


class _TimedActivity(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        fn = input.fn  # async as the SDK decides it: the function or its __call__
        if inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(fn.__call__):  # type: ignore[operator]
            return await super().execute_activity(input)  # async: its CPU time is not a thread's
        return await super().execute_activity(dataclasses.replace(input, fn=_timed(input.fn)))


def _timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any) -> Any:
        began = time.thread_time()
        try:
            return fn(*args)
        finally:
            activity.metric_meter().create_histogram_float(
                CPU_METRIC, "CPU time of an activity attempt's thread", "s"
            ).record(time.thread_time() - began)

    return timed


def refund_booked(amount_minor: int, currency: str, kind: str) -> None:
    """The attempt that booked a refund's ledger row (a retry of the same key does not)."""
    if not activity.in_activity():
        return
    activity.metric_meter().create_histogram(
        "orderflow_refund_amount", "refunds booked, in minor units of their currency"
    ).record(amount_minor, {"currency": currency, "kind": kind})
