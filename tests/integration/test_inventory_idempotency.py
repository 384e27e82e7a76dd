"""Every stock activity run twice changes stock once: the retries Temporal makes are harmless."""

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.exceptions import ApplicationError

from activities.db.models import StockReservation
from activities.inventory import InventoryActivities
from domain.geography import locate
from domain.order import Order
from domain.routing import DEFAULT_RULES
from domain.statuses import FulfilmentPolicy
from domain.steps import ReserveRequest, ShipmentEvent
from domain.stock import StockReceipt
from tests.factories import make_order, new_sku, stock_of
from tests.integration.conftest import run_retried

DESTINATION = locate("NL", "1016 GV")
DOUBLE_HOLD = (
    "product bug: reserve_inventory checks for an earlier attempt (_stored_result, _held_by_sku) "
    "before it locks the stock rows FOR UPDATE; on PostgreSQL a second attempt of the same "
    "request that queued on the lock then routes to another warehouse (new idempotency key) and "
    "holds the order a second time, and record() silently skips the existing reserve-0 event"
)


def to_reserve(order: Order, policy: FulfilmentPolicy, round_: int = 0) -> ReserveRequest:
    assert DESTINATION is not None
    return ReserveRequest(
        order=order, destination=DESTINATION, promised_days=5, policy=policy, round=round_
    )


def holds(engine: Engine, order_id: str) -> dict[str, list[tuple[str, int]]]:
    """{state: [(warehouse, quantity)]} of the order's reservations."""
    result: dict[str, list[tuple[str, int]]] = {}
    with Session(engine) as session:
        for r in session.scalars(
            select(StockReservation)
            .where(StockReservation.order_id == order_id)
            .order_by(StockReservation.id)
        ):
            result.setdefault(r.state, []).append((r.warehouse, r.quantity))
    return result


@pytest.fixture
def inventory(engine: Engine) -> InventoryActivities:
    return InventoryActivities(engine, DEFAULT_RULES)


