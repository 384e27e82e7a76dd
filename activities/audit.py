"""Writes to the read model: the order's current status and its audit trail, idempotently."""

from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import select
from sqlalchemy.orm import Session

from activities.customer_notices import after_step
from activities.db.models import OrderEvent, OrderRecord, utcnow
from domain.steps import StatusChange


def record(session: Session, change: StatusChange) -> bool:
    """Append the audit event and move the order's status, once per (order, step).

    Runs inside the caller's transaction, so the effect of a step and its audit line commit
    together, and with them what the step tells the customer (`activities.customer_notices`:
    an order confirmed, backordered, cancelled, a refund issued). Returns False (and changes
    nothing) when the step was already recorded.
    """
    exists = session.scalar(
        select(OrderEvent.id).where(
            OrderEvent.order_id == change.order_id, OrderEvent.step == change.step
        )
    )
    if exists is not None:
        return False
    session.add(
        OrderEvent(
            order_id=change.order_id,
            step=change.step,
            status=change.status.value,
            actor=change.actor,
            reason=change.reason,
            detail=_jsonable(change.detail),
        )
    )
    order = session.get(OrderRecord, change.order_id)
    if order is not None:
        order.status = change.status.value
        order.updated_at = utcnow()
        if change.reason:
            order.reason = change.reason
        if change.escalation_level is not None:
            order.escalation_level = change.escalation_level
    session.flush()
    after_step(session, change)
    return True


def _jsonable(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    if detail is None:
        return None

    result: dict[str, Any] = to_jsonable_python(detail)
    return result
