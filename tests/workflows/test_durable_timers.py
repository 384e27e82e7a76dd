"""Timers are durable: kill the worker and the dev server while an order waits for approval,
start them again, and the escalation still fires at the right time."""

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from activities.db.models import Notification, OrderEvent
from domain.holds import ApprovalDecision, Tier
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.stack import dev_server, free_ports
from tests.factories import make_order, new_sku, steps_of
from tests.worker_process import Process, kill, start_worker
from workers.client import connect
from workers.codec import payload_env
from workers.settings import Settings
from workflows import search

ESCALATE_AFTER = timedelta(seconds=8)
SLACK = timedelta(seconds=6)  # a workflow task after a restart may wait for the new worker


class Server:
    """The file-backed dev server of `starter.stack`, started and stopped off the event loop."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._running: contextlib.AbstractContextManager[Any] | None = None

    async def start(self) -> None:
        running = dev_server(self.settings, ui=False)
        await asyncio.to_thread(running.__enter__)  # blocks until the port answers
        self._running = running

    async def stop(self) -> None:
        running, self._running = self._running, None
        if running is not None:
            await asyncio.to_thread(running.__exit__, None, None, None)


async def connect_when_up(settings: Settings, timeout: float = 30) -> Client:
    """A client once the frontend answers and the namespace serves requests."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            client = await connect(settings)
            await client.count_workflows()
            return client
        except (RuntimeError, RPCError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.25)


async def poll_state(
    client: Client, order_id: str, done: Callable[[OrderState], bool], timeout: float
) -> OrderState:
    """The state once `done(state)` holds; query errors while a worker starts are retried."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            state = await orders.state_of(client, order_id)
            if done(state):
                return state
        except RPCError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"order {order_id} did not get there within {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def wait_for_timer(client: Client, order_id: str, timeout: float = 20) -> datetime:
    """When the approval SLA timer was started, once it is in the history (the hold really
    is waiting)."""
    handle = client.get_workflow_handle(search.workflow_id(order_id))
    deadline = time.monotonic() + timeout
    while True:
        history = await handle.fetch_history()
        for event in history.events:
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                return event.event_time.ToDatetime(tzinfo=UTC)
        if time.monotonic() > deadline:
            raise TimeoutError(f"order {order_id}: no approval timer after {timeout:.0f}s")
        await asyncio.sleep(0.1)


def notices(engine: Engine, order_id: str) -> list[str]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(Notification.kind)
                .where(Notification.order_id == order_id)
                .order_by(Notification.id)
            )
        )


def recorded_at(engine: Engine, order_id: str, step: str) -> datetime:
    with Session(engine) as session:
        at = session.scalar(
            select(OrderEvent.at).where(OrderEvent.order_id == order_id, OrderEvent.step == step)
        )
    assert at is not None, f"no {step} for {order_id}"
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def log_tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


async def test_escalation_fires_on_time_after_worker_and_server_restart(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    began = time.monotonic()
    port, ui_port = free_ports(2)
    settings = Settings(
        home=tmp_path / "state",
        temporal_port=port,
        temporal_ui_port=ui_port,
        temporal_address=f"127.0.0.1:{port}",
        task_queue=f"timers-{uuid.uuid4().hex[:8]}",
        database_url=database_url,
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERFLOW_")}
    env.update(
        ORDERFLOW_HOME=str(tmp_path / "worker-home"),
        ORDERFLOW_TEMPORAL_ADDRESS=settings.resolved_temporal_address,
        ORDERFLOW_DATABASE_URL=database_url,
        ORDERFLOW_TASK_QUEUE=settings.task_queue,
        ORDERFLOW_APPROVAL_ESCALATE_AFTER="8s",
        ORDERFLOW_APPROVAL_EXPIRE_AFTER="1h",
        ORDERFLOW_CARRIER_LATENCY_MS="1-5",
        **payload_env(settings),  # the test's client and the worker process share keys
    )
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order = make_order({sku: 6}, price="1000.00")  # 6000 > manager threshold: AMOUNT hold
    server = Server(settings)
    worker: Process | None = None
    try:
        await server.start()
        worker = await start_worker(env, tmp_path / "worker-1.log")
        client = await connect_when_up(settings)
        await orders.place(client, settings, order)
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
        timer_at = await wait_for_timer(client, order.order_id)

        await kill(worker)
        await server.stop()
        down_at = time.time()
        await asyncio.sleep(2)
        await server.start()  # same home (temporal.db), same port
        worker = await start_worker(env, tmp_path / "worker-2.log")
        client = await connect_when_up(settings)
        back_in = time.time() - down_at

        escalated = await poll_state(
            client,
            order.order_id,
            lambda s: s.escalation_level >= 1 and all(h.tier == Tier.DIRECTOR for h in s.holds),
            timeout=30,
        )
        hold_at = next(e.at for e in escalated.events if e.status == OrderStatus.AWAITING_APPROVAL)
        breach_at = await asyncio.to_thread(recorded_at, engine, order.order_id, "escalation-1")
        # Measured from the timer itself (its start event in the history) to the escalation's
        # line in the read model (the database's clock when it was written). Not from the
        # workflow's own audit entry: after a worker restart, the first activation can carry
        # the previous workflow task's time (workflow.now()), seconds early.
        delta = breach_at - timer_at
        print([(e.at.isoformat(), e.status.value, e.what[:50]) for e in escalated.events])
        print(
            f"\n{engine.dialect.name}: down for {back_in:.1f}s; "
            f"hold -> escalation {delta.total_seconds():.2f}s"
        )
        assert down_at < (hold_at + ESCALATE_AFTER).timestamp()  # still pending when all went down
        assert ESCALATE_AFTER <= delta <= ESCALATE_AFTER + SLACK, delta
        assert escalated.escalation_level == 1
        assert [h.tier for h in escalated.holds] == [Tier.DIRECTOR]
        assert escalated.status == OrderStatus.AWAITING_APPROVAL  # expiry is an hour away
        sent = await asyncio.to_thread(notices, engine, order.order_id)
        assert sent == ["approval_needed", "escalated"]  # once each, despite the restart

        answer = await orders.approve(client, order.order_id, ApprovalDecision(by="dirk.director"))
        assert answer == "released AMOUNT"
        state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        assert state.status == OrderStatus.AWAITING_SHIPMENT
        assert state.holds[0].released_by == "dirk.director"
        steps = await asyncio.to_thread(steps_of, engine, order.order_id)
        assert steps.count("escalation-1") == 1
    except BaseException:
        print(log_tails(sorted(tmp_path.glob("worker-*.log"))))
        print(log_tails([settings.home / "temporal.log"]))
        raise
    finally:
        await kill(worker)
        await server.stop()
    print(f"{engine.dialect.name}: test took {time.monotonic() - began:.1f}s")


async def test_dev_server_starts_with_a_fresh_home(tmp_path: Path) -> None:
    port, ui_port = free_ports(2)
    settings = Settings(
        home=tmp_path / "fresh" / "state", temporal_port=port, temporal_ui_port=ui_port
    )
    server = Server(settings)
    try:
        await server.start()
        assert (settings.home / "temporal.db").exists()
    finally:
        await server.stop()
