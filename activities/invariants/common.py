"""What every invariant rule shares: the violation it reports and the statuses it reads."""

from pydantic import BaseModel

from domain.statuses import OrderStatus

BILLED = {
    OrderStatus.COMPLETED,
    OrderStatus.RETURN_REQUESTED,
    OrderStatus.RETURN_RECEIVED,
    OrderStatus.REFUNDED,
}
STOPPED = {OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.FAILED}
LIVE_SHIPMENT = ("BOOKED", "SHIPPED", "DELIVERED", "LOST")
GOODS_OUT = ("SHIPPED", "DELIVERED")  # what the invoices bill (LOST is not billed)


class Violation(BaseModel):
    """One broken rule: which order (or stock row), which rule, and what was found."""

    order_id: str
    rule: str
    detail: str
