"""Calibration workflows for `orderflow bench`: the floor an order's path is measured against.

Six no-op steps in a row (the number of activities an order runs until its labels exist), as
plain activities and as local activities. Every worker registers them, so the bench runs
them in the very worker processes, with the very options, that run orders.
"""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.baseline import noop

STEPS = 6


@workflow.defn
class PlainBaselineWorkflow:
    """Six plain activities (each a task on the queue, a round trip through the server)."""

    @workflow.run
    async def run(self) -> int:
        for step in range(STEPS):
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        return STEPS


@workflow.defn
class LocalBaselineWorkflow:
    """Six local activities (run by the worker inside the workflow task's lifetime)."""

    @workflow.run
    async def run(self) -> int:
        for step in range(STEPS):
            await workflow.execute_local_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )
        return STEPS
