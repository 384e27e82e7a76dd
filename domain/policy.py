"""Per-order policy snapshot: SLA durations, thresholds and the customer's terms."""

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel

from domain.statuses import FulfilmentPolicy, PaymentTerms


class SlaPolicy(BaseModel):
    """How long each waiting stage may take before the order escalates."""

    approval_escalate_after: timedelta
    approval_expire_after: timedelta
    approval_expire_action: Literal["reject", "cancel", "alert"] = "reject"
    """At expiry: auto-reject, auto-cancel, or alert the director and keep waiting."""
    backorder_expire_after: timedelta
    ship_escalate_after: timedelta
    delivery_grace: timedelta
    return_window: timedelta
    refund_escalate_after: timedelta
    rma_expire_after: timedelta = timedelta(days=30)
    """An RMA whose parcel never arrives expires this long after it was opened."""
    booking_attempts: int = 20
    """Carrier booking attempts (with backoff) before the order fails and is compensated."""


class CustomerTerms(BaseModel):
    """What the account is allowed: how it pays, how much credit, who goes first."""

    customer_id: str
    name: str
    payment_terms: PaymentTerms
    credit_limit: Decimal
    fulfilment_policy: FulfilmentPolicy
    priority: int


class ApprovalThresholds(BaseModel):
    """Order totals above which an approver of that tier must sign off."""

    manager: Decimal
    director: Decimal
