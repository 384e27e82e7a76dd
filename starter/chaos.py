"""Random schedules: many orders, each sent a seeded random mix of everything people and
systems send (nonsense and duplicates included), while worker processes are SIGKILLed.

Reproducible from its seed (the schedules, not the timing of a real server). At the end
every order must be finished or idle waiting for a person, no workflow task may be failing,
and `orderflow check` must report nothing. Used by `orderflow chaos` and by the test suite.
"""

import asyncio
import random
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import Engine
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.service import RPCError

from activities.catalog import load_catalog
from domain.order import Order
from starter import orders
from starter.check import check_orders
from starter.inventory import restock
from starter.orders import UserError
from starter.stack import WorkerPool, worker_env
from workers.settings import Settings
from workflows import search

APPROVERS = ("mia.manager", "dirk.director", "rob.review", "fiona.finance", "j.buyer", "eve")
CUSTOMERS = ("C-WEB-001", "C-ACME", "C-MKT", "C-SMALL")
ADDRESS = {
    "name": "Anna de Vries",
    "street": "Prinsengracht 263",
    "city": "Amsterdam",
    "postal_code": "1016 GV",
    "country": "NL",
}
# Short SLAs so that every timer path (escalation, expiry, return window) runs in a minute.
CHAOS_SLAS = {
    "ORDERFLOW_APPROVAL_ESCALATE_AFTER": "3s",
    "ORDERFLOW_APPROVAL_EXPIRE_AFTER": "15s",
    "ORDERFLOW_SHIP_ESCALATE_AFTER": "6s",
    "ORDERFLOW_DELIVERY_GRACE": "6s",
    "ORDERFLOW_BACKORDER_EXPIRE_AFTER": "10s",
    "ORDERFLOW_RETURN_WINDOW": "12s",
    "ORDERFLOW_RMA_EXPIRE_AFTER": "6s",
    "ORDERFLOW_REFUND_ESCALATE_AFTER": "4s",
    "ORDERFLOW_CARRIER_LATENCY_MS": "1-10",
    "ORDERFLOW_CARRIER_FAILURE_RATE": "0.1",
}
# What people and systems send, and how often, relative to each other.
KINDS = {
    "approve": 4, "approve_signal": 2, "reject": 1, "edit": 3, "cancel": 1, "ship": 4,
    "deliver": 4, "lost": 1, "restock": 2, "return": 2, "receive": 2, "inspect": 2,
    "nonsense": 2, "repeat": 2,
}  # fmt: skip


class ChaosReport(BaseModel):
    """What ran and what it found."""

    seed: int
    orders: int
    commands: dict[str, int] = Field(default_factory=dict)
    answers: dict[str, int] = Field(default_factory=dict)
    kills: int = 0
    final: dict[str, int] = Field(default_factory=dict)
    busy: list[str] = Field(default_factory=list)
    violations: list[dict[str, Any]] = Field(default_factory=list)
    exceptions: list[dict[str, Any]] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations and not self.busy


async def run_chaos(
    client: Client,
    settings: Settings,
    engine: Engine,
    address: str,
    *,
    seed: int,
    count: int,
    duration: float,
    workers: int = 2,
    kill_every: float = 8.0,
    settle: float = 90.0,
    log: Path,
) -> ChaosReport:
    """Place `count` orders, send random commands for `duration` seconds while killing a worker
    every `kill_every` seconds, let everything settle, then audit."""
    rng = random.Random(seed)
    report = ChaosReport(seed=seed, orders=count)
    pool = WorkerPool(
        worker_env(
            settings,
            address=address,
            keep_user_settings=False,
            extra={**CHAOS_SLAS, "ORDERFLOW_ACTIVITY_THREADS": "8"},
        ),
        workers,
        log,
    )
    pool.fill()
    try:
        placed = [_order(rng, engine, i) for i in range(count)]
        for order, _sku in placed:
            await orders.place(client, settings, order)
        sent: Counter[str] = Counter()
        answers: Counter[str] = Counter()
        schedules = [
            _schedule(rng.randrange(2**32), client, settings, order, sku, duration, sent, answers)
            for order, sku in placed
        ]
        killer = asyncio.ensure_future(_kill_now_and_then(rng, pool, duration, kill_every, report))
        await asyncio.gather(*schedules)
        await killer
        pool.fill()
        report.busy = await _settle(client, [o.order_id for o, _ in placed], settle)
        report.commands, report.answers = dict(sent), dict(answers)
        for order, _ in placed:
            try:
                status = (
                    await asyncio.wait_for(orders.state_of(client, order.order_id), 20)
                ).status.value
            except (TimeoutError, RPCError):
                status = "NO_ANSWER"  # a wedged workflow does not answer queries
                report.busy.append(order.order_id)
            report.final[status] = report.final.get(status, 0) + 1
        audit = await check_orders(
            client, settings, engine, task_queue=settings.task_queue, replay=True
        )
        report.violations, report.exceptions = audit["violations"], audit["exceptions"]
    finally:
        pool.stop()
    return report


