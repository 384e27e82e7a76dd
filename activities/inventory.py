"""Stock: route and hard-hold in one transaction, release, ship out, receive."""

from collections.abc import Sequence
from datetime import date, datetime
from functools import cache

from sqlalchemy import Engine, Insert, Row, bindparam, insert, select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit import record
from activities.db.engine import dialect_insert, take_turns
from activities.db.models import (
    Customer,
    OrderEvent,
    OrderLineRecord,
    OrderRecord,
    Product,
    Stock,
    StockReservation,
    Warehouse,
    WarehouseLoad,
    utc_day,
    utcnow,
)
from activities.db.models import StockReceipt as StockReceiptRecord
from domain.fulfilment import Allocation, AllocationResult, Demand, Reservation, WarehouseCandidate
from domain.routing import RoutingRules, plan_fulfilment
from domain.statuses import FulfilmentPolicy, OrderStatus
from domain.steps import ReserveRequest, ShipmentEvent, StatusChange
from domain.stock import StockReceipt


class InventoryActivities:
    """Every change to `stock` goes through here, each keyed so a retry changes nothing."""

    def __init__(self, engine: Engine, rules: RoutingRules) -> None:
        self._engine = engine
        self._rules = rules

    @activity.defn
    def reserve_inventory(self, request: ReserveRequest) -> AllocationResult:
        """Pick warehouses by the routing rules and hold the stock, atomically.

        Raises:
            ApplicationError: type "OutOfStock" (non-retryable) when the policy is REJECT and
                some quantity cannot be held.
        """
        order = request.order
        step = f"reserve-{request.round}"
        with Session(self._engine) as session, session.begin():
            # Attempts of one order take turns: a retry that queued behind the first
            # attempt must see its result, not route again to another warehouse.
            take_turns(session, f"reserve:{order.order_id}")
            done = _stored_result(session, order.order_id, step)
            if done is not None:
                return done
            now = utcnow()
            earlier = _held(session, order.order_id, ("HELD", "SHIPPED"))
            held = _units_by_sku(earlier)
            # Warehouses whose load today already counts this order (an earlier round today).
            counted = {h.warehouse for h in earlier if utc_day(h.created_at) == now.date()}
            demand = [
                Demand(sku=line.sku, quantity=line.quantity - held.get(line.sku, 0))
                for line in order.lines
                if line.quantity > held.get(line.sku, 0)
            ]
            candidates = _candidates(session, [d.sku for d in demand], now.date(), counted)
            decision = plan_fulfilment(
                demand,
                candidates,
                request.destination,
                request.promised_days,
                self._rules,
                allow_split=request.policy != FulfilmentPolicy.SHIP_COMPLETE,
            )
            if decision.unfilled and request.policy == FulfilmentPolicy.REJECT:
                short = ", ".join(f"{d.sku} x{d.quantity}" for d in decision.unfilled)
                raise ApplicationError(
                    f"out of stock: {short}", type="OutOfStock", non_retryable=True
                )
            hold_nothing = bool(decision.unfilled) and (
                request.policy == FulfilmentPolicy.SHIP_COMPLETE
            )
            reservations: list[Reservation] = []
            if not hold_nothing:
                _claim_capacity(session, decision.allocations, now.date(), counted)
                if utcnow().date() != now.date():  # the plan read a day that has ended
                    raise ApplicationError(
                        "the day turned while routing; routing again", type="DayTurned"
                    )
                for allocation in decision.allocations:
                    for line in allocation.lines:
                        _hold(
                            session, order.order_id, request.round, allocation.warehouse, line, now
                        )
                        reservations.append(
                            Reservation(
                                sku=line.sku, quantity=line.quantity, warehouse=allocation.warehouse
                            )
                        )
                # Loads change in code order, as a release changes them: no lock cycle.
                served = {a.warehouse for a in decision.allocations if a.lines} - counted
                for warehouse in sorted(served):
                    load_changes(session, warehouse, now.date(), +1)
            backordered = demand if hold_nothing else decision.unfilled
            result = AllocationResult(
                # What the order holds now: its earlier holds and this round's, by SKU, then
                # warehouse, without reading the table again.
                reservations=sorted(
                    [
                        Reservation(sku=h.sku, warehouse=h.warehouse, quantity=h.quantity)
                        for h in earlier
                        if h.state == "HELD"
                    ]
                    + reservations,
                    key=lambda r: (r.sku, r.warehouse),
                ),
                backordered=backordered,
                decision=decision,
            )
            session.execute(
                update(OrderRecord)
                .where(OrderRecord.order_id == order.order_id)
                .values(routing=decision.model_dump(mode="json")),
                execution_options={"synchronize_session": False},  # no order row loaded here
            )
            status = OrderStatus.BACKORDERED if backordered else OrderStatus.RESERVED
            record(
                session,
                StatusChange(
                    order_id=order.order_id,
                    step=step,
                    status=status,
                    reason=decision.summary,
                    detail=result.model_dump(mode="json"),
                ),
            )
            return result

    @activity.defn
    def release_inventory(self, order_id: str) -> int:
        """Give back every unit this order still holds; returns units released."""
        with Session(self._engine) as session, session.begin():
            # After any reservation of the order still running (a retried attempt), so the
            # loads it counted are the ones given back here.
            take_turns(session, f"reserve:{order_id}")
            released = 0
            freed: set[tuple[str, date]] = set()
            for hold in _holds(session, order_id, lock=True):
                session.execute(
                    update(Stock)
                    .where(Stock.sku == hold.sku, Stock.warehouse == hold.warehouse)
                    .values(reserved=Stock.reserved - hold.quantity)
                )
                hold.state = "RELEASED"
                released += hold.quantity
                freed.add((hold.warehouse, utc_day(hold.created_at)))
            # A warehouse's day stops counting the order once nothing of that day's holds is
            # left there (a shipped parcel still counts: the warehouse did the work).
            for h in _held(session, order_id, ("SHIPPED",)):
                freed.discard((h.warehouse, utc_day(h.created_at)))
            for warehouse, day in sorted(freed):
                load_changes(session, warehouse, day, -1)
            return released

    @activity.defn
    def ship_stock(self, event: ShipmentEvent) -> int:
        """Turn the holds of a shipped parcel into goods out: on hand and reserved both drop."""
        with Session(self._engine) as session, session.begin():
            shipped = 0
            for hold in _holds(session, event.order_id, lock=True):
                if hold.warehouse != event.warehouse:
                    continue
                session.execute(
                    update(Stock)
                    .where(Stock.sku == hold.sku, Stock.warehouse == hold.warehouse)
                    .values(
                        on_hand=Stock.on_hand - hold.quantity,
                        reserved=Stock.reserved - hold.quantity,
                    )
                )
                hold.state = "SHIPPED"
                shipped += hold.quantity
            return shipped

    @activity.defn
    def receive_stock(self, receipt: StockReceipt) -> bool:
        """Book goods into a warehouse once per receipt id; False when already booked.

        Raises:
            ApplicationError: "UnknownStockItem" (non-retryable) for an unknown SKU or warehouse.
        """
        with Session(self._engine) as session, session.begin():
            if session.get(StockReceiptRecord, receipt.receipt_id) is not None:
                return False
            if session.get(Warehouse, receipt.warehouse) is None:
                raise ApplicationError(
                    f"unknown warehouse {receipt.warehouse}",
                    type="UnknownStockItem",
                    non_retryable=True,
                )
            if session.get(Product, receipt.sku) is None:
                raise ApplicationError(
                    f"unknown SKU {receipt.sku}", type="UnknownStockItem", non_retryable=True
                )
            session.add(
                StockReceiptRecord(
                    receipt_id=receipt.receipt_id,
                    sku=receipt.sku,
                    warehouse=receipt.warehouse,
                    quantity=receipt.quantity,
                )
            )
            # Relative update: concurrent receipts (and goods out) of one row all count.
            added = session.execute(
                update(Stock)
                .where(Stock.sku == receipt.sku, Stock.warehouse == receipt.warehouse)
                .values(on_hand=Stock.on_hand + receipt.quantity)
            )
            if getattr(added, "rowcount", 0) == 0:
                session.add(
                    Stock(
                        sku=receipt.sku,
                        warehouse=receipt.warehouse,
                        on_hand=receipt.quantity,
                        reserved=0,
                        safety_stock=0,
                    )
                )
            return True

    @activity.defn
    def backordered_orders(self, sku: str) -> list[str]:
        """Orders waiting for `sku`: highest customer priority first, then oldest first."""
        with Session(self._engine) as session:
            return list(
                session.scalars(
                    select(OrderRecord.order_id)
                    .join(OrderLineRecord, OrderLineRecord.order_id == OrderRecord.order_id)
                    .join(Customer, Customer.customer_id == OrderRecord.customer_id)
                    .where(
                        OrderRecord.status == OrderStatus.BACKORDERED.value,
                        OrderLineRecord.sku == sku,
                    )
                    .order_by(
                        Customer.priority.desc(), OrderRecord.created_at, OrderRecord.order_id
                    )
                )
            )


