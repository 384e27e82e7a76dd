"""Inputs and results of the order steps: the contracts between workflow and activities."""

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from domain.fulfilment import Allocation, Destination
from domain.order import Order
from domain.policy import ApprovalThresholds, CustomerTerms, SlaPolicy
from domain.statuses import FulfilmentPolicy, OrderStatus


class ValidatedOrder(BaseModel):
    """The order accepted by validation, with everything later steps need to decide."""

    order_id: str
    total: Decimal
    promised_date: date
    customer: CustomerTerms
    fulfilment_policy: FulfilmentPolicy
    destination: Destination
    sla: SlaPolicy
    thresholds: ApprovalThresholds
    duplicate_of: str | None = None
    """An earlier order of the same customer with the same content, placed within the
    duplicate window: the order is held (DUPLICATE) for a person, not rejected."""
    gross_estimate: Decimal | None = None
    """Goods, the dearest shipping and the tax: what the credit decision counts (None: orders
    validated before invoices carried tax count their goods)."""


class PaymentRequest(BaseModel):
    order_id: str
    customer: CustomerTerms
    amount: Decimal
    currency: str
    reauthorization: int = 0
    """0: the order's authorisation; n: its n-th re-authorisation, for what is not captured
    yet, because the earlier one lapsed (`amount` is then the goods not yet billed)."""


class PaymentAuthorization(BaseModel):
    """Money held (card) or credit reserved (account terms) for this order."""

    order_id: str
    method: str
    amount: Decimal
    currency: str
    reference: str
    valid_until: datetime | None = None
    """When the gateway stops honouring it (card authorisations lapse after about 7 days;
    None: account credit, or an authorisation made before this was recorded)."""
    reauthorization: int = 0

    def lapsed(self, now: datetime) -> bool:
        """True when a capture against it would be refused: re-authorise first."""
        return self.valid_until is not None and now >= self.valid_until


class ReserveRequest(BaseModel):
    """Route and hard-hold stock; `round` counts backorder attempts so keys stay unique."""

    order: Order
    destination: Destination
    promised_days: int
    policy: FulfilmentPolicy
    round: int = 0


class BookingRequest(BaseModel):
    order_id: str
    currency: str
    destination: Destination
    promised_date: date
    allocations: list[Allocation]
    wave: int = 1
    """Ship-when-available orders ship in waves; each wave has its own parcels and labels."""
    routed: str | None = None
    """Why the stock was routed where it is: written to the read model as the wave's ROUTED
    line in the booking's own transaction (None: the workflow wrote it before, as orders
    started before that did)."""


class ShipmentEvent(BaseModel):
    """The WMS (ship) or the carrier (deliver) reporting on one shipment."""

    order_id: str
    shipment_id: str
    warehouse: str
    actor: str = "wms"
    state: str = "SHIPPED"
    """SHIPPED (left the warehouse), DELIVERED, LOST (by the carrier), or
    SHIPPED_AFTER_CANCEL (left although the order was stopped: an exception for a person)."""


class CaptureRequest(BaseModel):
    order_id: str
    authorization: PaymentAuthorization
    amount: Decimal
    """The goods delivered at the order's prices (net)."""
    customer: CustomerTerms
    delivered: dict[str, int] | None = None
    """Units per SKU billed by this capture, with shipping and tax (None: orders captured
    before invoices carried them bill `amount` as it is)."""
    capture_no: int = 1
    """1 for the order's first capture (and invoice), 2 for the wave delivered next, ..."""
    parcels: list[str] | None = None
    """The shipments this capture bills (None: every parcel that left; single capture)."""
    final: bool = True
    """The order's last capture: the read model says COMPLETED (else DELIVERED, more to
    come)."""


class CaptureResult(BaseModel):
    order_id: str
    amount: Decimal
    currency: str
    reference: str
    invoice_no: str
    due_date: date


class StatusChange(BaseModel):
    """One audited transition of the read model; (order_id, step) makes it idempotent."""

    order_id: str
    step: str
    status: OrderStatus
    actor: str = "orderflow"
    reason: str | None = None
    detail: dict[str, Any] | None = None
    escalation_level: int | None = None


class EditedOrder(BaseModel):
    """The order after a customer's edit, as the read model must now show it."""

    order: Order
    revision: int
    by: str
    summary: str