def test_reserving_twice_holds_once_and_returns_the_same_result(
    engine: Engine, inventory: InventoryActivities
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    same = to_reserve(make_order({sku: 3}), FulfilmentPolicy.SHIP_WHEN_AVAILABLE)
    first = run_retried(inventory.reserve_inventory, same)
    again = run_retried(inventory.reserve_inventory, same)
    assert again == first
    assert [(r.warehouse, r.quantity) for r in first.reservations] == [("AMS", 3)]
    assert holds(engine, same.order.order_id) == {"HELD": [("AMS", 3)]}
    assert stock_of(engine, sku) == {"AMS": (10, 3)}


def test_two_attempts_of_one_reservation_at_once_hold_it_once(
    engine: Engine,
    inventory: InventoryActivities,
    stock_lock: Any,
    request: pytest.FixtureRequest,
) -> None:
    """A retry that starts while the first attempt still waits for the stock lock."""
    sku = new_sku(engine, {"AMS": 3, "FRA": 3})
    same = to_reserve(make_order({sku: 3}), FulfilmentPolicy.SHIP_WHEN_AVAILABLE)
    with ThreadPoolExecutor(max_workers=2) as pool:
        with stock_lock(sku) as wait_blocked:
            attempts = [
                pool.submit(run_retried, inventory.reserve_inventory, same) for _ in range(2)
            ]
            wait_blocked(2)
        results = [a.result(timeout=30) for a in attempts]
    held = holds(engine, same.order.order_id)["HELD"]
    assert sum(q for _, q in held) == 3, held
    assert sum(reserved for _, reserved in stock_of(engine, sku).values()) == 3
    assert results[0] == results[1]


def test_releasing_twice_gives_back_once(engine: Engine, inventory: InventoryActivities) -> None:
    sku = new_sku(engine, {"AMS": 10})
    other = to_reserve(make_order({sku: 1}), FulfilmentPolicy.REJECT)
    run_retried(inventory.reserve_inventory, other)
    before = stock_of(engine, sku)
    order = make_order({sku: 4})
    run_retried(inventory.reserve_inventory, to_reserve(order, FulfilmentPolicy.REJECT))
    assert stock_of(engine, sku) == {"AMS": (10, 5)}

    assert run_retried(inventory.release_inventory, order.order_id) == 4
    assert run_retried(inventory.release_inventory, order.order_id) == 0
    assert stock_of(engine, sku) == before == {"AMS": (10, 1)}
    assert holds(engine, order.order_id) == {"RELEASED": [("AMS", 4)]}
    assert holds(engine, other.order.order_id) == {"HELD": [("AMS", 1)]}


def test_shipping_twice_takes_goods_out_once(
    engine: Engine, inventory: InventoryActivities
) -> None:
    sku = new_sku(engine, {"AMS": 10})
    order = make_order({sku: 3})
    run_retried(inventory.reserve_inventory, to_reserve(order, FulfilmentPolicy.REJECT))
    event = ShipmentEvent(
        order_id=order.order_id, shipment_id=f"{order.order_id}-1", warehouse="AMS"
    )

    assert run_retried(inventory.ship_stock, event) == 3
    assert run_retried(inventory.ship_stock, event) == 0
    assert stock_of(engine, sku) == {"AMS": (7, 0)}
    # goods that left cannot be released back onto the shelf
    assert run_retried(inventory.release_inventory, order.order_id) == 0
    assert stock_of(engine, sku) == {"AMS": (7, 0)}
    assert holds(engine, order.order_id) == {"SHIPPED": [("AMS", 3)]}


def test_receiving_twice_with_one_receipt_id_books_once(
    engine: Engine, inventory: InventoryActivities
) -> None:
    sku = new_sku(engine, {"AMS": 2})
    receipt = StockReceipt(receipt_id=f"R-{sku}", sku=sku, warehouse="AMS", quantity=5)
    assert run_retried(inventory.receive_stock, receipt) is True
    assert run_retried(inventory.receive_stock, receipt) is False
    assert stock_of(engine, sku) == {"AMS": (7, 0)}
    # a new warehouse gets its row on the first receipt, and only then
    elsewhere = receipt.model_copy(update={"receipt_id": f"R-{sku}-FRA", "warehouse": "FRA"})
    assert run_retried(inventory.receive_stock, elsewhere) is True
    assert run_retried(inventory.receive_stock, elsewhere) is False
    assert stock_of(engine, sku) == {"AMS": (7, 0), "FRA": (5, 0)}


def test_a_released_order_can_reserve_again_in_a_new_round(
    engine: Engine, inventory: InventoryActivities
) -> None:
    sku = new_sku(engine, {"AMS": 3})
    order = make_order({sku: 5})
    first = run_retried(
        inventory.reserve_inventory, to_reserve(order, FulfilmentPolicy.SHIP_WHEN_AVAILABLE)
    )
    assert [(d.sku, d.quantity) for d in first.backordered] == [(sku, 2)]
    assert run_retried(inventory.release_inventory, order.order_id) == 3
    assert stock_of(engine, sku) == {"AMS": (3, 0)}

    receipt = StockReceipt(receipt_id=f"R-{sku}", sku=sku, warehouse="AMS", quantity=2)
    assert run_retried(inventory.receive_stock, receipt) is True
    again = to_reserve(order, FulfilmentPolicy.SHIP_WHEN_AVAILABLE, round_=1)
    second = run_retried(inventory.reserve_inventory, again)
    assert run_retried(inventory.reserve_inventory, again) == second
    assert not second.backordered
    assert [(r.warehouse, r.quantity) for r in second.reservations] == [("AMS", 5)]
    assert holds(engine, order.order_id) == {"RELEASED": [("AMS", 3)], "HELD": [("AMS", 5)]}
    assert stock_of(engine, sku) == {"AMS": (5, 5)}


def test_a_backorder_round_holds_only_what_is_still_missing(
    engine: Engine, inventory: InventoryActivities
) -> None:
    sku = new_sku(engine, {"AMS": 3})
    order = make_order({sku: 5})
    run_retried(
        inventory.reserve_inventory, to_reserve(order, FulfilmentPolicy.SHIP_WHEN_AVAILABLE)
    )
    receipt = StockReceipt(receipt_id=f"R-{sku}", sku=sku, warehouse="AMS", quantity=10)
    run_retried(inventory.receive_stock, receipt)
    later = to_reserve(order, FulfilmentPolicy.SHIP_WHEN_AVAILABLE, round_=1)
    result = run_retried(inventory.reserve_inventory, later)
    assert run_retried(inventory.reserve_inventory, later) == result
    assert not result.backordered
    assert sorted(r.quantity for r in result.reservations) == [2, 3]
    assert stock_of(engine, sku) == {"AMS": (13, 5)}


def test_safety_stock_is_never_sold(engine: Engine, inventory: InventoryActivities) -> None:
    sku = new_sku(engine, {"AMS": 5}, safety=2)
    with pytest.raises(ApplicationError) as refused:
        run_retried(
            inventory.reserve_inventory, to_reserve(make_order({sku: 4}), FulfilmentPolicy.REJECT)
        )
    assert refused.value.type == "OutOfStock"
    taken = make_order({sku: 5})
    partial = run_retried(
        inventory.reserve_inventory, to_reserve(taken, FulfilmentPolicy.SHIP_WHEN_AVAILABLE)
    )
    assert sum(r.quantity for r in partial.reservations) == 3
    assert sum(d.quantity for d in partial.backordered) == 2
    assert stock_of(engine, sku) == {"AMS": (5, 3)}

    event = ShipmentEvent(
        order_id=taken.order_id, shipment_id=f"{taken.order_id}-1", warehouse="AMS"
    )
    assert run_retried(inventory.ship_stock, event) == 3
    assert stock_of(engine, sku) == {"AMS": (2, 0)}  # the two on the shelf are the safety stock
    for policy in FulfilmentPolicy:
        attempt = to_reserve(make_order({sku: 1}), policy)
        if policy == FulfilmentPolicy.REJECT:
            with pytest.raises(ApplicationError, match="out of stock"):
                run_retried(inventory.reserve_inventory, attempt)
        else:
            assert run_retried(inventory.reserve_inventory, attempt).reservations == []
    assert stock_of(engine, sku) == {"AMS": (2, 0)}
