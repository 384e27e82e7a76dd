"""Credit exposure: what a customer owes or has on order, for the Net-30 credit decision."""

from collections import defaultdict
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from activities.db.models import CreditNote, Customer, Invoice, OrderRecord
from domain.statuses import OrderStatus

# Orders that still count against credit: neither closed nor invoiced to the end (an order
# captured per wave is open until its last capture; what its invoices billed counts once,
# as unpaid invoices).
OPEN_STATUSES = [
    s.value
    for s in OrderStatus
    if not s.is_final
    and s
    not in (
        OrderStatus.COMPLETED,
        OrderStatus.RETURN_REQUESTED,
        OrderStatus.RETURN_RECEIVED,
        OrderStatus.REFUNDED,
    )
]


def exposure(session: Session, customer_id: str, excluding_order_id: str) -> Decimal:
    """What the customer owes or has on order, leaving one order out.

    Open orders (at their gross estimate: goods, the dearest shipping and the tax; one
    invoiced in part counts what its invoices have not billed yet), plus unpaid invoices
    (gross, every invoice of every order) less the credit notes issued on them.

    Args:
        session: an open session (call inside the transaction that takes the decision).
        customer_id: the account.
        excluding_order_id: the order being decided, which must not count against itself.
    """
    is_open = (
        OrderRecord.customer_id == customer_id,
        OrderRecord.order_id != excluding_order_id,
        OrderRecord.status.in_(OPEN_STATUSES),
    )
    estimates = {  # at what they may cost: gross, once validated
        order_id: estimate if estimate is not None else total
        for order_id, estimate, total in session.execute(
            select(OrderRecord.order_id, OrderRecord.gross_estimate, OrderRecord.total).where(
                *is_open
            )
        )
    }
    billed: dict[str, Decimal] = defaultdict(Decimal)  # waves invoiced already: counted below
    for order_id, amount in session.execute(
        select(Invoice.order_id, Invoice.amount)
        .join(OrderRecord, OrderRecord.order_id == Invoice.order_id)
        .where(*is_open)
    ):
        billed[order_id] += amount
    open_orders = sum(
        (max(estimate - billed[order_id], Decimal(0)) for order_id, estimate in estimates.items()),
        Decimal(0),
    )
    unpaid = session.scalar(
        select(func.coalesce(func.sum(Invoice.amount), 0))
        .join(OrderRecord, OrderRecord.order_id == Invoice.order_id)
        .where(OrderRecord.customer_id == customer_id, Invoice.paid.is_(False))
    )
    credited = session.scalar(  # credit notes (Net-30 refunds) lower what is still owed
        select(func.coalesce(func.sum(CreditNote.amount), 0))
        .join(Invoice, Invoice.invoice_no == CreditNote.invoice_no)
        .join(OrderRecord, OrderRecord.order_id == Invoice.order_id)
        .where(OrderRecord.customer_id == customer_id, Invoice.paid.is_(False))
    )
    return open_orders + Decimal(str(unpaid)) - Decimal(str(credited))


def lock_customer(session: Session, customer_id: str) -> Customer | None:
    """The customer row, locked FOR UPDATE on PostgreSQL so credit decisions run one at a time.

    SQLite needs no lock: its writers already queue behind `BEGIN IMMEDIATE`.
    """
    query = select(Customer).where(Customer.customer_id == customer_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return session.scalar(query)
