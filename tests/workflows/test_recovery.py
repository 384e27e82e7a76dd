"""Operator recovery on the dev server (README "When an order is stuck").

Each test is one recipe an operator follows, done the way they would do it (the `temporal`
CLI for resets and terminations), ending in `orderflow check`'s invariants.
"""

import asyncio
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import Engine
from temporalio import activity
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from domain.state import OrderState
from domain.statuses import OrderStatus
from domain.steps import PaymentAuthorization
from starter import orders, read_model, recovery
from starter.check import check_orders
from starter.orders import UserError
from starter.stack import register_search_attributes, temporal_binary
from tests.factories import make_order, new_sku, payments_of, steps_of, stock_of
from tests.gates import assert_invariants
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.settings import Settings
from workers.worker import build_activities, build_worker
from workflows import search


def temporal_cli(client: Client, *args: str) -> str:
    """Run the `temporal` CLI against the test server, as an operator would."""
    address = client.service_client.config.target_host
    done = subprocess.run(
        [temporal_binary(), *args, "--address", address, "--namespace", client.namespace],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def new_run(client: Client, order_id: str, old_run: str) -> str:
    """The run id of the order's workflow once a run other than `old_run` is the latest."""
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    for _ in range(200):
        run_id = (await handle.describe()).run_id
        if run_id != old_run:
            return run_id
        await asyncio.sleep(0.1)
    raise AssertionError("no new run")


async def test_a_reset_to_the_first_workflow_task_continues_the_same_order(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 10, "MAD": 10})
    order = make_order({sku: 3})
    await orders.place(client, worker, order)
    before = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    handle = client.get_workflow_handle(search.workflow_id(order.order_id))
    old_run = (await handle.describe()).run_id

    temporal_cli(
        client,
        "workflow",
        "reset",
        "--workflow-id",
        search.workflow_id(order.order_id),
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "operator: stuck order",
    )
    await new_run(client, order.order_id, old_run)

    # The new run re-enters the same order: every step finds its earlier effect (same
    # authorisation, same reservation, same labels) instead of rejecting a "duplicate".
    after = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert after.status == OrderStatus.AWAITING_SHIPMENT, after.reason
    assert [s.label_id for s in after.shipments] == [s.label_id for s in before.shipments]
    assert after.payment == before.payment
    assert stock_of(engine, sku) == {"AMS": (10, 3), "MAD": (10, 0)}

    await ship_and_deliver(client, order.order_id)
    done = await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    assert done.capture is not None and done.capture.amount == order.total
    assert payments_of(engine, order.order_id)["CAPTURE"] == order.total
    assert stock_of(engine, sku) == {"AMS": (7, 0), "MAD": (10, 0)}
    assert steps_of(engine, order.order_id).count("received") == 1

    rows = [
        r for r in await orders.list_orders(client, limit=10**6) if r["order_id"] == order.order_id
    ]
    assert len(rows) == 1 and rows[0]["status"] == OrderStatus.COMPLETED.value
    stale = await orders.list_orders(client, OrderStatus.AWAITING_SHIPMENT, limit=10**6)
    assert order.order_id not in {r["order_id"] for r in stale}  # the old run's status
    await assert_invariants(client, worker, engine)


async def test_list_pages_through_every_order_oldest_first(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 50}, price="1000.00")
    placed = []
    for _ in range(5):
        order = make_order({sku: 6}, price="1000.00")  # above the manager's threshold
        await orders.place(client, worker, order)
        placed.append(order.order_id)
    for order_id in placed:
        await orders.wait_for(client, order_id, OrderStatus.AWAITING_APPROVAL, 30)
    # Pages of two: the oldest five come first however the server orders its pages.
    everything = await orders.list_orders(
        client, OrderStatus.AWAITING_APPROVAL, limit=10**6, page_size=2
    )
    mine = [r["order_id"] for r in everything if r["order_id"] in placed]
    assert mine == placed
    starts = [r["started_at"] for r in everything]
    assert starts == sorted(starts)
    # A limit keeps the oldest, not the first page visibility returns (its newest).
    oldest = await orders.list_orders(client, OrderStatus.AWAITING_APPROVAL, limit=3, page_size=2)
    assert [r["order_id"] for r in oldest] == [r["order_id"] for r in everything[:3]]
    for order_id in placed:
        await orders.cancel(client, order_id, "test over", "cs-agent")


@pytest.fixture
async def short_retention(client: Client) -> AsyncIterator[Client]:
    """A namespace whose closed orders Temporal forgets after two seconds."""
    from datetime import timedelta

    from google.protobuf.duration_pb2 import Duration

    name = f"short-{uuid.uuid4().hex[:6]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(seconds=2))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=name, workflow_execution_retention_period=retention)
    )
    for _ in range(100):  # the namespace cache takes a moment to see it
        try:
            await register_search_attributes(client, name)
            break
        except RPCError:
            await asyncio.sleep(0.2)
    yield await Client.connect(
        client.service_client.config.target_host,
        namespace=name,
        data_converter=client.data_converter,
    )


