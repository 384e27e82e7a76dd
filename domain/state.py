"""What `orderflow status` shows: the workflow's own view of one order."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from domain.fulfilment import AllocationResult, Shipment
from domain.holds import Hold
from domain.order import Order
from domain.policy import SlaPolicy
from domain.returns import Rma
from domain.statuses import OrderStatus
from domain.steps import CaptureResult, PaymentAuthorization


class AuditEntry(BaseModel):
    """One line of an order's history as the workflow saw it."""

    at: datetime
    status: OrderStatus
    actor: str
    what: str


class OrderState(BaseModel):
    """What `orderflow status` shows: the workflow's own view of the order."""

    order_id: str
    status: OrderStatus
    stage: str | None = None
    """Where the workflow is (`domain.stages.Stage`): which commands it takes now."""
    customer_id: str
    channel: str
    currency: str
    total: Decimal | None = None
    lines: list[dict[str, Any]]
    promised_date: date | None = None
    allocation: AllocationResult | None = None
    shipments: list[Shipment] = Field(default_factory=list)
    payment: PaymentAuthorization | None = None
    capture: CaptureResult | None = None
    """The latest capture (orders captured before capture per wave: the only one)."""
    captures: list[CaptureResult] = Field(default_factory=list)
    """Every capture of the order, one per wave of parcels delivered, with its invoice."""
    holds: list[Hold] = Field(default_factory=list)
    returns: list[Rma] = Field(default_factory=list)
    escalation_level: int = 0
    approval_due: datetime | None = None
    """While held: when the approval SLA next acts (escalates, then expires), from the SLA the
    order was validated with."""
    reason: str | None = None
    compensations: list[str] = Field(default_factory=list)
    events: list[AuditEntry] = Field(default_factory=list)

    @property
    def captured(self) -> Decimal:
        """Everything captured (invoiced) so far, gross."""
        if self.captures:
            return sum((c.amount for c in self.captures), Decimal(0))
        return self.capture.amount if self.capture else Decimal(0)


class ReturnsLedger(BaseModel):
    """What the returns stage knows, carried into a fresh run of the order's workflow."""

    rmas: list[Rma] = Field(default_factory=list)
    returned: dict[str, int] = Field(default_factory=dict)
    """Units claimed by RMAs so far, per SKU."""
    opened_at: dict[str, datetime] = Field(default_factory=dict)
    received_at: dict[str, datetime] = Field(default_factory=dict)
    escalated: list[str] = Field(default_factory=list)
    """RMAs whose late refund was escalated already (once each)."""
    delivered_at: datetime
    shipments: list[Shipment]
    delivered: dict[str, int]
    window: timedelta


class ContinuedOrder(BaseModel):
    """A delivered, invoiced order continued as new for its return window (small history).

    The first run ends when the order is invoiced; each later run starts with this and only
    keeps the returns desk open (see README, "Orders that live for weeks").
    """

    order: Order
    state: OrderState
    returns: ReturnsLedger
    sla: SlaPolicy