def _hold(
    session: Session, order_id: str, round_: int, warehouse: str, line: Demand, now: datetime
) -> None:
    # The WHERE clause is the guard: the row only changes if the units are really there.
    result = session.execute(
        update(Stock)
        .where(
            Stock.sku == line.sku,
            Stock.warehouse == warehouse,
            Stock.on_hand - Stock.reserved - Stock.safety_stock >= line.quantity,
        )
        .values(reserved=Stock.reserved + line.quantity)
    )
    if getattr(result, "rowcount", 0) != 1:
        raise ApplicationError(
            f"stock of {line.sku} at {warehouse} moved; retrying", type="StockMoved"
        )
    session.connection().execute(
        _NEW_HOLD,
        {
            "idempotency_key": f"{order_id}/{round_}/{line.sku}/{warehouse}",
            "order_id": order_id,
            "sku": line.sku,
            "warehouse": warehouse,
            "quantity": line.quantity,
            "created_at": now,
        },
    )


_NEW_HOLD = insert(StockReservation)
"""A hold's row (state HELD, created now): built once, not through the ORM (README, "Speed")."""


def _candidates(
    session: Session, skus: list[str], today: date, counted: set[str]
) -> list[WarehouseCandidate]:
    """The warehouses with what they have free of `skus` and their orders left for today;
    a warehouse that already `counted` this order today has its slot to fill again."""
    stock_query = select(
        Stock.sku, Stock.warehouse, Stock.on_hand, Stock.reserved, Stock.safety_stock
    ).where(Stock.sku.in_(skus))
    if session.get_bind().dialect.name == "postgresql":
        stock_query = stock_query.with_for_update()  # one allocator per SKU at a time
    available: dict[str, dict[str, int]] = {}
    for row in session.execute(stock_query.order_by(Stock.sku, Stock.warehouse)):
        free = row.on_hand - row.reserved - row.safety_stock
        available.setdefault(row.warehouse, {})[row.sku] = max(free, 0)
    used_today = _loads(session, today)
    return [
        WarehouseCandidate(
            code=w.code,
            country=w.country,
            latitude=w.latitude,
            longitude=w.longitude,
            capacity_left=_slots_left(w.code, w.daily_capacity, used_today, counted),
            available=available.get(w.code, {}),
        )
        for w in session.execute(_WAREHOUSES)
    ]


