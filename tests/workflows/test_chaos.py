"""Random schedules with worker SIGKILLs: nothing lost, nothing leaked, nothing wedged.

Seeded: a failing run prints its seed; `ORDERFLOW_CHAOS_SEED=<seed>` repeats the schedules
(`orderflow chaos --seed` does the same outside the test suite). `ORDERFLOW_CHAOS_SECONDS`
and `ORDERFLOW_CHAOS_ORDERS` make the bounded run longer.
"""

import os
import random

from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from starter.chaos import run_chaos
from starter.history import local_activity
from workers.settings import Settings
from workflows import search


async def test_random_schedules_with_worker_kills_keep_every_invariant(
    client: Client,
    temporal: WorkflowEnvironment,
    settings: Settings,
    engine: Engine,
    tmp_path: object,
) -> None:
    seed = int(os.environ.get("ORDERFLOW_CHAOS_SEED") or random.randrange(10**6))
    report = await run_chaos(
        client,
        settings,
        engine,
        client.service_client.config.target_host,
        seed=seed,
        count=int(os.environ.get("ORDERFLOW_CHAOS_ORDERS", "10")),
        duration=float(os.environ.get("ORDERFLOW_CHAOS_SECONDS", "25")),
        log=tmp_path / "workers.log",  # type: ignore[operator]
    )
    print(report.model_dump_json(indent=1))
    assert report.kills >= 2, f"seed {seed}: workers were not killed"
    assert not report.busy, f"seed {seed}: still busy: {report.busy}"
    unreplayable = [v["order_id"] for v in report.violations if v["rule"] == "replays"]
    timelines = [await timeline(client, order_id) for order_id in unreplayable]
    assert not report.violations, f"seed {seed}: {report.violations}\n" + "\n".join(timelines)


async def timeline(client: Client, order_id: str) -> str:
    """The latest run of an order that could not be replayed, an event a line (its id, its
    type, seconds since the run began, and what it was: a local step, a timer, a status), so
    that the run's CI output is enough to find out why."""
    history = await client.get_workflow_handle(search.workflow_id(order_id)).fetch_history()
    began = history.events[0].event_time.ToNanoseconds()
    lines = [f"history of {history.workflow_id} (latest run):"]
    for event in history.events:
        what = ""
        local = local_activity(event)
        if local is not None:
            what = str(local[1].get("activity_type", ""))
        elif event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
            what = str(event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta())
        elif event.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = event.upsert_workflow_search_attributes_event_attributes.search_attributes
            status = fields.indexed_fields.get("OrderStatus")
            what = status.data.decode() if status is not None else ""
        elapsed = (event.event_time.ToNanoseconds() - began) / 1e9
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        lines.append(f"  {event.event_id:>4} {elapsed:8.3f}s {kind} {what}")
    return "\n".join(lines)
