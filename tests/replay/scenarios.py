"""One function per path an order can take, each driving real orders on a live dev server.

A scenario gets a `Lab` (a client, the database, base settings), starts its own worker with
the short SLA knobs it needs (its own task queue), drives its orders through the public
client API (`starter/`) as a person or the warehouse would, checks the path was really
taken, and returns {golden name: workflow id}. `record.py` writes those histories as the
goldens; `test_replay.py` runs the scenarios live and replays them.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from activities.db.models import OrderRecord
from domain.commands import OrderEdit
from domain.holds import ApprovalDecision, RejectionDecision, Tier
from domain.order import Address
from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.inventory import restock
from starter.returns import inspect_return, receive_return, request_return
from tests.factories import ADDRESSES, make_order, net30_customer, new_sku
from tests.gates import GoAhead, held_activity
from tests.workflows.test_payment_waves import IssuerGateway, lapsed
from workers.settings import Settings
from workers.worker import build_worker
from workflows import search
from workflows.receipt import receipt_workflow_id

SHORT = {"return_window": "2s"}  # closes soon after delivery
RETURNS = {"return_window": "10s"}  # time to open an RMA; receipt and inspection may be later
ALL_CARRIERS_DOWN = "PARCELCO,SWIFTPOST,GLOBEX"


@dataclass
class Lab:
    """Where scenarios run: a client of the server, the (seeded) database, base settings."""

    client: Client
    engine: Engine
    base: Settings

    def settings(self, **knobs: Any) -> Settings:
        """The base settings with `knobs` (validated: "2s" works) on a task queue of its own."""
        values = {**self.base.model_dump(), **knobs, "task_queue": f"golden-{uuid.uuid4().hex[:8]}"}
        return Settings(**values)

    @asynccontextmanager
    async def worker(self, settings: Settings, overrides: Any = ()) -> AsyncIterator[Settings]:
        async with build_worker(self.client, settings, self.engine, overrides=list(overrides)):
            yield settings

    async def sku(self, stock: dict[str, int], price: str = "10.00") -> str:
        return await asyncio.to_thread(new_sku, self.engine, stock, price=price)

    async def place(self, settings: Settings, lines: dict[str, int], **extra: Any) -> str:
        order = make_order(lines, **extra)
        await orders.place(self.client, settings, order)
        return order.order_id


Ids = dict[str, str]
SCENARIOS: dict[str, tuple[tuple[str, ...], Callable[[Lab], Awaitable[Ids]]]] = {}


def scenario(*goldens: str) -> Callable[[Callable[[Lab], Awaitable[Ids]]], Any]:
    """Register a scenario under the goldens it produces (the first one names it)."""

    def register(run: Callable[[Lab], Awaitable[Ids]]) -> Callable[[Lab], Awaitable[Ids]]:
        SCENARIOS[goldens[0]] = (goldens, run)
        return run

    return register


async def run(
    lab: Lab, only: set[str] | None = None, timeout: float = 120
) -> tuple[Ids, dict[str, BaseException]]:
    """Run the scenarios (those producing a golden in `only`) concurrently.

    Returns the workflow id of each golden and the failure of each scenario that failed.
    """
    chosen = {n: s for n, s in SCENARIOS.items() if only is None or only & set(s[0])}
    outcomes = await asyncio.gather(
        *(asyncio.wait_for(fn(lab), timeout) for _, fn in chosen.values()),
        return_exceptions=True,
    )
    ids: Ids = {}
    failures: dict[str, BaseException] = {}
    for (name, (goldens, _)), outcome in zip(chosen.items(), outcomes, strict=True):
        if isinstance(outcome, BaseException):
            failures[name] = outcome
        else:
            assert set(outcome) == set(goldens), (name, outcome)
            ids.update({g: i for g, i in outcome.items() if only is None or g in only})
    return ids, failures


async def runs_of(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow, first to latest: an order continues as new once invoiced."""
    latest = await client.get_workflow_handle(workflow_id).fetch_history()
    started = latest.events[0].workflow_execution_started_event_attributes
    run_id: str | None = started.first_execution_run_id
    runs = []
    while run_id:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        runs.append(history)
        last = history.events[-1]
        run_id = None
        if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
    return runs