_WAREHOUSES = select(
    Warehouse.code,
    Warehouse.country,
    Warehouse.latitude,
    Warehouse.longitude,
    Warehouse.daily_capacity,
).order_by(Warehouse.code)


def _loads(session: Session, day: date, warehouses: list[str] | None = None) -> dict[str, int]:
    """Orders each warehouse serves on `day` (its daily capacity used): of `warehouses` only,
    if given. One row per warehouse, kept with the holds (`load_changes`)."""
    query = select(WarehouseLoad.warehouse, WarehouseLoad.orders).where(WarehouseLoad.day == day)
    if warehouses is not None:
        query = query.where(WarehouseLoad.warehouse.in_(warehouses))
    return {warehouse: orders for warehouse, orders in session.execute(query).all()}


def _slots_left(warehouse: str, capacity: int, loads: dict[str, int], counted: set[str]) -> int:
    """Orders `warehouse` can still take today, for this order: its capacity less the orders
    counted (`loads`), the order's own slot given back if it `counted` there already."""
    return capacity - loads.get(warehouse, 0) + (warehouse in counted)


def load_changes(session: Session, warehouse: str, day: date, by: int) -> None:
    """One order more (+1) or fewer (-1) served by `warehouse` on `day`, in the caller's
    transaction. Never below zero (a counter that drifted, say from holds written by code
    older than the counter during an upgrade, shows in `orderflow check`: warehouse-load)."""
    connection = session.connection()
    if by > 0:
        connection.execute(_count_in(connection.dialect.name), {"warehouse": warehouse, "day": day})
    else:
        connection.execute(_COUNT_OUT, {"counted_at": warehouse, "counted_on": day})