def _order(rng: random.Random, engine: Engine, n: int) -> tuple[Order, str]:
    """An order for a SKU of its own, scarce enough that some wait for restocks."""
    tag = uuid.uuid4().hex[:8]
    sku = f"CH-{tag.upper()}"
    price = rng.choice(["0.00", "9.90", "49.90", "1200.00"])
    load_catalog(
        engine,
        {
            "products": [
                {"sku": sku, "name": "chaos item", "list_price": price, "currency": "EUR"}
            ],
            "stock": [{"sku": sku, "warehouse": "AMS", "on_hand": rng.choice([0, 2, 5, 20])}],
        },
    )
    order = Order.model_validate(
        {
            "order_id": f"chaos-{n}-{tag}",
            "channel": "web",
            "customer_id": rng.choice(CUSTOMERS),
            "currency": "EUR",
            "lines": [{"sku": sku, "quantity": rng.randint(1, 6), "unit_price": price}],
            "ship_to": ADDRESS,
            "promised_days": 5,
            "purchase_order": f"PO-{tag}",
            "manual_review": rng.random() < 0.3,
            "submitted_by": rng.choice([None, "j.buyer"]),
        }
    )
    return order, sku


async def _schedule(
    seed: int,
    client: Client,
    settings: Settings,
    order: Order,
    sku: str,
    duration: float,
    sent: Counter[str],
    answers: Counter[str],
) -> None:
    rng = random.Random(seed)
    handle = client.get_workflow_handle(search.workflow_id(order.order_id))
    deadline = time.monotonic() + duration
    last: tuple[str, Any] | None = None
    while time.monotonic() < deadline:
        await asyncio.sleep(rng.uniform(0.05, 1.5))
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        if kind == "repeat" and last is not None:
            kind, payload = last
        else:
            payload = _payload(rng, kind, order, sku)
        last = (kind, payload)
        sent[kind] += 1
        answer = await _send(client, settings, handle, kind, payload, sku)
        answers[answer] += 1
        if answer == "closed":
            return  # the order's workflow has finished: nothing more reaches it


def _payload(rng: random.Random, kind: str, order: Order, sku: str) -> Any:
    by = rng.choice(APPROVERS)
    if kind in ("approve", "approve_signal"):
        return {"by": by, "hold": rng.choice([None, None, "AMOUNT", "MANUAL_REVIEW", "PRICE"])}
    if kind == "reject":
        return {"by": by, "reason": "chaos says no"}
    if kind == "edit":
        return {"lines": {rng.choice([sku, sku, "NOPE"]): rng.randint(-1, 8)}, "by": "customer"}
    if kind == "cancel":
        return {"reason": "changed my mind", "by": "customer"}
    if kind in ("ship", "deliver", "lost"):
        return {"shipment_id": rng.choice([None, None, f"{order.order_id}-AMS", "bogus"])}
    if kind == "restock":
        return rng.randint(1, 6)
    if kind == "return":
        return {"lines": {sku: rng.randint(1, 3)}, "reason": "chaos return"}
    if kind in ("receive", "inspect"):
        return f"RMA-{order.order_id}-{rng.randint(1, 2)}"
    # nonsense: a message with no payload or the wrong shape
    return rng.choice(
        [("ship", None), ("approve_signal", None), ("approve", {"by": 7}), ("edit", [1, 2])]
    )


async def _send(
    client: Client, settings: Settings, handle: Any, kind: str, payload: Any, sku: str
) -> str:
    """Send one command; the answer's kind ("accepted", "refused", ...)."""
    try:
        if kind == "restock":
            await restock(client, settings, sku, "AMS", payload)
            return "accepted"
        if kind == "nonsense":
            name, body = payload
            if name in ("ship", "approve_signal"):
                await handle.signal(name, *([] if body is None else [body]))
                return "signalled"
            await asyncio.wait_for(handle.execute_update(name, body), 20)
            return "accepted"
        if kind in ("approve_signal", "ship", "deliver", "lost"):
            await handle.signal(kind, payload)
            return "signalled"
        name = {"return": "request_return", "receive": "receive_return"}.get(kind, kind)
        if kind == "inspect":
            verdict = {"sku": sku, "quantity": 1, "disposition": "restock"}
            payload = {"rma_id": payload, "lines": [verdict]}
        await asyncio.wait_for(handle.execute_update(name, payload), 20)
        return "accepted"
    except (WorkflowUpdateFailedError, UserError):
        return "refused"
    except RPCError:
        return "closed"
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        # No worker answered within 20 s (one was just killed): the Update stays queued in
        # Temporal and is applied when a worker comes back; the sender moves on.
        return "no-answer-yet"


async def _kill_now_and_then(
    rng: random.Random, pool: WorkerPool, duration: float, every: float, report: ChaosReport
) -> None:
    deadline = time.monotonic() + duration
    while time.monotonic() + every < deadline:
        await asyncio.sleep(rng.uniform(every / 2, every * 1.5))
        pool.kill_one(rng)
        report.kills += 1
        pool.fill()


async def _settle(client: Client, order_ids: list[str], limit: float) -> list[str]:
    """Wait until no order has work in flight; the ids of those still busy at the limit."""
    deadline = time.monotonic() + limit
    while True:
        busy = []
        for order_id in order_ids:
            handle = client.get_workflow_handle(search.workflow_id(order_id))
            described = (await handle.describe()).raw_description
            if described.pending_activities or described.HasField("pending_workflow_task"):
                busy.append(order_id)
        if not busy or time.monotonic() > deadline:
            return busy
        await asyncio.sleep(1)
