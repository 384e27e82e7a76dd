"""Calls to the outside world (payment gateway, carriers) run local first: inside the workflow
task while the other side answers, as an ordinary activity (retrying without growing the
history) once it stays away."""

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.payments import PaymentActivities, SimulatedGateway
from domain.statuses import OrderStatus
from starter import orders
from tests.factories import make_order, new_sku
from tests.gates import GoAhead, assert_invariants, held_activity
from workers.settings import Settings
from workers.worker import build_worker, money_rules


class AwayGateway(SimulatedGateway):
    """Times out on the first `away` authorisations, then answers."""

    def __init__(self, away: int) -> None:
        super().__init__(latency_ms=(0, 0))
        self.away = away
        self.calls = 0

    def authorize(self, key: str, amount: Decimal, currency: str) -> str:
        self.calls += 1
        if self.calls <= self.away:
            raise ConnectionError("payment gateway timed out")
        return super().authorize(key, amount, currency)


async def steps_of(client: Client, order_id: str) -> tuple[list[str], int]:
    """The ordinary activities the order scheduled, and how many local ones it recorded."""
    history = await client.get_workflow_handle(f"order-{order_id}").fetch_history()
    scheduled: list[str] = []
    local = 0
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.append(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            local += event.marker_recorded_event_attributes.marker_name == "core_local_activity"
    return scheduled, local


async def placed_with(
    client: Client, settings: Settings, engine: Engine, gateway: SimulatedGateway
) -> Any:
    payments = PaymentActivities(engine, gateway, money_rules(settings))
    order = make_order({new_sku(engine, {"AMS": 5}): 1})
    async with build_worker(client, settings, engine, overrides=[payments.authorize_payment]):
        await orders.place(client, settings, order)
        state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 60)
        await orders.cancel(client, order.order_id, "test done", "cs")
        await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 30)
    return order, state


async def test_answering_gateway_and_carriers_are_called_inside_the_workflow_task(
    client: Client, settings: Settings, engine: Engine
) -> None:
    order, state = await placed_with(client, settings, engine, AwayGateway(away=0))
    assert state.payment is not None and state.payment.reference.startswith("auth_")
    scheduled, local = await steps_of(client, order.order_id)
    assert scheduled == ["void_labels"]  # a compensation that heartbeats: ordinary
    assert local >= 3  # ... and among them authorise, book, void
    await assert_invariants(client, settings, engine)


async def test_a_gateway_that_stays_away_moves_the_step_to_an_ordinary_activity(
    client: Client, settings: Settings, engine: Engine
) -> None:
    gateway = AwayGateway(away=4)  # 3 quick local attempts fail, then 1 ordinary one
    order, state = await placed_with(client, settings, engine, gateway)
    assert state.payment is not None and gateway.calls == 5
    scheduled, _ = await steps_of(client, order.order_id)
    assert scheduled.count("authorize_payment") == 1  # retried there, one scheduled event
    await assert_invariants(client, settings, engine)


@pytest.mark.settings(carriers_down="PARCELCO,SWIFTPOST,GLOBEX", booking_attempts=3)
async def test_carriers_that_stay_away_spend_the_booking_budget_then_the_order_fails(
    client: Client, settings: Settings, engine: Engine
) -> None:
    order = make_order({new_sku(engine, {"AMS": 5}): 1})
    async with build_worker(client, settings, engine):
        await orders.place(client, settings, order)
        done = await orders.wait_for(client, order.order_id, OrderStatus.FAILED, 60)
    assert done.reason is not None and "gave up after 3 attempts" in done.reason
    history = await client.get_workflow_handle(f"order-{order.order_id}").fetch_history()
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
    ]
    scheduled, _ = await steps_of(client, order.order_id)
    assert scheduled.count("book_shipments") == 1
    assert max(attempts) == 2  # one quick local attempt + two ordinary ones: the budget of 3
    await assert_invariants(client, settings, engine)


async def test_a_cancel_during_the_quick_local_booking_stops_the_order(
    client: Client, settings: Settings, engine: Engine
) -> None:
    gate = GoAhead()
    booking = held_activity(client, settings, engine, "book_shipments", gate)
    order = make_order({new_sku(engine, {"AMS": 5}): 1})
    async with build_worker(client, settings, engine, overrides=[booking]):
        await orders.place(client, settings, order)
        await gate.reached()  # the quick local attempt is buying the label
        # Accepted while the attempt still runs (the worker answers between heartbeats of
        # the workflow task that waits for it) ...
        answer = await orders.cancel(client, order.order_id, "changed my mind", "customer")
        assert answer.startswith("cancelling")
        gate.go()  # ... which then finishes: what it bought is voided by the cancel
        done = await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 60)
    scheduled, _ = await steps_of(client, order.order_id)
    assert "book_shipments" not in scheduled  # not booked again as an ordinary activity
    assert done.status == OrderStatus.CANCELLED
    await assert_invariants(client, settings, engine)  # no live label, no stock held
