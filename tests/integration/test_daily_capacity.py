"""A warehouse ships at most its daily capacity of orders, however many reserve at once.

Reservations of different SKUs lock different stock rows, so nothing but the capacity check
stands between two of them and the last slot of the day."""

import threading
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities import inventory
from activities.db.models import Stock, WarehouseLoad, utcnow
from activities.invariants import check_database
from activities.inventory import InventoryActivities
from domain.fulfilment import AllocationResult
from domain.routing import DEFAULT_RULES, plan_fulfilment
from domain.statuses import FulfilmentPolicy
from domain.steps import ReserveRequest, ShipmentEvent
from tests.factories import make_order, new_sku, new_warehouse
from tests.integration.test_inventory_concurrency import DESTINATION, held, race

GATE_TIMEOUT = 30


def request_for(lines: dict[str, int]) -> ReserveRequest:
    """A reservation of an order of these lines (SKU: units), shipped to Amsterdam."""
    assert DESTINATION is not None
    return ReserveRequest(
        order=make_order(lines),
        destination=DESTINATION,
        promised_days=5,
        policy=FulfilmentPolicy.SHIP_WHEN_AVAILABLE,
    )


def at(engine: Engine, warehouse: str, skus: list[str]) -> set[str]:
    """The orders holding stock at `warehouse`."""
    return {
        order_id
        for sku in skus
        for order_id, per_warehouse in held(engine, sku).items()
        if warehouse in per_warehouse
    }


