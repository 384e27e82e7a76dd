"""Scale-out with real processes: three `orderflow worker` processes share the orders (workflow
tasks and activities ran on each of them), then two are SIGKILLed mid-batch and the batch still
completes with every invariant held."""

import asyncio
import random
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import DescribeTaskQueueMode, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue, TaskQueueVersionSelection
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from domain.statuses import OrderStatus
from starter import orders
from starter.stack import WorkerPool, worker_env
from tests.factories import make_order, new_sku
from tests.gates import assert_invariants
from workers.settings import Settings
from workflows import search

# The production database (the pool budget in README is PostgreSQL's); about a minute, most of
# it the 30 s start-to-close of the steps that were running on the killed workers.
pytestmark = pytest.mark.parametrize("database_url", ["postgres"], indirect=True)

IDENTITY = re.compile(r"^(\d+)@")


async def workers_of(client: Client, order_id: str) -> set[int]:
    """The worker processes (pids, from their identities) that ran the order's workflow tasks
    and activities."""
    pids: set[int] = set()
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    async for event in handle.fetch_history_events():
        for started in (
            event.workflow_task_started_event_attributes,
            event.activity_task_started_event_attributes,
        ):
            found = IDENTITY.match(started.identity)
            if found:
                pids.add(int(found.group(1)))
    return pids


async def polling(client: Client, settings: Settings, pids: list[int], timeout: float = 60) -> None:
    """Until every worker process polls the task queue for workflow tasks and activities, so
    a batch placed now can reach each of them (a worker still starting would get nothing).

    Asked of every partition of the queue (the enhanced description): the plain one answers for
    the root partition only, where an idle worker's long poll on another partition may show up
    only when it expires, a minute later."""
    kinds = [TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        described = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=settings.task_queue),
                api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
                versions=TaskQueueVersionSelection(unversioned=True),
                task_queue_types=kinds,
                report_pollers=True,
            )
        )
        seen: list[set[int]] = []
        for kind in kinds:
            pollers = [
                poller
                for version in described.versions_info.values()
                for poller in version.types_info[kind].pollers
            ]
            found = (IDENTITY.match(p.identity) for p in pollers)
            seen.append({int(m.group(1)) for m in found if m})
        if all(set(pids) <= pollers for pollers in seen):
            return
        assert asyncio.get_running_loop().time() < deadline, f"pollers {seen}, workers {pids}"
        await asyncio.sleep(0.5)


async def place_batch(client: Client, settings: Settings, engine: Engine, n: int) -> list[str]:
    sku = new_sku(engine, {"AMS": 10 * n, "FRA": 10 * n})
    batch = [make_order({sku: 1 + i % 3}) for i in range(n)]
    await asyncio.gather(*(orders.place(client, settings, order) for order in batch))
    return [order.order_id for order in batch]


async def all_booked(client: Client, ids: list[str]) -> None:
    states = await asyncio.gather(
        *(orders.wait_for(client, i, OrderStatus.AWAITING_SHIPMENT, 120) for i in ids)
    )
    assert {s.status for s in states} == {OrderStatus.AWAITING_SHIPMENT}, [
        (s.order_id, s.status, s.reason) for s in states if s.status != "AWAITING_SHIPMENT"
    ]


async def test_three_workers_share_the_orders_and_two_may_die(
    client: Client, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    env = worker_env(
        settings,
        address=client.service_client.config.target_host,
        keep_user_settings=False,
        extra={
            "ORDERFLOW_ACTIVITY_THREADS": "8",
            "ORDERFLOW_CARRIER_LATENCY_MS": "1-5",
            "ORDERFLOW_GATEWAY_LATENCY_MS": "1-5",
        },
    )
    pool = WorkerPool(env, 3, tmp_path / "workers.log")
    pool.fill()
    try:
        await polling(client, settings, pool.pids())
        first = await place_batch(client, settings, engine, 30)
        await all_booked(client, first)
        ran = set().union(*await asyncio.gather(*(workers_of(client, i) for i in first)))
        assert set(pool.pids()) <= ran, f"workers {pool.pids()}, work done by {ran}"

        second = await place_batch(client, settings, engine, 30)
        rng = random.Random(3)
        pool.kill_one(rng)
        pool.kill_one(rng)
        assert len(pool.pids()) == 1
        await all_booked(client, second)
        await assert_invariants(client, settings, engine)
    finally:
        pool.stop()
