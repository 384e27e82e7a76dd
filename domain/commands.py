"""What people and outside systems send to a running order (signals and updates)."""

from pydantic import BaseModel, Field

from domain.order import Address, Order


class ShipmentNotice(BaseModel):
    """The WMS says a parcel left, or the carrier says it arrived. No id: the only shipment."""

    shipment_id: str | None = None
    by: str = Field(default="wms", max_length=64)


class CancelRequest(BaseModel):
    """Stop the order and undo every hold it took."""

    reason: str = Field(min_length=1, max_length=500)
    by: str = Field(default="customer-service", min_length=1, max_length=64)


class CommandRefused(Exception):
    """A command that makes no sense at this stage; the message says why, in one line."""


def pick_shipment(notice: ShipmentNotice, shipments: dict[str, bool], verb: str, past: str) -> str:
    """The shipment a notice is about, given {shipment_id: already_done}.

    Raises:
        CommandRefused: no shipment booked yet, unknown id, ambiguous, or already done.
    """
    if not shipments:
        raise CommandRefused(f"nothing to {verb} yet: no shipment is booked")
    if notice.shipment_id is None:
        pending = [sid for sid, done in shipments.items() if not done]
        if len(shipments) > 1 and len(pending) != 1:
            raise CommandRefused(
                f"order has {len(shipments)} shipments; name one with --shipment "
                f"({', '.join(sorted(shipments))})"
            )
        chosen = pending[0] if pending else next(iter(shipments))
    else:
        chosen = notice.shipment_id
        if chosen not in shipments:
            raise CommandRefused(f"no shipment {chosen} (known: {', '.join(sorted(shipments))})")
    if shipments[chosen]:
        raise CommandRefused(f"shipment {chosen} is already {past}")
    return chosen


class OrderEdit(BaseModel):
    """A customer's change before fulfilment: new quantities (0 removes a line), new address."""

    lines: dict[str, int] = Field(default_factory=dict, description="SKU -> new quantity")
    ship_to: Address | None = None
    by: str = Field(default="customer", min_length=1, max_length=64)


def apply_edit(order: Order, edit: OrderEdit) -> Order:
    """The order as it is after the edit (whether the stage takes edits: `domain.stages`).

    Raises:
        CommandRefused: nothing to change, unknown or negative quantity, or no line left.
    """
    if not edit.lines and edit.ship_to is None:
        raise CommandRefused("the edit changes nothing: give --line SKU:QTY or a new address")
    quantities = {line.sku: line for line in order.lines}
    lines = []
    for sku, quantity in edit.lines.items():
        if sku not in quantities:
            raise CommandRefused(f"{sku} is not on this order (edits change or remove lines)")
        if quantity < 0:
            raise CommandRefused(f"quantity of {sku} cannot be negative")
    for line in order.lines:
        quantity = edit.lines.get(line.sku, line.quantity)
        if quantity > 0:
            lines.append(line.model_copy(update={"quantity": quantity}))
    if not lines:
        raise CommandRefused("the edit would remove every line; cancel the order instead")
    return order.model_copy(update={"lines": lines, "ship_to": edit.ship_to or order.ship_to})
