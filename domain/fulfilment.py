"""Contracts for stock, routing and shipping decisions that cross the workflow boundary."""

from datetime import date
from decimal import Decimal

from pydantic import BaseModel, Field


class Demand(BaseModel):
    """A quantity of one SKU that has to come from somewhere."""

    sku: str
    quantity: int = Field(gt=0)


class WarehouseCandidate(BaseModel):
    """What the routing engine knows about one warehouse at decision time."""

    code: str
    country: str
    latitude: float
    longitude: float
    capacity_left: int = Field(description="orders it can still ship today")
    available: dict[str, int] = Field(description="sellable units per SKU (after safety stock)")


class Destination(BaseModel):
    """Where the shipment goes, located for distance estimates."""

    country: str
    postal_code: str
    latitude: float
    longitude: float


class CandidateScore(BaseModel):
    """How one warehouse fared: its numbers, its score, or the rule that eliminated it."""

    warehouse: str
    distance_km: float
    estimated_days: int
    estimated_cost: Decimal
    can_fill: int = Field(description="units of the order it can fill now")
    score: float | None = Field(default=None, description="lower is better; None if eliminated")
    eliminated_by: str | None = None
    reason: str


class Allocation(BaseModel):
    """Lines assigned to one warehouse: becomes one shipment."""

    warehouse: str
    lines: list[Demand]


class RoutingDecision(BaseModel):
    """The answer to "why did this ship from there", stored with the order."""

    allocations: list[Allocation]
    unfilled: list[Demand] = Field(default_factory=list, description="what no warehouse can hold")
    candidates: list[CandidateScore]
    split: bool = False
    rules_version: str
    summary: str


def wave_step(name: str, wave: int) -> str:
    """Names of per-wave steps and parcels: the first wave keeps the plain name."""
    return name if wave == 1 else f"{name}-{wave}"


class Reservation(BaseModel):
    """A hard hold of stock for one order line at one warehouse."""

    sku: str
    warehouse: str
    quantity: int


class AllocationResult(BaseModel):
    """Outcome of routing + reserving: what is held, what is backordered, and why."""

    reservations: list[Reservation]
    backordered: list[Demand]
    decision: RoutingDecision | None = None

    @property
    def fully_reserved(self) -> bool:
        return not self.backordered and bool(self.reservations)


class CarrierQuote(BaseModel):
    """One carrier's offer for one shipment."""

    carrier: str
    service: str
    price: Decimal
    currency: str
    transit_days: int
    estimated_delivery: date
    meets_promise: bool


class Shipment(BaseModel):
    """One parcel of an order: from one warehouse, with its own label and tracking number."""

    shipment_id: str
    warehouse: str
    lines: list[Demand]
    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    label_id: str | None = None
    shipping_cost: Decimal | None = None
    estimated_delivery: date | None = None
    quotes: list[CarrierQuote] = Field(default_factory=list)
    failed_carriers: list[str] = Field(default_factory=list)
    shipped: bool = False
    delivered: bool = False
    lost: bool = False
    """Shipped, never delivered: a person declared it lost by the carrier (not billed)."""
    invoice_no: str | None = None
    """The invoice that billed this parcel (captured when its wave was delivered)."""