def test_twenty_orders_of_twenty_skus_at_once_fill_the_capacity_and_no_more(
    engine: Engine,
) -> None:
    warehouse = new_warehouse(engine, capacity=5)
    skus = [new_sku(engine, {warehouse: 3}) for _ in range(20)]  # only there: the rest wait

    outcomes = race(engine, [request_for({sku: 1}) for sku in skus])

    assert all(isinstance(o, AllocationResult) for o in outcomes), outcomes
    filled = [o for o in outcomes if isinstance(o, AllocationResult) and o.reservations]
    waiting = [o for o in outcomes if isinstance(o, AllocationResult) and o.backordered]
    assert len(filled) == 5 and len(waiting) == 15
    assert len(at(engine, warehouse, skus)) == 5


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_the_last_slot_taken_while_an_order_was_routing_sends_it_elsewhere(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL, where two writers run at once (SQLite takes them in turn). The first order
    counts the slot free, and is held right after its plan; the second takes the slot; the
    first, let go, must not hold there too."""
    warehouse = new_warehouse(engine, capacity=1)
    first_sku, second_sku = new_sku(engine, {warehouse: 3}), new_sku(engine, {warehouse: 3})
    first, second = request_for({first_sku: 1}), request_for({second_sku: 1})
    planned, go = threading.Event(), threading.Event()

    def first_waits_after_planning(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        decision = plan_fulfilment(*args, **kwargs)  # type: ignore[arg-type]
        if threading.current_thread().name == "first" and not planned.is_set():
            planned.set()
            assert go.wait(GATE_TIMEOUT)
        return decision

    monkeypatch.setattr(inventory, "plan_fulfilment", first_waits_after_planning)
    activities = InventoryActivities(engine, DEFAULT_RULES)
    outcome: list[AllocationResult | ApplicationError] = []

    def reserve_first() -> None:
        try:
            outcome.append(ActivityEnvironment().run(activities.reserve_inventory, first))
        except ApplicationError as error:
            outcome.append(error)

    routing = threading.Thread(target=reserve_first, name="first")
    routing.start()
    try:
        assert planned.wait(GATE_TIMEOUT)
        taken = ActivityEnvironment().run(activities.reserve_inventory, second)
        assert [r.warehouse for r in taken.reservations] == [warehouse]
    finally:
        go.set()
        routing.join(GATE_TIMEOUT)

    (refused,) = outcome
    assert isinstance(refused, ApplicationError), refused  # a retry, not a second holder
    assert refused.type == "CapacityTaken" and not refused.non_retryable
    assert refused.message == (
        f"the last of today's capacity at {warehouse} was taken meanwhile; routing again"
    )
    assert at(engine, warehouse, [first_sku, second_sku]) == {second.order.order_id}

    retried = ActivityEnvironment().run(activities.reserve_inventory, first)  # Temporal retries
    assert retried.reservations == [] and [d.sku for d in retried.backordered] == [first_sku]
    assert at(engine, warehouse, [first_sku, second_sku]) == {second.order.order_id}


def test_an_order_takes_one_slot_a_day_and_gives_it_back_when_released(engine: Engine) -> None:
    """The load routing reads is a counter kept with the holds: an order holding two SKUs
    there counts once, a second round the same day counts no more, a release frees its slot
    (and `orderflow check` finds the counter equal to the holds all along)."""
    warehouse = new_warehouse(engine, capacity=1)
    first_sku, second_sku = new_sku(engine, {warehouse: 3}), new_sku(engine, {warehouse: 1})
    activities = InventoryActivities(engine, DEFAULT_RULES)
    request = request_for({first_sku: 1, second_sku: 2})  # one of the second SKU waits
    order = request.order

    first = ActivityEnvironment().run(activities.reserve_inventory, request)
    assert {r.sku for r in first.reservations} == {first_sku, second_sku}
    assert [(d.sku, d.quantity) for d in first.backordered] == [(second_sku, 1)]
    restock(engine, second_sku, warehouse, 1)
    again = request.model_copy(update={"round": 1})
    second = ActivityEnvironment().run(activities.reserve_inventory, again)
    assert second.backordered == [] and len(second.reservations) == 3  # its slot, not another
    assert loads(engine, warehouse) == 1 and consistent(engine, order.order_id)

    other = request_for({new_sku(engine, {warehouse: 3}): 1})
    full = ActivityEnvironment().run(activities.reserve_inventory, other)
    assert full.reservations == [] and full.backordered  # capacity 1: the day is full

    assert ActivityEnvironment().run(activities.release_inventory, order.order_id) == 3
    assert loads(engine, warehouse) == 0 and consistent(engine, order.order_id)
    freed = ActivityEnvironment().run(
        activities.reserve_inventory, other.model_copy(update={"round": 1})
    )
    assert [r.warehouse for r in freed.reservations] == [warehouse]
    assert loads(engine, warehouse) == 1


def restock(engine: Engine, sku: str, warehouse: str, units: int) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(Stock)
            .where(Stock.sku == sku, Stock.warehouse == warehouse)
            .values(on_hand=Stock.on_hand + units)
        )


def loads(engine: Engine, warehouse: str, day: date | None = None) -> int:
    """The warehouse's orders on `day` (today), as routing reads them."""
    with Session(engine) as session:
        counted = session.scalar(
            select(WarehouseLoad.orders).where(
                WarehouseLoad.warehouse == warehouse,
                WarehouseLoad.day == (day or utcnow().date()),
            )
        )
        return counted or 0


def consistent(engine: Engine, order_id: str) -> bool:
    return not [
        v for v in check_database(engine, Decimal("5000"), {order_id}) if v.rule == "warehouse-load"
    ]


def test_a_shipped_parcel_keeps_its_slot_when_the_rest_of_the_order_is_released(
    engine: Engine,
) -> None:
    """The warehouse did the work for what left: releasing the order's other holds there the
    same day (a second round, then the order stopped) does not give that day's slot back;
    another warehouse where the order only held stock does get its slot back."""
    shipping_from, other = new_warehouse(engine, capacity=5), new_warehouse(engine, capacity=5)
    first_sku, second_sku = new_sku(engine, {shipping_from: 1}), new_sku(engine, {other: 3})
    activities = InventoryActivities(engine, DEFAULT_RULES)
    request = request_for({first_sku: 2, second_sku: 1})  # one of the first SKU waits
    order = request.order

    held = ActivityEnvironment().run(activities.reserve_inventory, request)
    assert {r.warehouse for r in held.reservations} == {shipping_from, other}
    assert (loads(engine, shipping_from), loads(engine, other)) == (1, 1)
    parcel = ShipmentEvent(
        order_id=order.order_id, shipment_id=f"{order.order_id}-1", warehouse=shipping_from
    )
    assert ActivityEnvironment().run(activities.ship_stock, parcel) == 1
    restock(engine, first_sku, shipping_from, 1)
    again = ActivityEnvironment().run(
        activities.reserve_inventory, request.model_copy(update={"round": 1})
    )
    assert [(r.sku, r.warehouse) for r in again.reservations if r.sku == first_sku] == [
        (first_sku, shipping_from)
    ]  # the second unit, held the same day where the first one shipped from

    assert ActivityEnvironment().run(activities.release_inventory, order.order_id) == 2
    assert (loads(engine, shipping_from), loads(engine, other)) == (1, 0)
    assert consistent(engine, order.order_id)


def test_an_order_routed_as_the_day_turns_holds_nothing_on_the_day_that_ended(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routing read yesterday's loads a millisecond before midnight; by the time it would
    hold, today has begun. The attempt holds nothing and counts nothing on either day
    (DayTurned, retryable), and its retry holds and counts today."""
    warehouse = new_warehouse(engine, capacity=5)
    sku = new_sku(engine, {warehouse: 3})
    activities = InventoryActivities(engine, DEFAULT_RULES)
    request = request_for({sku: 1})
    today = utcnow().date()
    yesterday = today - timedelta(days=1)
    midnight = datetime.combine(today, time(), tzinfo=UTC)
    clock = iter([midnight - timedelta(milliseconds=1)])  # the plan's reading; then today
    monkeypatch.setattr(
        inventory, "utcnow", lambda: next(clock, midnight + timedelta(milliseconds=1))
    )

    with pytest.raises(ApplicationError) as turned:
        ActivityEnvironment().run(activities.reserve_inventory, request)
    assert turned.value.type == "DayTurned" and not turned.value.non_retryable
    assert held(engine, sku) == {}
    assert (loads(engine, warehouse, yesterday), loads(engine, warehouse, today)) == (0, 0)

    retried = ActivityEnvironment().run(activities.reserve_inventory, request)
    assert [r.warehouse for r in retried.reservations] == [warehouse]
    assert (loads(engine, warehouse, yesterday), loads(engine, warehouse, today)) == (0, 1)
    assert consistent(engine, request.order.order_id)
