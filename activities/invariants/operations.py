"""Invariants of goods and people: stock held = live holds, warehouse loads = their holds'
orders, one live label per shipment, stopped orders hold nothing, approval before stock."""

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.db.models import (
    CarrierLabel,
    OrderEvent,
    OrderLineRecord,
    OrderRecord,
    ShipmentRecord,
    Stock,
    StockReservation,
    WarehouseLoad,
    utc_day,
    utcnow,
)
from activities.invariants.common import BILLED, LIVE_SHIPMENT, STOPPED, Violation
from activities.invariants.money import Ledger, authorisation_left_open
from domain.statuses import OrderStatus


def stock_equals_live_holds(session: Session, skus: set[str] | None) -> list[Violation]:
    held: dict[tuple[str, str], int] = defaultdict(int)
    for sku, warehouse, quantity in session.execute(
        select(StockReservation.sku, StockReservation.warehouse, StockReservation.quantity).where(
            StockReservation.state == "HELD"
        )
    ):
        held[(sku, warehouse)] += quantity
    found = []
    for row in session.scalars(select(Stock)):
        if skus is not None and row.sku not in skus:
            continue
        where = f"{row.sku}@{row.warehouse}"
        if row.reserved != held.get((row.sku, row.warehouse), 0):
            found.append(
                Violation(
                    order_id=where,
                    rule="stock-held",
                    detail=f"reserved {row.reserved} but live holds add up to "
                    f"{held.get((row.sku, row.warehouse), 0)}",
                )
            )
        if row.reserved < 0 or row.on_hand - row.reserved - row.safety_stock < 0:
            found.append(
                Violation(
                    order_id=where,
                    rule="stock-available",
                    detail=f"on hand {row.on_hand}, reserved {row.reserved}, "
                    f"safety {row.safety_stock}: available is negative",
                )
            )
    return found


def warehouse_loads_counted(session: Session, warehouses: set[str] | None) -> list[Violation]:
    """Each warehouse's orders per day (the counter routing reads for its daily capacity)
    equal the distinct orders with holds of that day there that were not released: for today
    and yesterday (UTC), the days routing reads or just read (older days are history: their
    holds are read by no decision, and reading them all would grow without end)."""
    since = utcnow().date() - timedelta(days=1)
    # Read before and after the holds: a reservation committing meanwhile (PostgreSQL reads
    # each statement's own snapshot) changes its counter, and that warehouse-day is skipped.
    before = _loads(session, since)
    served: dict[tuple[str, date], set[str]] = defaultdict(set)
    for warehouse, order_id, at in session.execute(
        select(
            StockReservation.warehouse, StockReservation.order_id, StockReservation.created_at
        ).where(
            StockReservation.created_at >= datetime.combine(since, time.min, tzinfo=UTC),
            StockReservation.state != "RELEASED",
        )
    ):
        served[(warehouse, utc_day(at))].add(order_id)
    counted = _loads(session, since)
    return [
        Violation(
            order_id=f"{warehouse}@{day}",
            rule="warehouse-load",
            detail=f"counted {counted.get((warehouse, day), 0)} orders, "
            f"holds name {len(served.get((warehouse, day), ()))}",
        )
        for warehouse, day in sorted(set(served) | set(counted))
        if (warehouses is None or warehouse in warehouses)
        and before.get((warehouse, day)) == counted.get((warehouse, day))
        and counted.get((warehouse, day), 0) != len(served.get((warehouse, day), ()))
    ]


def _loads(session: Session, since: date) -> dict[tuple[str, date], int]:
    return {
        (row.warehouse, row.day): row.orders
        for row in session.scalars(select(WarehouseLoad).where(WarehouseLoad.day >= since))
    }


