"""The worker SIGKILLed mid-reservation and restarted: no double reservation and no leaked one."""

import asyncio
import random
import time
from asyncio.subprocess import Process
from pathlib import Path

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import OrderEvent, Stock, StockReservation
from domain.order import Order
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from tests.factories import make_order, new_sku
from tests.worker_process import kill, start_worker, worker_env
from workers.settings import Settings
from workflows import search

ORDERS = 20
KILLS = 2


def decided(engine: Engine, ids: list[str]) -> int:
    """Orders whose reservation step has an outcome: held/backordered, or closed."""
    with Session(engine) as session:
        return (
            session.scalar(
                select(func.count(func.distinct(OrderEvent.order_id))).where(
                    OrderEvent.order_id.in_(ids), OrderEvent.step.in_(["reserve-0", "closed"])
                )
            )
            or 0
        )


async def wait_for_progress(engine: Engine, ids: list[str], past: int, timeout: float) -> int:
    """Return once more than `past` orders are decided (or all are, or time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        now = await asyncio.to_thread(decided, engine, ids)
        if now > past or now == len(ids) or time.monotonic() > deadline:
            return now
        await asyncio.sleep(0.02)


async def ready(process: Process, log: Path, timeout: float = 60) -> None:
    """Until the worker says it polls its task queue."""
    deadline = time.monotonic() + timeout
    while b"worker on task queue" not in log.read_bytes():
        assert process.returncode is None, f"the worker exited: {log.read_text()[-2000:]}"
        assert time.monotonic() < deadline, "the worker did not start polling"
        await asyncio.sleep(0.05)


async def place_slowly(client: Client, settings: Settings, batch: list[Order]) -> None:
    for order in batch:
        await orders.place(client, settings, order)
        await asyncio.sleep(random.uniform(0.05, 0.2))


def assert_books_balance(engine: Engine, placed: list[Order], states: list[OrderState]) -> None:
    skus = sorted({line.sku for order in placed for line in order.lines})
    with Session(engine) as session:
        reservations = list(
            session.scalars(select(StockReservation).where(StockReservation.sku.in_(skus)))
        )
        stock = list(session.scalars(select(Stock).where(Stock.sku.in_(skus))))
    held: dict[str, dict[str, int]] = {}
    at: dict[tuple[str, str], int] = {}
    for r in reservations:
        if r.state == "HELD":
            per_order = held.setdefault(r.order_id, {})
            per_order[r.sku] = per_order.get(r.sku, 0) + r.quantity
            at[(r.sku, r.warehouse)] = at.get((r.sku, r.warehouse), 0) + r.quantity
    for order, state in zip(placed, states, strict=True):
        if not state.status.is_final:
            wanted = {line.sku: line.quantity for line in order.lines}
            assert held.get(order.order_id) == wanted, (order.order_id, held.get(order.order_id))
            assert state.allocation is not None
            in_workflow: dict[str, int] = {}
            for hold in state.allocation.reservations:
                in_workflow[hold.sku] = in_workflow.get(hold.sku, 0) + hold.quantity
            assert in_workflow == wanted, order.order_id
        else:  # refused for want of stock: whatever it held must have been given back
            assert "OutOfStock" in (state.reason or ""), (order.order_id, state.reason)
            assert order.order_id not in held, (order.order_id, held[order.order_id])
    assert set(held) <= {o.order_id for o in placed}
    for row in stock:
        assert row.reserved == at.get((row.sku, row.warehouse), 0), (row.sku, row.warehouse)
        assert row.on_hand - row.reserved - row.safety_stock >= 0, (row.sku, row.warehouse)
    keys = [r.idempotency_key for r in reservations]
    assert len(keys) == len(set(keys))


async def reserve_attempts(client: Client, order_id: str) -> int:
    """How often the order's reserve_inventory was started (more than once: a kill hit it)."""
    history = await client.get_workflow_handle(search.workflow_id(order_id)).fetch_history()
    reserve: set[int] = set()
    attempts = 0
    for event in history.events:
        if event.HasField("activity_task_scheduled_event_attributes"):
            scheduled = event.activity_task_scheduled_event_attributes
            if scheduled.activity_type.name == "reserve_inventory":
                reserve.add(event.event_id)
        elif event.HasField("activity_task_started_event_attributes"):
            started = event.activity_task_started_event_attributes
            if started.scheduled_event_id in reserve:
                attempts = max(attempts, started.attempt)
    return attempts


def log_tails(logs: list[Path]) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs)


async def test_killed_worker_neither_doubles_nor_leaks_reservations(
    client: Client, settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    began = time.monotonic()
    scarce = new_sku(engine, {"AMS": 12, "FRA": 6}, safety=1)  # 16 sellable units
    plenty = new_sku(engine, {"AMS": 8, "MAD": 20})
    placed = [
        make_order(
            {scarce: random.randint(1, 2), **({plenty: 1} if i % 3 == 0 else {})},
            fulfilment_policy="reject",
        )
        for i in range(ORDERS)
    ]
    ids = [o.order_id for o in placed]
    env = worker_env(client, settings, tmp_path / "home")
    logs = [tmp_path / f"worker-{n}.log" for n in range(KILLS + 1)]
    kill_points: list[int] = []

    process = await start_worker(env, logs[0])
    # Orders arrive while the worker runs, not as a backlog it would clear before the first
    # kill (it did, once its steps got fast: every order decided before the plug was pulled).
    await ready(process, logs[0])
    placing = asyncio.create_task(place_slowly(client, settings, placed))
    try:
        for n in range(KILLS):
            # let this worker get going (decide another order), then pull the plug on it
            await wait_for_progress(engine, ids, kill_points[-1] if n else 0, timeout=20)
            await asyncio.sleep(random.uniform(0.02, 0.3))
            await kill(process)
            kill_points.append(await asyncio.to_thread(decided, engine, ids))
            process = await start_worker(env, logs[n + 1])
        await placing
        # ROUTED, not AWAITING_SHIPMENT: the reservation is settled once routed, and a
        # booking cut off by a kill is only retried after its 2-minute start-to-close timeout.
        states = await asyncio.gather(
            *(orders.wait_for(client, i, OrderStatus.ROUTED, 50) for i in ids)
        )
        assert_books_balance(engine, placed, states)
    except BaseException:
        print(log_tails(logs))
        raise
    finally:
        placing.cancel()
        await kill(process)

    accepted = sum(not s.status.is_final for s in states)
    attempts = await asyncio.gather(*(reserve_attempts(client, i) for i in ids))
    retried = sum(n > 1 for n in attempts)
    assert 0 < kill_points[0] < ORDERS, kill_points  # the first kill hit a run in progress
    assert 0 < accepted < ORDERS  # some got the scarce units, some were refused
    print(
        f"\n{engine.dialect.name}: killed with {kill_points} of {ORDERS} orders decided; "
        f"{accepted} accepted; {retried} reservations re-run after a kill; "
        f"{time.monotonic() - began:.1f}s"
    )
