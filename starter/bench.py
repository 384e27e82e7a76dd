"""`orderflow bench`: orders against two fair baselines, in the same worker processes, same run.

The fairness rules (README, "Speed"): the baselines (`workflows/baseline.py`: six no-op plain
activities; six no-op local activities) and the orders run in the same `orderflow worker`
processes, on one task queue, with the same options, against the same server, interleaved in
rounds so that drift shows; the load comes from this process, not the workers'. Every
workflow is followed the same way (a long poll on its history, no queries that would load the
workers), and its latency is the server's own clock: started → done (a baseline completes; an
order's done is the upsert of OrderStatus=AWAITING_SHIPMENT, its labels booked).
"""

import asyncio
import json
import math
import statistics
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle

from domain.order import Order
from starter import orders
from starter.history import local_activity
from starter.orders import UserError
from workers.settings import Settings
from workflows.baseline import LocalBaselineWorkflow, PlainBaselineWorkflow

BENCH_SKU = "BENCH-1"
WORKLOADS = ("plain", "local", "orders")
CLOSED_OK = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
CLOSED = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
}


class BenchError(UserError):
    """A workflow of the bench did not reach its done point (an order rejected, ...)."""


@dataclass
class Sample:
    """One workflow, from its history up to its done event."""

    latency: float  # seconds, server clock
    events: int
    activities: int
    local_activities: int
    workflow_tasks: int
    steps: dict[str, float] = field(default_factory=dict)  # activity type -> seconds (both kinds)

    @property
    def between_steps(self) -> float:
        """Seconds not spent inside an activity (ordinary or local): workflow tasks, queues,
        round trips."""
        return max(self.latency - sum(self.steps.values()), 0.0)


def bench_order(i: int, tag: str) -> Order:
    return Order.model_validate(
        {
            "order_id": f"bench-{tag}-{i}",
            "channel": "web",
            "customer_id": "C-WEB-001",
            "currency": "EUR",
            "lines": [{"sku": BENCH_SKU, "quantity": 1, "unit_price": "1.00"}],
            "ship_to": {
                "name": "Bench",
                "street": "Damrak 1",
                "city": "Amsterdam",
                "postal_code": "1012 LG",
                "country": "NL",
            },
            "promised_days": 5,
            "purchase_order": f"BENCH-{tag}-{i}",
        }
    )


def order_status(event: HistoryEvent) -> str | None:
    """The OrderStatus an event sets (an upsert of the search attribute), if any."""
    if event.event_type != EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
        return None
    fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
    payload = fields.indexed_fields.get("OrderStatus")
    return None if payload is None else str(json.loads(payload.data))


# An order of the bench that gets here would wait for a person or for goods: not a measurement.
STUCK = {"BACKORDERED", "AWAITING_APPROVAL", "REJECTED", "CANCELLED", "FAILED"}


