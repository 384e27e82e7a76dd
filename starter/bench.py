"""`orderflow bench`: order throughput as a ratio to a bare 6-activity workflow, same run."""

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from domain.order import Order
from domain.statuses import OrderStatus
from starter import orders
from workers.settings import Settings

BENCH_SKU = "BENCH-1"


@activity.defn
async def noop(step: int) -> int:
    return step


@workflow.defn
class BaselineWorkflow:
    """The floor: six plain activities in a row, the count an order runs until labels exist."""

    @workflow.run
    async def run(self) -> None:
        for step in range(6):
            await workflow.execute_activity(
                noop, step, start_to_close_timeout=timedelta(seconds=30)
            )


async def _timed(count: int, concurrency: int, one: Any) -> float:
    """Workflows per second for `count` runs of `one(i)`, at most `concurrency` at a time."""
    gate = asyncio.Semaphore(concurrency)

    async def run(i: int) -> None:
        async with gate:
            await one(i)

    started = time.monotonic()
    await asyncio.gather(*(run(i) for i in range(count)))
    return count / (time.monotonic() - started)


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


async def run_bench(
    client: Client, settings: Settings, count: int, concurrency: int
) -> dict[str, float]:
    """Baseline and orders (placed until AWAITING_SHIPMENT) in one run, with their ratio."""
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    tag = uuid.uuid4().hex[:6]
    async with Worker(client, task_queue=queue, workflows=[BaselineWorkflow], activities=[noop]):
        baseline = await _timed(
            count,
            concurrency,
            lambda i: client.execute_workflow(
                BaselineWorkflow.run, id=f"baseline-{tag}-{i}", task_queue=queue
            ),
        )

    async def one_order(i: int) -> None:
        order = bench_order(i, tag)
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 300)

    throughput = await _timed(count, concurrency, one_order)
    return {
        "orders": count,
        "concurrency": concurrency,
        "baseline_per_s": round(baseline, 2),
        "orders_per_s": round(throughput, 2),
        "ratio": round(throughput / baseline, 3),
    }