def one_live_label(session: Session) -> list[Violation]:
    live: dict[str, int] = defaultdict(int)
    for key, voided in session.execute(select(CarrierLabel.idempotency_key, CarrierLabel.voided)):
        if key.startswith("RMA-") or "@" not in key:
            continue  # return labels belong to RMAs, not shipments
        if not voided:
            live[key.rsplit("@", 1)[0]] += 1
    statuses = dict(session.execute(select(OrderRecord.order_id, OrderRecord.status)).all())
    found = []
    known = set()
    for row in session.scalars(select(ShipmentRecord)):
        known.add(row.shipment_id)
        count = live.get(row.shipment_id, 0)
        closed = OrderStatus(statuses.get(row.order_id, "RECEIVED")) in BILLED | STOPPED
        if row.state in LIVE_SHIPMENT and count != 1:
            found.append(_label(row.order_id, f"{row.shipment_id} is {row.state} with {count}"))
        elif row.state == "VOIDED" and count:
            found.append(_label(row.order_id, f"{row.shipment_id} is VOIDED with {count}"))
        elif row.state == "BOOKING" and closed and count:
            found.append(_label(row.order_id, f"{row.shipment_id} never booked, {count}"))
    orders = sorted(statuses, key=len, reverse=True)
    for shipment_id, count in live.items():
        if shipment_id not in known:
            # Shipment ids are "<order>-<warehouse>[-<wave>]": name the order when we can.
            owner = next((o for o in orders if shipment_id.startswith(f"{o}-")), "?")
            found.append(_label(owner, f"{shipment_id} has no shipment but {count}"))
    return found


def _label(order_id: str, what: str) -> Violation:
    return Violation(order_id=order_id, rule="one-live-label", detail=f"{what} live label(s)")


def stopped_orders_hold_nothing(session: Session, money: Ledger) -> list[Violation]:
    """A closed or stopped order holds no stock and no authorisation: its latest one (the
    authorisation or its last re-authorisation) was captured against, voided, or lapsed."""
    held = dict(
        session.execute(
            select(StockReservation.order_id, func.sum(StockReservation.quantity))
            .where(StockReservation.state == "HELD")
            .group_by(StockReservation.order_id)
        ).all()
    )
    found = []
    for order in session.scalars(select(OrderRecord)):
        status = OrderStatus(order.status)
        if status not in STOPPED and status not in BILLED:
            continue
        if held.get(order.order_id):
            found.append(
                Violation(
                    order_id=order.order_id,
                    rule="nothing-left-held",
                    detail=f"{status.value} but holds {held[order.order_id]} units",
                )
            )
        if authorisation_left_open(money.get(order.order_id, [])):
            found.append(
                Violation(
                    order_id=order.order_id,
                    rule="nothing-left-held",
                    detail=f"{status.value} with an authorisation neither captured nor voided",
                )
            )
    return found


def approval_before_stock(session: Session, manager_threshold: Decimal) -> list[Violation]:
    events: dict[str, list[str]] = defaultdict(list)
    for order_id, step in session.execute(
        select(OrderEvent.order_id, OrderEvent.step).order_by(OrderEvent.id)
    ):
        events[order_id].append(step)
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in session.scalars(select(OrderLineRecord)):
        totals[line.order_id] += line.unit_price * line.quantity
    found = []
    for order_id, steps in events.items():
        if "reserve-0" not in steps:
            continue
        before = steps[: steps.index("reserve-0")]
        assessed = [i for i, s in enumerate(before) if s.startswith(("holds-", "cleared-"))]
        last = before[assessed[-1]] if assessed else None
        approvals = before[assessed[-1] :] if assessed else []
        if (
            last
            and last.startswith("holds-")
            and not any(s.startswith("approval-") for s in approvals)
        ):
            found.append(
                Violation(
                    order_id=order_id,
                    rule="approval-before-stock",
                    detail=f"stock held after {last} without an approval",
                )
            )
        if totals[order_id] > manager_threshold and not any(
            s.startswith("approval-") and "AMOUNT" in s for s in before
        ):
            found.append(
                Violation(
                    order_id=order_id,
                    rule="approval-before-stock",
                    detail=f"total {totals[order_id]} above {manager_threshold} held stock "
                    "without an AMOUNT approval",
                )
            )
    return found
