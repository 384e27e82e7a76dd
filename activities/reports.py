"""Read-only views of the read model for the CLI (stock levels, warehouse loads, KPIs);
nothing here writes."""

from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import median
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from activities.db.models import (
    ErpPosting,
    OrderEvent,
    OrderRecord,
    Refund,
    ReturnAuthorization,
    ShipmentRecord,
    Stock,
    Warehouse,
    WarehouseLoad,
    utcnow,
)


def stock_levels(engine: Engine, sku: str | None = None) -> list[dict[str, Any]]:
    """On hand, reserved, safety stock and available per SKU per warehouse."""
    query = select(Stock).order_by(Stock.sku, Stock.warehouse)
    if sku:
        query = query.where(Stock.sku == sku)
    with Session(engine) as session:
        return [
            {
                "sku": row.sku,
                "warehouse": row.warehouse,
                "on_hand": row.on_hand,
                "reserved": row.reserved,
                "safety_stock": row.safety_stock,
                "available": max(row.on_hand - row.reserved - row.safety_stock, 0),
            }
            for row in session.scalars(query)
        ]


def warehouse_loads(engine: Engine) -> list[dict[str, Any]]:
    """Each warehouse's daily capacity and the orders it serves today (UTC): what routing
    reads before it sends an order there."""
    today = utcnow().date()
    query = (
        select(Warehouse.code, Warehouse.country, Warehouse.daily_capacity, WarehouseLoad.orders)
        .outerjoin(
            WarehouseLoad,
            (WarehouseLoad.warehouse == Warehouse.code) & (WarehouseLoad.day == today),
        )
        .order_by(Warehouse.code)
    )
    with Session(engine) as session:
        return [
            {
                "warehouse": code,
                "country": country,
                "day": today.isoformat(),
                "daily_capacity": capacity,
                "orders_today": orders or 0,
                "left_today": max(capacity - (orders or 0), 0),
            }
            for code, country, capacity, orders in session.execute(query)
        ]


@dataclass(frozen=True)
class Kpi:
    """One KPI the seeds quote, with its target and which side of it is good."""

    key: str
    label: str
    target: float
    below: bool
    """True: lower is better (a duration); False: higher is better (a share)."""
    unit: str
    """"hours" or "%"."""


KPIS = (
    Kpi(
        "cycle_time_hours_median",
        "order cycle time (median, placed to its last invoice)",
        24.0,
        True,
        "hours",
    ),
    Kpi(
        "order_accuracy_pct",
        "order accuracy (delivered, nothing lost or returned)",
        99.5,
        False,
        "%",
    ),
    Kpi("on_time_delivery_pct", "on-time delivery (by the promised date)", 96.0, False, "%"),
    Kpi(
        "rma_to_refund_hours_median",
        "RMA to refund (median, received to refunded)",
        120.0,
        True,
        "hours",
    ),
)
"""The seeds' targets: cycle time under 24 h, order accuracy above 99.5 %, on-time delivery
above 96 %, RMA-to-refund under 5 days."""

TARGETS = {kpi.key: kpi.target for kpi in KPIS}


def meets(kpi: Kpi, value: float | None) -> bool | None:
    """Whether a measured value meets its target; None when nothing was measured yet."""
    if value is None:
        return None
    return value < kpi.target if kpi.below else value > kpi.target


