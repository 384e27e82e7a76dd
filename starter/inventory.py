"""Client operations on stock: receive goods (through Temporal) and read stock levels."""

import uuid
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.stock import ReceiptOutcome, StockReceipt
from starter.orders import NO_ANSWER, UserError, answer_within
from workers.settings import Settings
from workflows.receipt import StockReceiptWorkflow, receipt_workflow_id


async def restock(
    client: Client,
    settings: Settings,
    sku: str,
    warehouse: str,
    quantity: int,
    receipt_id: str | None = None,
) -> ReceiptOutcome:
    """Receive goods and serve backorders; a receipt id already used is refused.

    An unknown SKU or warehouse is refused here, in one line, before anything starts (no
    failed StockReceiptWorkflow left behind).
    """
    refuse_unknown(settings, sku.upper(), warehouse.upper())
    receipt = StockReceipt(
        receipt_id=receipt_id or f"R-{uuid.uuid4().hex[:12]}",
        sku=sku.upper(),
        warehouse=warehouse.upper(),
        quantity=quantity,
    )
    try:
        outcome: ReceiptOutcome = await answer_within(
            client.execute_workflow(
                StockReceiptWorkflow.run,
                receipt,
                id=receipt_workflow_id(receipt.receipt_id),
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"receive {quantity} x {receipt.sku} at {receipt.warehouse}",
            )
        )
    except TimeoutError:
        raise UserError(f"receipt {receipt.receipt_id} is queued; {NO_ANSWER}") from None
    except WorkflowAlreadyStartedError:
        raise UserError(f"receipt {receipt.receipt_id} was already booked") from None
    except WorkflowFailureError as failure:
        cause = failure.cause
        message = getattr(getattr(cause, "cause", None), "message", None) or str(cause)
        raise UserError(message) from None
    return outcome


def stock_levels(settings: Settings, sku: str | None) -> list[dict[str, Any]]:
    """Stock per SKU per warehouse from the read model."""
    from activities.db.engine import make_engine
    from activities.reports import stock_levels as read_levels

    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        rows = read_levels(engine, sku.upper() if sku else None)
    finally:
        engine.dispose()
    if sku and not rows:
        raise UserError(f"no stock records for SKU {sku}")
    return rows


def warehouse_loads(settings: Settings) -> list[dict[str, Any]]:
    """Each warehouse's capacity and orders today, from the read model."""
    from activities.db.engine import make_engine
    from activities.reports import warehouse_loads as read_loads

    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        return read_loads(engine)
    finally:
        engine.dispose()


def refuse_unknown(settings: Settings, sku: str, warehouse: str) -> None:
    """A one-line refusal for goods the catalog does not know (read model)."""
    from activities.db.engine import make_engine

    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        problem = unknown_stock_item(engine, sku, warehouse)
    except DBAPIError as error:
        raise UserError(
            f"cannot read the order database ({type(error.orig).__name__}); "
            "is ORDERFLOW_DATABASE_URL right, and seeded (orderflow seed)?"
        ) from None
    finally:
        engine.dispose()
    if problem:
        raise UserError(problem)


def unknown_stock_item(engine: Engine, sku: str, warehouse: str) -> str | None:
    """What is wrong with receiving `sku` at `warehouse`, or None when both are known."""
    from activities.db.models import Product, Warehouse

    with Session(engine) as session:
        warehouses = list(session.scalars(select(Warehouse.code).order_by(Warehouse.code)))
        if warehouse not in warehouses:
            known = ", ".join(warehouses) or "none; run orderflow seed"
            return f"unknown warehouse {warehouse} (known: {known}); nothing was received"
        if session.get(Product, sku) is None:
            return f"unknown SKU {sku}: not in the catalog; nothing was received"
    return None
