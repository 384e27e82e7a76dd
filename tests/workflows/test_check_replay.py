"""`orderflow check --replay`: an order whose history this code cannot replay is named before a
worker has to replay it (after a restart, to answer a query) and wedges it."""

from datetime import timedelta

from sqlalchemy import Engine
from temporalio import workflow
from temporalio.client import Client

from domain.order import Order
from domain.state import ContinuedOrder, OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.check import check_orders
from tests.factories import make_order, new_sku
from tests.workflows.test_long_lived import worker_running
from workers.settings import Settings
from workflows.order import OrderWorkflow


@workflow.defn(name="OrderWorkflow", sandboxed=False)
class AnotherVersion(OrderWorkflow):
    """A version deployed without a patch: it waits a moment before validating."""

    @workflow.init
    def __init__(self, placed: Order | ContinuedOrder) -> None:
        super().__init__(placed)

    @workflow.run
    async def run(self, placed: Order | ContinuedOrder) -> OrderState:
        await workflow.sleep(timedelta(milliseconds=10))
        return await super().run(placed)


async def test_an_order_this_code_cannot_replay_is_a_violation(
    client: Client, settings: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    other, ours = make_order({sku: 1}), make_order({sku: 1})
    async with worker_running(client, settings, engine, AnotherVersion):
        await orders.place(client, settings, other)
        await orders.wait_for(client, other.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    async with worker_running(client, settings, engine, OrderWorkflow):
        await orders.place(client, settings, ours)
        await orders.wait_for(client, ours.order_id, OrderStatus.AWAITING_SHIPMENT, 30)

    plain = await check_orders(client, settings, engine, task_queue=settings.task_queue)
    assert plain["ok"], plain["violations"]  # nothing has had to replay it yet

    audit = await check_orders(
        client, settings, engine, task_queue=settings.task_queue, replay=True
    )
    assert not audit["ok"]
    [violation] = audit["violations"]
    assert (violation["order_id"], violation["rule"]) == (other.order_id, "replays")
    assert violation["detail"].startswith(
        "this code cannot replay the order's history: [TMPRL1100] Nondeterminism error:"
    )