async def test_an_order_temporal_has_forgotten_is_shown_from_the_read_model(
    short_retention: Client, settings: Settings, engine: Engine
) -> None:
    client = short_retention
    settings = settings.model_copy(update={"namespace": client.namespace})
    sku = new_sku(engine, {"FRA": 5})
    order = make_order({sku: 1}, country="DE")
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.cancel(client, order.order_id, "customer changed their mind", "cs-agent")
        handle = client.get_workflow_handle(search.workflow_id(order.order_id))
        await handle.result()

    for _ in range(300):  # retention (2 s) plus the deletion task's own pace
        try:
            await handle.describe()
        except RPCError as error:
            assert error.status == RPCStatusCode.NOT_FOUND
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError("Temporal kept the order past its retention")

    state, source = await read_model.find_order(client, settings, order.order_id)
    assert source == read_model.READ_MODEL
    assert state.status == OrderStatus.CANCELLED
    assert state.reason == "customer changed their mind"
    assert any(e.what == "customer changed their mind" for e in state.events)

    rows = await read_model.all_orders(client, settings, OrderStatus.CANCELLED, limit=10**6)
    mine = [r for r in rows if r["order_id"] == order.order_id]
    assert [r["source"] for r in mine] == [read_model.READ_MODEL]
    assert order.order_id not in {
        r["order_id"] for r in await orders.list_orders(client, limit=10**6)
    }

    # The id stays used: placing it again is refused before anything starts.
    with pytest.raises(UserError, match="already exists"):
        await read_model.refuse_known(settings, [order.order_id])
    with pytest.raises(UserError, match="unknown order"):
        await read_model.find_order(client, settings, "never-placed")


async def test_a_terminated_order_is_brought_back_and_cancelled(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """Terminate skips every compensation: `check` shows what it left behind; a reset of the
    terminated run brings the order back, and a cancel then undoes what it held."""
    sku = new_sku(engine, {"FRA": 5})
    order = make_order({sku: 2}, country="DE")
    workflow_id = search.workflow_id(order.order_id)
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    temporal_cli(client, "workflow", "terminate", "-w", workflow_id, "--reason", "by mistake")
    terminated = (await client.get_workflow_handle(workflow_id).describe()).run_id

    audit = await check_orders(client, worker, engine, task_queue=worker.task_queue)
    assert {v["rule"] for v in audit["violations"]} >= {"workflow-completed"}
    assert stock_of(engine, sku)["FRA"] == (5, 2)  # still held: nobody undid it

    temporal_cli(
        client,
        "workflow",
        "reset",
        "-w",
        workflow_id,
        "--type",
        "LastWorkflowTask",
        "--reason",
        "operator: undo a terminate",
    )
    await new_run(client, order.order_id, terminated)
    await orders.cancel(client, order.order_id, "terminated by mistake, cancelled", "ops")
    state = await client.get_workflow_handle(workflow_id, result_type=OrderState).result()
    assert state.status == OrderStatus.CANCELLED
    assert stock_of(engine, sku)["FRA"] == (5, 0)
    assert set(payments_of(engine, order.order_id)) == {"AUTHORIZE", "VOID"}
    await assert_invariants(client, worker, engine)


def refusing_void(
    client: Client, settings: Settings, engine: Engine, refuse: threading.Event
) -> Callable[..., None]:
    """The gateway refuses to void (a non-retryable error) while `refuse` is set."""
    [real] = [
        fn
        for fn in build_activities(settings, engine, client)
        if activity._Definition.must_from_callable(fn).name == "void_authorization"
    ]

    @activity.defn(name="void_authorization")
    def void_authorization(authorization: PaymentAuthorization) -> None:
        if refuse.is_set():
            raise ApplicationError(
                "gateway: void refused", type="GatewayRefused", non_retryable=True
            )
        real(authorization)

    return void_authorization


async def test_a_failed_compensation_is_redriven_once_fixed(
    client: Client, settings: Settings, engine: Engine
) -> None:
    refuse = threading.Event()
    refuse.set()
    sku = new_sku(engine, {"FRA": 5})
    order = make_order({sku: 1}, country="DE")
    workflow_id = search.workflow_id(order.order_id)
    overrides = [refusing_void(client, settings, engine, refuse)]
    async with build_worker(client, settings, engine, overrides=overrides):
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.cancel(client, order.order_id, "customer changed their mind", "cs-agent")
        with pytest.raises(WorkflowFailureError):
            await client.get_workflow_handle(workflow_id).result()
        assert set(payments_of(engine, order.order_id)) == {"AUTHORIZE"}  # still authorised

        refuse.clear()  # the gateway is fixed
        answer = await recovery.redrive(client, order.order_id, "gateway fixed")
        assert answer.startswith("void_authorization runs again")
        state = await client.get_workflow_handle(workflow_id, result_type=OrderState).result()
    assert state.status == OrderStatus.CANCELLED
    assert stock_of(engine, sku)["FRA"] == (5, 0)
    assert set(payments_of(engine, order.order_id)) == {"AUTHORIZE", "VOID"}
    await assert_invariants(client, settings, engine)
    with pytest.raises(UserError, match="not FAILED"):
        await recovery.redrive(client, order.order_id, "again")