# --- helpers: what a person or the warehouse does -------------------------------------------


def wid(order_id: str) -> str:
    return search.workflow_id(order_id)


async def ship_and_deliver(lab: Lab, order_id: str) -> None:
    """Every parcel not yet shipped leaves, then every one of them arrives."""
    state = await orders.wait_for(lab.client, order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    parcels = [s.shipment_id for s in state.shipments if not s.shipped]
    for shipment in parcels:
        await orders.notify_shipment(lab.client, order_id, "ship", shipment, "wms")
    await orders.wait_for(lab.client, order_id, OrderStatus.SHIPPED, 30)
    for shipment in parcels:
        await orders.notify_shipment(lab.client, order_id, "deliver", shipment, "carrier")


async def finished(lab: Lab, order_id: str, status: OrderStatus) -> OrderState:
    """The order's workflow has closed with `status`."""
    handle = lab.client.get_workflow_handle(wid(order_id), result_type=OrderState)
    state: OrderState = await asyncio.wait_for(handle.result(), 60)
    assert state.status == status, (order_id, state.status, state.reason)
    return state


async def until(lab: Lab, order_id: str, check: Callable[[OrderState], bool]) -> OrderState:
    """Poll the order's state (a query) until `check` holds."""
    for _ in range(150):
        state = await orders.state_of(lab.client, order_id)
        if check(state):
            return state
        await asyncio.sleep(0.2)
    raise AssertionError(f"{order_id}: condition not met, last status {state.status}")


async def backordered_in_read_model(lab: Lab, order_id: str) -> None:
    """A receipt finds backorders in the read model, written after the workflow's own status."""

    def status() -> str | None:
        with Session(lab.engine) as session:
            record = session.get(OrderRecord, order_id)
            return record.status if record else None

    for _ in range(150):
        if await asyncio.to_thread(status) == OrderStatus.BACKORDERED.value:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{order_id} never showed BACKORDERED in the read model")


async def big_order(lab: Lab, settings: Settings, **extra: Any) -> str:
    """6 x 1000.00: above the manager's threshold, held for approval."""
    sku = await lab.sku({"AMS": 20, "FRA": 20}, price="1000.00")
    order_id = await lab.place(settings, {sku: 6}, price="1000.00", **extra)
    await orders.wait_for(lab.client, order_id, OrderStatus.AWAITING_APPROVAL, 30)
    return order_id


# --- the paths --------------------------------------------------------------------------------


@scenario("happy")
async def happy(lab: Lab) -> Ids:
    async with lab.worker(lab.settings(**SHORT)) as s:
        order_id = await lab.place(s, {await lab.sku({"AMS": 10, "MAD": 10}): 2})
        await ship_and_deliver(lab, order_id)
        await finished(lab, order_id, OrderStatus.COMPLETED)
    return {"happy": wid(order_id)}


@scenario("split")
async def split(lab: Lab) -> Ids:
    async with lab.worker(lab.settings(**SHORT)) as s:
        a, b = await lab.sku({"AMS": 5}), await lab.sku({"FRA": 5})
        order_id = await lab.place(s, {a: 2, b: 1})  # ship when available: split allowed
        await ship_and_deliver(lab, order_id)
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        assert sorted(p.warehouse for p in state.shipments) == ["AMS", "FRA"]
    return {"split": wid(order_id)}


@scenario("backorder-restock", "receipt")
async def backorder_restock(lab: Lab) -> Ids:
    async with lab.worker(lab.settings(**SHORT)) as s:
        sku = await lab.sku({"AMS": 3})
        order_id = await lab.place(s, {sku: 5}, customer="C-ACME")  # ship complete: waits
        await backordered_in_read_model(lab, order_id)
        receipt = f"R-{sku}"
        outcome = await restock(lab.client, s, sku, "AMS", 5, receipt_id=receipt)
        assert outcome.now_reserved == [order_id], outcome
        await ship_and_deliver(lab, order_id)
        await finished(lab, order_id, OrderStatus.COMPLETED)
    return {"backorder-restock": wid(order_id), "receipt": receipt_workflow_id(receipt)}


@scenario("two-waves")
async def two_waves(lab: Lab) -> Ids:
    """Ship when available: what is there ships now, the rest after goods in."""
    async with lab.worker(lab.settings(**SHORT)) as s:
        sku = await lab.sku({"AMS": 2})
        order_id = await lab.place(s, {sku: 3})
        await ship_and_deliver(lab, order_id)
        await backordered_in_read_model(lab, order_id)
        await restock(lab.client, s, sku, "AMS", 5)
        await until(lab, order_id, lambda st: len(st.shipments) == 2)
        await ship_and_deliver(lab, order_id)
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        # Each wave is billed once it is delivered: two captures, each parcel on its invoice.
        assert [s.invoice_no for s in state.shipments] == [c.invoice_no for c in state.captures]
        assert len(state.captures) == 2
    return {"two-waves": wid(order_id)}


@scenario("approval-escalated")
async def approval_escalated(lab: Lab) -> Ids:
    knobs = {"approval_escalate_after": "1s", "approval_expire_after": "1h"}
    async with lab.worker(lab.settings(**SHORT, **knobs)) as s:
        order_id = await big_order(lab, s)
        await until(lab, order_id, lambda st: {h.tier for h in st.holds} == {Tier.DIRECTOR})
        await orders.approve(lab.client, order_id, ApprovalDecision(by="dirk.director"))
        await ship_and_deliver(lab, order_id)
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        assert state.escalation_level == 1
    return {"approval-escalated": wid(order_id)}


@scenario("auto-rejected")
async def auto_rejected(lab: Lab) -> Ids:
    knobs = {"approval_escalate_after": "1s", "approval_expire_after": "3s"}
    async with lab.worker(lab.settings(**knobs)) as s:
        order_id = await big_order(lab, s)
        state = await finished(lab, order_id, OrderStatus.REJECTED)
        assert "ApprovalExpired" in (state.reason or "") and state.escalation_level == 1
    return {"auto-rejected": wid(order_id)}


@scenario("rejected")
async def rejected(lab: Lab) -> Ids:
    async with lab.worker(lab.settings()) as s:
        order_id = await big_order(lab, s)
        decision = RejectionDecision(by="mia.manager", reason="no budget")
        await orders.reject(lab.client, order_id, decision)
        await finished(lab, order_id, OrderStatus.REJECTED)
    return {"rejected": wid(order_id)}


@scenario("invalid")
async def invalid(lab: Lab) -> Ids:
    async with lab.worker(lab.settings()) as s:
        order_id = await lab.place(s, {"NOPE-1": 1}, customer="C-NOBODY")
        await finished(lab, order_id, OrderStatus.REJECTED)
    return {"invalid": wid(order_id)}


@scenario("edited")
async def edited(lab: Lab) -> Ids:
    """Held for 6000.00; cut to 4 units and sent to Frankfurt: validated again, no hold."""
    async with lab.worker(lab.settings(**SHORT)) as s:
        order_id = await big_order(lab, s)
        sku = (await orders.state_of(lab.client, order_id)).lines[0]["sku"]
        change = OrderEdit(lines={sku: 4}, ship_to=Address(**ADDRESSES["DE"]), by="buyer")
        await orders.edit(lab.client, order_id, change)
        await ship_and_deliver(lab, order_id)
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        assert state.total == 4000 and [p.warehouse for p in state.shipments] == ["FRA"]
    return {"edited": wid(order_id)}


@scenario("cancel-intake")
async def cancel_intake(lab: Lab) -> Ids:
    """Cancelled while it is being validated (validation held until the cancel is in)."""
    s, gate = lab.settings(), GoAhead()
    held = held_activity(lab.client, s, lab.engine, "validate_order", gate)
    async with lab.worker(s, [held]):
        order_id = await lab.place(s, {await lab.sku({"AMS": 5}): 1})
        try:
            await gate.reached()
            await orders.cancel(lab.client, order_id, "placed by mistake", "customer")
        finally:
            gate.go()
        await finished(lab, order_id, OrderStatus.CANCELLED)
    return {"cancel-intake": wid(order_id)}


@scenario("cancel-approval")
async def cancel_approval(lab: Lab) -> Ids:
    async with lab.worker(lab.settings()) as s:
        order_id = await big_order(lab, s)
        await orders.cancel(lab.client, order_id, "customer changed their mind", "cs-agent")
        await finished(lab, order_id, OrderStatus.CANCELLED)
    return {"cancel-approval": wid(order_id)}


@scenario("cancel-booking")
async def cancel_booking(lab: Lab) -> Ids:
    """Cancelled while the carrier booking keeps failing: the booking is stopped first."""
    knobs = {"carriers_down": ALL_CARRIERS_DOWN, "booking_attempts": 1000}
    async with lab.worker(lab.settings(**knobs)) as s:
        order_id = await lab.place(s, {await lab.sku({"AMS": 5}): 3})
        await orders.wait_for(lab.client, order_id, OrderStatus.ROUTED, 30)
        await orders.cancel(lab.client, order_id, "found it cheaper", "customer")
        await finished(lab, order_id, OrderStatus.CANCELLED)
    return {"cancel-booking": wid(order_id)}


@scenario("cancel-backordered")
async def cancel_backordered(lab: Lab) -> Ids:
    async with lab.worker(lab.settings()) as s:
        order_id = await lab.place(s, {await lab.sku({"AMS": 1}): 3}, customer="C-ACME")
        await orders.wait_for(lab.client, order_id, OrderStatus.BACKORDERED, 30)
        await orders.cancel(lab.client, order_id, "cannot wait", "customer")
        await finished(lab, order_id, OrderStatus.CANCELLED)
    return {"cancel-backordered": wid(order_id)}


@scenario("cancel-booked")
async def cancel_booked(lab: Lab) -> Ids:
    async with lab.worker(lab.settings()) as s:
        order_id = await lab.place(s, {await lab.sku({"FRA": 5}): 2}, country="DE")
        await orders.wait_for(lab.client, order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.cancel(lab.client, order_id, "address moved", "cs-agent")
        state = await finished(lab, order_id, OrderStatus.CANCELLED)
        assert [e.what for e in state.events if e.what.startswith("compensated")] == [
            "compensated: void_labels",
            "compensated: release_inventory",
            "compensated: void_authorization",
        ]
    return {"cancel-booked": wid(order_id)}


@scenario("carrier-fallback")
async def carrier_fallback(lab: Lab) -> Ids:
    async with lab.worker(lab.settings(carriers_down="PARCELCO", **SHORT)) as s:
        order_id = await lab.place(s, {await lab.sku({"AMS": 5}): 1})
        await ship_and_deliver(lab, order_id)
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        [parcel] = state.shipments
        assert parcel.carrier != "PARCELCO" and parcel.failed_carriers, parcel
    return {"carrier-fallback": wid(order_id)}


@scenario("failed")
async def failed(lab: Lab) -> Ids:
    """No carrier books it within the attempts: FAILED, everything undone."""
    async with lab.worker(lab.settings(carriers_down=ALL_CARRIERS_DOWN, booking_attempts=2)) as s:
        order_id = await lab.place(s, {await lab.sku({"AMS": 5}): 2})
        state = await finished(lab, order_id, OrderStatus.FAILED)
        assert "NoCarrierAvailable" in (state.reason or "")
    return {"failed": wid(order_id)}


@scenario("lost")
async def lost(lab: Lab) -> Ids:
    """Shipped, lost by the carrier: nothing billed, the authorisation voided, it closes."""
    async with lab.worker(lab.settings(**SHORT)) as s:
        order_id = await lab.place(s, {await lab.sku({"AMS": 5}): 1})
        await orders.wait_for(lab.client, order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.notify_shipment(lab.client, order_id, "ship", None, "wms")
        await orders.wait_for(lab.client, order_id, OrderStatus.SHIPPED, 30)
        await orders.notify_shipment(lab.client, order_id, "lost", None, "ops")
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        assert state.capture is None
    return {"lost": wid(order_id)}


@scenario("payment-refused")
async def payment_refused(lab: Lab) -> Ids:
    """Delivered after the card's authorisation lapsed, the renewal declined, finance rejects
    the PAYMENT hold: delivered, not billed (the path where a patch was once asked late)."""
    settings = lab.settings(card_authorization_valid_for="2s", **SHORT)
    issuer = IssuerGateway(
        latency_ms=(1, 5), authorization_valid_for=settings.card_authorization_valid_for
    )
    async with lab.worker(settings, [issuer.authorize_payment(lab.engine, settings)]) as s:
        order_id = await lab.place(s, {await lab.sku({"FRA": 2}): 2}, country="DE")
        await orders.wait_for(lab.client, order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.notify_shipment(lab.client, order_id, "ship", None, "wms")
        await until(lab, order_id, lapsed)
        issuer.declining = True
        await orders.notify_shipment(lab.client, order_id, "deliver", None, "carrier")
        await until(lab, order_id, lambda st: st.status == OrderStatus.AWAITING_APPROVAL)
        refusal = RejectionDecision(by="fiona.finance", reason="card blocked")
        await orders.reject(lab.client, order_id, refusal)
        state = await finished(lab, order_id, OrderStatus.COMPLETED)
        said = [e.what for e in state.events]
        assert not state.captures and "delivered, not billed: payment refused" in said, said
    return {"payment-refused": wid(order_id)}


async def returned(lab: Lab, order_id: str, sku: str, dispositions: list[Disposition]) -> str:
    """Delivered; an RMA for len(dispositions) units of `sku`, received, inspected, refunded."""
    await ship_and_deliver(lab, order_id)
    await orders.wait_for(lab.client, order_id, OrderStatus.COMPLETED, 30)
    request = ReturnRequest(lines={sku: len(dispositions)}, reason="not needed")
    rma = await request_return(lab.client, order_id, request)
    await receive_return(lab.client, rma.rma_id)
    lines = [InspectionLine(sku=sku, quantity=1, disposition=d) for d in dispositions]
    refund = await inspect_return(lab.client, InspectionRequest(rma_id=rma.rma_id, lines=lines))
    await finished(lab, order_id, OrderStatus.REFUNDED)
    return refund.reference


@scenario("return-partial-refund")
async def return_partial_refund(lab: Lab) -> Ids:
    """1 + 3 units delivered; 2 come back, one restocked, one disposed: 20.00 of 40.00."""
    async with lab.worker(lab.settings(**RETURNS)) as s:
        keep, back = await lab.sku({"AMS": 10}), await lab.sku({"AMS": 10})
        order_id = await lab.place(s, {keep: 1, back: 3})
        await returned(lab, order_id, back, [Disposition.RESTOCK, Disposition.DISPOSE])
    return {"return-partial-refund": wid(order_id)}


@scenario("credit-note")
async def credit_note(lab: Lab) -> Ids:
    """A Net-30 account was invoiced, not charged: its refund is a credit note (CN-...)."""
    async with lab.worker(lab.settings(**RETURNS)) as s:
        customer = await asyncio.to_thread(net30_customer, lab.engine, "5000")
        sku = await lab.sku({"AMS": 10})
        order_id = await lab.place(s, {sku: 3}, customer=customer)
        reference = await returned(lab, order_id, sku, [Disposition.RESTOCK])
        assert reference.startswith("CN-"), reference
    return {"credit-note": wid(order_id)}


GOLDENS = [golden for goldens, _ in SCENARIOS.values() for golden in goldens]
"""Every golden the scenarios make, in the order above."""
