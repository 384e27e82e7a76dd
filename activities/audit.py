"""Writes to the read model: the order's current status and its audit trail, idempotently."""

from functools import cache
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import Insert, bindparam, update
from sqlalchemy.orm import Session

from activities.customer_notices import after_step
from activities.db.engine import insert_new
from activities.db.models import OrderEvent, OrderRecord, utcnow
from domain.steps import StatusChange


def record(session: Session, change: StatusChange) -> bool:
    """Append the audit event and move the order's status, once per (order, step).

    Runs inside the caller's transaction, so the effect of a step and its audit line commit
    together, and with them what the step tells the customer (`activities.customer_notices`:
    an order confirmed, backordered, cancelled, a refund issued). Returns False (and changes
    nothing) when the step was already recorded, also by a concurrent attempt that committed
    first (PostgreSQL: the insert waits for it, then writes nothing): the caller's other writes
    still commit, so a caller that must not apply its step twice guards it itself (each does:
    take_turns and a stored result, or a unique key of its own).
    """
    session.flush()  # the caller's own writes first (the order row validation inserts)
    # Core statements built once, not the ORM: this runs in every step of every order, and
    # building a statement costs more than running it (README, "Speed").
    connection = session.connection()
    written = connection.scalar(
        _new_event(connection.dialect.name),
        {
            "order_id": change.order_id,
            "step": change.step,
            "status": change.status.value,
            "actor": change.actor,
            "reason": change.reason,
            "detail": _jsonable(change.detail),
        },
    )
    if written is None:  # the step was recorded before (its unique key)
        return False
    moved: dict[str, Any] = {"status": change.status.value, "updated_at": utcnow()}
    if change.reason:
        moved["reason"] = change.reason
    if change.escalation_level is not None:
        moved["escalation_level"] = change.escalation_level
    connection.execute(_MOVE_ORDER, {"moved_order": change.order_id, **moved})
    loaded = session.identity_map.get(session.identity_key(OrderRecord, change.order_id))
    if loaded is not None:  # the caller's copy of the row reads what was just written
        session.expire(loaded, list(moved))
    after_step(session, change)
    return True


_MOVE_ORDER = update(OrderRecord).where(OrderRecord.order_id == bindparam("moved_order"))
"""The order's status row; the columns set are the parameters given (status, updated_at, and
reason, escalation_level when the change has them)."""


@cache
def _new_event(dialect: str) -> Insert:
    """The audit line, unless its (order, step) is there already; returns its id if written."""
    return insert_new(dialect, OrderEvent).returning(OrderEvent.id)


def _jsonable(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    if detail is None:
        return None

    result: dict[str, Any] = to_jsonable_python(detail)
    return result
