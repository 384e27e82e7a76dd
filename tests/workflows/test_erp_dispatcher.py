"""The ERP dispatcher on a real dev server and worker, the simulated ERP over HTTP, SQLite and
PostgreSQL: a real order's invoice reaches the ERP; an ERP that is down while 50 orders are
invoiced books each posting once when it is back; a refused posting is a dead letter in the
Temporal UI until `orderflow erp retry`; the dispatcher's history replays."""

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from domain.statuses import OrderStatus
from starter import orders
from starter.erp_sim import Behaviour
from starter.reconcile import reconcile_with_erp
from tests.e2e.conftest import orderflow
from tests.factories import authorize, capture, invoice_no, make_order, new_sku
from tests.simulated_erp import SECRET, SimulatedErp, own_database, placed
from tests.simulated_erp import postings as postings_of
from workers.settings import Settings
from workers.worker import build_worker, start_erp_dispatcher
from workflows.erp_dispatcher import ErpDispatcherWorkflow


@dataclass
class Handoff:
    settings: Settings
    engine: Engine
    sim: SimulatedErp
    dispatcher: WorkflowHandle[Any, Any]


@pytest.fixture
async def handoff(client: Client, database_url: str, tmp_path: Path) -> AsyncIterator[Handoff]:
    """A database of its own, a worker with an ERP configured, its dispatcher, the ERP down."""
    with own_database(database_url, tmp_path) as engine, SimulatedErp(Behaviour(down=True)) as sim:
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            task_queue=f"erp-{uuid.uuid4().hex[:8]}",
            carrier_latency_ms="1-5",
            gateway_latency_ms="0",
            activity_threads=16,
            erp_url=sim.url,
            erp_secret=SECRET.decode(),
            erp_poll_interval="50ms",
            erp_first_retry="50ms",
            erp_max_backoff="200ms",
            erp_round="2s",
        )
        async with build_worker(client, settings, engine):
            dispatcher = await start_erp_dispatcher(client, settings)
            try:
                yield Handoff(settings, engine, sim, dispatcher)
            finally:
                await dispatcher.terminate("test over")


async def details(handle: WorkflowHandle[Any, Any], text: str, timeout: float = 20) -> str:
    """The dispatcher's current details (what the Web UI shows) once they say `text`."""
    deadline = time.monotonic() + timeout
    while True:
        shown: WorkflowMetadata = await handle.query(
            "__temporal_workflow_metadata", result_type=WorkflowMetadata
        )
        if text in shown.current_details:
            return shown.current_details
        assert time.monotonic() < deadline, f"details never said {text!r}: {shown.current_details}"
        await asyncio.sleep(0.05)


async def all_delivered(engine: Engine, count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        states = [p.state for p in postings_of(engine)]
        if len(states) == count and set(states) == {"delivered"}:
            return
        assert time.monotonic() < deadline, f"not all delivered: {states}"
        await asyncio.sleep(0.05)


async def completed_order(client: Client, settings: Settings, engine: Engine) -> str:
    """A real order through its lifecycle: placed, reserved, shipped, delivered, invoiced."""
    order = make_order({new_sku(engine, {"AMS": 10}): 3})
    await orders.place(client, settings, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    for shipment in state.shipments:
        await orders.notify_shipment(client, order.order_id, "ship", shipment.shipment_id, "wms")
    await orders.wait_for(client, order.order_id, OrderStatus.SHIPPED, 30)
    for shipment in state.shipments:
        await orders.notify_shipment(client, order.order_id, "deliver", shipment.shipment_id, "dhl")
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 30)
    return order.order_id


def invoice_directly(engine: Engine, count: int) -> None:
    for _ in range(count):
        order = placed(engine)
        capture(engine, order, authorize(engine, order))


async def test_an_erp_down_while_orders_are_invoiced_books_each_posting_once_when_back(
    client: Client, handoff: Handoff
) -> None:
    settings, engine, sim = handoff.settings, handoff.engine, handoff.sim
    order_id = await completed_order(client, settings, engine)
    await asyncio.to_thread(invoice_directly, engine, 50)
    shown = await details(handoff.dispatcher, "unreachable")
    assert "503 the ERP is down for maintenance" in shown and sim.booked == {}

    sim.control(down=False)
    await all_delivered(engine, 51)
    status = sim.status()
    assert (status["booked"], status["replays"], status["out_of_order"]) == (51, 0, 0)
    assert status["unavailable"] < 50  # it probed the outage, it did not send everything
    invoice = sim.booked[f"{order_id}:invoice:{invoice_no(engine, order_id)}"]
    # 3 x 10.00 to Amsterdam from AMS: 4.95 domestic shipping, 21 % VAT on both
    assert (invoice["amount"], invoice["currency"]) == ("42.29", "EUR")
    data = invoice["data"]
    assert (data["net"], data["tax"], data["gross"]) == ("34.95", "7.34", "42.29")
    assert [(t["category"], t["rate"], t["base"]) for t in data["tax_breakdown"]] == [
        ("S", "21", "34.95")
    ]
    assert [(line["kind"], line["quantity"]) for line in data["lines"]] == [
        ("goods", 3),
        ("shipping", 1),
    ]
    assert invoice["data"]["customer_id"] == "C-WEB-001"
    result = await asyncio.to_thread(reconcile_with_erp, settings)
    assert result["ok"] and result["documents"] == {"invoice": 51}, result
    await details(handoff.dispatcher, "0 pending, 0 dead letter(s).")


async def test_a_refused_posting_is_a_dead_letter_in_the_ui_until_erp_retry(
    client: Client, handoff: Handoff, tmp_path: Path
) -> None:
    engine, sim = handoff.engine, handoff.sim
    order = placed(engine)
    sim.control(down=False, refuse=[order.order_id])
    await asyncio.to_thread(capture, engine, order, authorize(engine, order))
    [posting] = postings_of(engine)
    shown = await details(handoff.dispatcher, f"#{posting.id} order {order.order_id}")
    number = invoice_no(engine, order.order_id)
    assert f"invoice {number} (1 try): 422 refused: the posting contains" in shown
    assert "`orderflow erp retry ID`" in shown

    sim.control(refuse=[])
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_HOME=str(tmp_path / "home"),
        ORDERFLOW_DATABASE_URL=handoff.settings.database_url or "",
    )
    retried = await asyncio.to_thread(orderflow, "erp", "retry", str(posting.id), env=env)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.startswith(f"#{posting.id} {order.order_id} invoice INV-")
    assert "pending again (was refused: 422 refused" in retried.stdout
    await all_delivered(engine, 1)
    await details(handoff.dispatcher, "0 pending, 0 dead letter(s).")

    history = await handoff.dispatcher.fetch_history()
    await Replayer(
        workflows=[ErpDispatcherWorkflow],
        data_converter=client.data_converter,
        workflow_runner=SandboxedWorkflowRunner(),
    ).replay_workflow(history)
