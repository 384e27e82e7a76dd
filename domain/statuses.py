"""The one order status enum shared by the workflow, the database and the CLI."""

from enum import StrEnum


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle."""

    RECEIVED = "RECEIVED"
    VALIDATED = "VALIDATED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    BACKORDERED = "BACKORDERED"
    RESERVED = "RESERVED"
    ROUTED = "ROUTED"
    AWAITING_SHIPMENT = "AWAITING_SHIPMENT"
    SHIPPED = "SHIPPED"
    DELIVERED = "DELIVERED"
    COMPLETED = "COMPLETED"
    RETURN_REQUESTED = "RETURN_REQUESTED"
    RETURN_RECEIVED = "RETURN_RECEIVED"
    REFUNDED = "REFUNDED"
    REJECTED = "REJECTED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        """No further business step will change the order."""
        return self in _FINAL

    @property
    def is_shipped(self) -> bool:
        """Goods have left the warehouse: cancelling is no longer possible, only returning."""
        return self in _SHIPPED_OR_LATER


_FINAL = frozenset({OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.FAILED})
_SHIPPED_OR_LATER = frozenset(
    {
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.COMPLETED,
        OrderStatus.RETURN_REQUESTED,
        OrderStatus.RETURN_RECEIVED,
        OrderStatus.REFUNDED,
    }
)


class FulfilmentPolicy(StrEnum):
    """What to do when not all lines can be reserved now."""

    SHIP_COMPLETE = "ship_complete"
    """All or nothing: the whole order waits (backordered) until every line can be held."""
    SHIP_WHEN_AVAILABLE = "ship_when_available"
    """Hold and ship what is there now; backorder the rest."""
    REJECT = "reject"
    """Reject the order when any line is short."""


class Channel(StrEnum):
    """Where the order came from; each channel has a priority for scarce stock."""

    WEB = "web"
    B2B = "b2b"
    MARKETPLACE = "marketplace"
    EMAIL = "email"
    PHONE = "phone"
    EDI = "edi"


class PaymentTerms(StrEnum):
    """How the customer pays."""

    PREPAID = "prepaid"
    """Card authorised at order time, captured after delivery."""
    NET_30 = "net_30"
    """Invoiced after delivery, due in 30 days, limited by the account's credit."""


# The happy path in order; `orderflow place --wait STAGE` waits until the order is at least here.
LIFECYCLE = (
    OrderStatus.RECEIVED,
    OrderStatus.VALIDATED,
    OrderStatus.AWAITING_APPROVAL,
    OrderStatus.BACKORDERED,
    OrderStatus.RESERVED,
    OrderStatus.ROUTED,
    OrderStatus.AWAITING_SHIPMENT,
    OrderStatus.SHIPPED,
    OrderStatus.DELIVERED,
    OrderStatus.COMPLETED,
)


def has_reached(current: OrderStatus, stage: OrderStatus) -> bool:
    """True once `current` is at or past `stage`, or the order has closed for good."""
    if current.is_final or current == stage:
        return True
    if current not in LIFECYCLE or stage not in LIFECYCLE:
        return current.is_shipped and stage in LIFECYCLE
    return LIFECYCLE.index(current) >= LIFECYCLE.index(stage)