def kpis(engine: Engine) -> dict[str, Any]:
    """Order KPIs from the read model: status counts, cycle time, accuracy, on-time, refunds.

    Order accuracy counts the orders that reached delivery: accurate when no parcel of it was
    lost or shipped after a cancel and nothing of it came back on an RMA (a proxy: the read
    model does not know why goods came back).
    """
    with Session(engine) as session:
        by_status = dict(
            session.execute(
                select(OrderRecord.status, func.count()).group_by(OrderRecord.status)
            ).all()
        )
        steps = _first_times(session, ("received", "delivered", "captured"))
        for order_id, billed in session.execute(  # an order billed per wave: its last capture
            select(OrderEvent.order_id, func.max(OrderEvent.at))
            .where(OrderEvent.step.like("captured-%"))
            .group_by(OrderEvent.order_id)
        ):
            steps.setdefault(order_id, {})["captured"] = billed
        promised = dict(
            session.execute(select(OrderRecord.order_id, OrderRecord.promised_date)).all()
        )
        received_rma = {
            step.removesuffix("/received"): at
            for step, at in session.execute(
                select(OrderEvent.step, OrderEvent.at).where(OrderEvent.step.like("%/received"))
            )
        }
        refunded_rma = {
            rma: at
            for rma, at in session.execute(
                select(Refund.rma_id, func.min(Refund.at))
                .where(Refund.rma_id.is_not(None))
                .group_by(Refund.rma_id)
            )
        }
        escalations = session.scalar(
            select(func.count()).select_from(OrderEvent).where(OrderEvent.step.like("escalation-%"))
        )
        faulty = set(
            session.scalars(
                select(ShipmentRecord.order_id).where(
                    ShipmentRecord.state.in_(("LOST", "SHIPPED_AFTER_CANCEL"))
                )
            )
        ) | set(session.scalars(select(ReturnAuthorization.order_id)))
    cycle = [
        _hours(times["received"], times["captured"])
        for times in steps.values()
        if "received" in times and "captured" in times
    ]
    reached = [order for order, times in steps.items() if "delivered" in times]
    delivered = {
        order: times["delivered"]
        for order, times in steps.items()
        if "delivered" in times and promised.get(order)
    }
    on_time = [at.date() <= promised[order] for order, at in delivered.items()]  # type: ignore[operator]
    accurate = [order not in faulty for order in reached]
    rma = [_hours(received_rma[r], at) for r, at in refunded_rma.items() if r in received_rma]
    return {
        "orders": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "cycle_time_hours_median": round(median(cycle), 3) if cycle else None,
        "order_accuracy_pct": _pct(accurate),
        "on_time_delivery_pct": _pct(on_time),
        "rma_to_refund_hours_median": round(median(rma), 3) if rma else None,
        "escalations": escalations or 0,
        "targets": TARGETS,
        "erp": erp_outbox(engine),
    }


def erp_outbox(engine: Engine, now: datetime | None = None) -> dict[str, Any]:
    """Postings by state, the oldest pending one's age, and every dead letter with its reason."""
    now = now or datetime.now(UTC)
    with Session(engine) as session:
        counts = dict(
            session.execute(select(ErpPosting.state, func.count()).group_by(ErpPosting.state)).all()
        )
        oldest = session.scalar(
            select(func.min(ErpPosting.created_at)).where(ErpPosting.state == "pending")
        )
        dead = session.scalars(
            select(ErpPosting).where(ErpPosting.state == "dead").order_by(ErpPosting.id)
        ).all()
        return {
            "pending": counts.get("pending", 0),
            "delivered": counts.get("delivered", 0),
            "dead": counts.get("dead", 0),
            "oldest_pending_age_hours": (None if oldest is None else round(_hours(oldest, now), 3)),
            "dead_letters": [
                {
                    "id": p.id,
                    "order_id": p.order_id,
                    "kind": p.kind,
                    "document": p.document,
                    "amount": str(p.amount),
                    "currency": p.currency,
                    "attempts": p.attempts,
                    "reason": p.last_error or "",
                }
                for p in dead
            ],
        }


def _pct(flags: list[bool]) -> float | None:
    return round(100 * sum(flags) / len(flags), 1) if flags else None


def _first_times(session: Session, steps: tuple[str, ...]) -> dict[str, dict[str, datetime]]:
    result: dict[str, dict[str, datetime]] = {}
    for order_id, step, at in session.execute(
        select(OrderEvent.order_id, OrderEvent.step, OrderEvent.at).where(
            OrderEvent.step.in_(steps)
        )
    ):
        result.setdefault(order_id, {})[step] = at
    return result


def _hours(start: datetime, end: datetime) -> float:
    return (end.replace(tzinfo=None) - start.replace(tzinfo=None)).total_seconds() / 3600