def sample_of(events: list[HistoryEvent]) -> Sample:
    """Counts and per-step durations of a history that ends with its done event."""
    start, done = events[0].event_time.ToDatetime(), events[-1].event_time.ToDatetime()
    scheduled: dict[int, HistoryEvent] = {}
    steps: dict[str, float] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            begun = scheduled[event.activity_task_completed_event_attributes.scheduled_event_id]
            name = begun.activity_task_scheduled_event_attributes.activity_type.name
            took = (event.event_time.ToDatetime() - begun.event_time.ToDatetime()).total_seconds()
            steps[name] = steps.get(name, 0.0) + took
    for name, took in _local_steps(events):
        steps[name] = steps.get(name, 0.0) + took
    kinds = [e.event_type for e in events]
    return Sample(
        latency=(done - start).total_seconds(),
        events=len(events),
        activities=len(scheduled),
        local_activities=sum(1 for e in events if local_activity(e) is not None),
        workflow_tasks=kinds.count(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
        steps=steps,
    )


def _local_steps(events: list[HistoryEvent]) -> list[tuple[str, float]]:
    """Each local activity's type and time, from the SDK's bookkeeping in its marker (plain
    JSON). The marker's `complete_time` is the workflow's clock, which stands still within a
    workflow task, so a step's time runs from its `original_schedule_time` (the worker's
    clock) to what the order did next: the next local step's start, an ordinary activity or a
    timer started, or the done event: the step and the workflow code after it."""
    steps: list[tuple[str, float]] = []
    running: tuple[str, float] | None = None
    for event in events:
        local = local_activity(event)
        if local is not None and not local[1]:
            continue
        started = _seconds(local[1].get("original_schedule_time")) if local else None
        if running is not None and (started is not None or event.event_type in NEXT_THINGS):
            end = started if started is not None else event.event_time.ToNanoseconds() / 1e9
            steps.append((running[0], max(end - running[1], 0.0)))
            running = None
        if local is not None and started is not None:
            running = (str(local[1].get("activity_type", "?")), started)
    if running is not None:
        done = events[-1].event_time.ToNanoseconds() / 1e9
        steps.append((running[0], max(done - running[1], 0.0)))
    return steps


NEXT_THINGS = {
    EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED,
    EventType.EVENT_TYPE_TIMER_STARTED,
}
"""What ends a local step's span besides the next local step (server events on the server's
clock; the bench's server and workers share one machine's clock)."""


def _seconds(stamp: dict[str, int] | None) -> float | None:
    return None if stamp is None else stamp.get("seconds", 0) + stamp.get("nanos", 0) / 1e9


class Bench:
    """Starts and follows the three workloads on one task queue."""

    def __init__(self, client: Client, settings: Settings) -> None:
        self.client, self.settings = client, settings
        self.tag = uuid.uuid4().hex[:6]
        self._n = 0

    async def one(self, kind: str) -> Sample:
        """Start one workflow of `kind` and follow its history until its done event."""
        self._n += 1
        handle = await self._start(kind, f"{self.tag}-{self._n}")
        events: list[HistoryEvent] = []
        async for event in handle.fetch_history_events(wait_new_event=True):
            events.append(event)
            status = order_status(event) if kind == "orders" else None
            if status == "AWAITING_SHIPMENT":
                return sample_of(events)
            if status in STUCK:
                raise BenchError(f"{handle.id} is {status}: see orderflow status for why")
            if event.event_type == CLOSED_OK and kind != "orders":
                return sample_of(events)
            if event.event_type in CLOSED:
                raise BenchError(f"{handle.id} ended ({EventType.Name(event.event_type)})")
        raise BenchError(f"{handle.id}: history ended before its done event")

    async def _start(self, kind: str, suffix: str) -> WorkflowHandle[Any, Any]:
        queue = self.settings.task_queue
        if kind == "plain":
            return await self.client.start_workflow(
                PlainBaselineWorkflow.run, id=f"bench-plain-{suffix}", task_queue=queue
            )
        if kind == "local":
            return await self.client.start_workflow(
                LocalBaselineWorkflow.run, id=f"bench-local-{suffix}", task_queue=queue
            )
        return await orders.place(self.client, self.settings, bench_order(self._n, self.tag))

    async def batch(
        self, kind: str, count: int, concurrency: int, tick: Callable[[], None]
    ) -> tuple[float, list[Sample]]:
        """`count` workflows, at most `concurrency` at once: (wall seconds, samples)."""
        gate = asyncio.Semaphore(concurrency)

        async def run() -> Sample:
            async with gate:
                sample = await self.one(kind)
                tick()
                return sample

        began = time.monotonic()
        samples = await asyncio.gather(*(run() for _ in range(count)))
        return time.monotonic() - began, list(samples)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))  # nearest rank
    return ordered[index]


def summarise(walls: list[float], samples: list[Sample], alone: list[Sample]) -> dict[str, Any]:
    """One workload's figures over all its rounds."""
    count = len(samples)
    latencies = [s.latency for s in samples]
    steps: dict[str, list[float]] = {}
    for s in samples:
        for name, took in s.steps.items():
            steps.setdefault(name, []).append(took)
    return {
        "workflows": count,
        "per_s": round(count / sum(walls), 2),
        "per_s_by_round": [round(len(samples) / len(walls) / w, 2) for w in walls],
        "latency_ms": {f"p{p}": round(percentile(latencies, p) * 1000) for p in (50, 95, 99)},
        "alone_ms": round(statistics.median(s.latency for s in alone) * 1000),
        "activities": statistics.median(s.activities for s in samples),
        "local_activities": statistics.median(s.local_activities for s in samples),
        "workflow_tasks": statistics.median(s.workflow_tasks for s in samples),
        "events": statistics.median(s.events for s in samples),
        "where_the_time_goes_ms_p50": {
            **{name: round(statistics.median(v) * 1000) for name, v in steps.items()},  # run order
            "between steps": round(statistics.median(s.between_steps for s in samples) * 1000),
        },
    }
