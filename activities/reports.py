"""Read-only views of the read model for the CLI (stock levels); nothing here writes."""

from datetime import datetime
from statistics import median
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from activities.db.models import OrderEvent, OrderRecord, Refund, Stock


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


# The seeds' targets: cycle time under 24 h, on-time delivery above 96 %, RMA-to-refund
# under 5 days.
TARGETS = {
    "cycle_time_hours_median": 24.0,
    "on_time_delivery_pct": 96.0,
    "rma_to_refund_hours_median": 120.0,
}


def kpis(engine: Engine) -> dict[str, Any]:
    """Order KPIs from the read model: status counts, cycle time, on-time, RMA-to-refund."""
    with Session(engine) as session:
        by_status = dict(
            session.execute(
                select(OrderRecord.status, func.count()).group_by(OrderRecord.status)
            ).all()
        )
        steps = _first_times(session, ("received", "delivered", "captured"))
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
    cycle = [
        _hours(times["received"], times["captured"])
        for times in steps.values()
        if "received" in times and "captured" in times
    ]
    delivered = {
        order: times["delivered"]
        for order, times in steps.items()
        if "delivered" in times and promised.get(order)
    }
    on_time = [at.date() <= promised[order] for order, at in delivered.items()]  # type: ignore[operator]
    rma = [_hours(received_rma[r], at) for r, at in refunded_rma.items() if r in received_rma]
    return {
        "orders": sum(by_status.values()),
        "by_status": dict(sorted(by_status.items())),
        "cycle_time_hours_median": round(median(cycle), 3) if cycle else None,
        "on_time_delivery_pct": round(100 * sum(on_time) / len(on_time), 1) if on_time else None,
        "rma_to_refund_hours_median": round(median(rma), 3) if rma else None,
        "escalations": escalations or 0,
        "targets": TARGETS,
    }


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