@cache
def _count_in(dialect: str) -> Insert:
    """The day's first order at the warehouse writes its row; the next ones add one."""
    statement: Insert = (
        dialect_insert(dialect, WarehouseLoad)
        .values(orders=1)
        .on_conflict_do_update(
            index_elements=[WarehouseLoad.warehouse, WarehouseLoad.day],
            set_={"orders": WarehouseLoad.orders + 1},
        )
    )
    return statement


_COUNT_OUT = (
    update(WarehouseLoad)
    .where(
        WarehouseLoad.warehouse == bindparam("counted_at"),
        WarehouseLoad.day == bindparam("counted_on"),
        WarehouseLoad.orders > 0,
    )
    .values(orders=WarehouseLoad.orders - 1)
)


def _claim_capacity(
    session: Session, allocations: list[Allocation], today: date, counted: set[str]
) -> None:
    """Make sure the warehouses the plan chose still have a slot today, before holding there.

    The plan counted each warehouse's orders today before it chose; on PostgreSQL another
    reservation (of other SKUs: the stock rows it locks are not ours) may have taken the last
    slot since. So the chosen warehouses' rows are locked, in one order, and counted again:
    the reservations that took the lock before us have committed, the ones after us wait. If a
    slot went meanwhile, a retryable error makes the step route again with the new counts.
    SQLite needs nothing: `BEGIN IMMEDIATE` let no other writer in since the plan counted.

    Raises:
        ApplicationError: type "CapacityTaken" (retryable).
    """
    chosen = sorted({allocation.warehouse for allocation in allocations})
    if not chosen or session.get_bind().dialect.name != "postgresql":
        return
    capacity = dict(
        session.execute(
            select(Warehouse.code, Warehouse.daily_capacity)
            .where(Warehouse.code.in_(chosen))
            .order_by(Warehouse.code)
            .with_for_update(key_share=True)  # FOR NO KEY UPDATE: reservations' inserts go on
        ).all()
    )
    loads = _loads(session, today, chosen)
    full = [code for code in chosen if _slots_left(code, capacity[code], loads, counted) <= 0]
    if full:
        raise ApplicationError(
            f"the last of today's capacity at {', '.join(full)} was taken meanwhile; routing again",
            type="CapacityTaken",
        )


def _holds(
    session: Session, order_id: str, *, lock: bool = False, states: tuple[str, ...] = ("HELD",)
) -> list[StockReservation]:
    query = (
        select(StockReservation)
        .where(StockReservation.order_id == order_id, StockReservation.state.in_(states))
        .order_by(StockReservation.sku, StockReservation.warehouse)
    )
    if lock and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return list(session.scalars(query))


def _units_by_sku(holds: Sequence[Row[str, str, int, str, datetime]]) -> dict[str, int]:
    """Units of each SKU in `holds` (the order's holds: held, or shipped in an earlier wave)."""
    units: dict[str, int] = {}
    for hold in holds:
        units[hold.sku] = units.get(hold.sku, 0) + hold.quantity
    return units


def _held(
    session: Session, order_id: str, states: tuple[str, ...]
) -> Sequence[Row[str, str, int, str, datetime]]:
    """The order's reservations in `states` as (sku, warehouse, quantity, state, created_at)
    columns, to read: `_holds` loads the rows, to change them."""
    return session.execute(_HELD, {"holder": order_id, "states": states}).all()


_HELD = (
    select(
        StockReservation.sku,
        StockReservation.warehouse,
        StockReservation.quantity,
        StockReservation.state,
        StockReservation.created_at,
    )
    .where(
        StockReservation.order_id == bindparam("holder"),
        StockReservation.state.in_(bindparam("states", expanding=True)),
    )
    .order_by(StockReservation.sku, StockReservation.warehouse)
)


def _stored_result(session: Session, order_id: str, step: str) -> AllocationResult | None:
    detail = session.scalar(_STEP_DETAIL, {"of_order": order_id, "of_step": step})
    return AllocationResult.model_validate(detail) if detail else None


_STEP_DETAIL = select(OrderEvent.detail).where(
    OrderEvent.order_id == bindparam("of_order"), OrderEvent.step == bindparam("of_step")
)
