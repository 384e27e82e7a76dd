"""What an operator reads on an order's page in the Temporal UI: its card and where it is now.

`order_card` is the static details set when the order is placed; `current_details` is what the
workflow keeps current (stage, status, what it waits for and for whom, since when). Both are
short Temporal markdown; the `*_wanted` helpers say what a waiting order waits for.
"""

from collections.abc import Iterable
from datetime import datetime

from domain.fulfilment import Demand, Shipment
from domain.holds import Hold
from domain.order import Order
from domain.returns import Rma
from domain.statuses import OrderStatus

CARD_LINES = 8
"""Lines shown on the card; the rest are counted ("... and 3 more lines")."""


def order_card(order: Order) -> str:
    """The order as placed: customer, lines, goods' net total, promise, channel."""
    who = f"**{order.customer_id}** via {order.channel.value}"
    if order.purchase_order:
        who += f" · PO {order.purchase_order}"
    if order.submitted_by:
        who += f" · placed by {order.submitted_by}"
    lines = [
        f"- {line.sku} x {line.quantity} @ {line.unit_price} {order.currency}"
        for line in order.lines[:CARD_LINES]
    ]
    if len(order.lines) > CARD_LINES:
        lines.append(f"- ... and {len(order.lines) - CARD_LINES} more lines")
    if order.promised_date is not None:
        promise = f"by {order.promised_date.isoformat()}"
    else:
        promise = f"within {order.promised_days} days"
    total = f"**Goods net** {order.total} {order.currency} · **promised** {promise}"
    return "\n".join([who, "", *lines, "", total])


def current_details(
    status: OrderStatus,
    stage: str,
    waiting_for: str | None,
    since: datetime,
    *,
    timer: str | None = None,
    escalation_level: int = 0,
    reason: str | None = None,
) -> str:
    """Where the order is: `waiting_for` None means nobody is needed (orderflow is working)."""
    rows = [f"**{status.value}** · stage {stage}", ""]  # a blank line: the list renders
    if status.is_final:
        rows.append(f"- **closed**: {reason}" if reason else "- **closed**")
    elif waiting_for:
        rows.append(f"- **waiting for** {waiting_for}")
    else:
        rows.append("- **waiting for** nothing: orderflow is working on it")
    rows.append(f"- **since** {since.isoformat(timespec='seconds')}")
    if timer and not status.is_final:
        rows.append(f"- **timer** {timer}")
    if escalation_level:
        rows.append(f"- **escalation level** {escalation_level}")
    return "\n".join(rows)


def approval_wanted(holds: Iterable[Hold]) -> str:
    """Who must release what: "approval by a manager-tier approver (AMOUNT hold)"."""
    by_tier: dict[str, list[str]] = {}
    for hold in holds:
        if hold.is_open:
            by_tier.setdefault(hold.tier.value, []).append(hold.type.value)
    if not by_tier:
        return "nothing: every hold is released"
    parts = [
        f"a {tier}-tier approver ({', '.join(types)} hold{'s' if len(types) > 1 else ''})"
        for tier, types in sorted(by_tier.items())
    ]
    return "approval by " + " and ".join(parts)


def stock_wanted(backordered: Iterable[Demand]) -> str:
    """What a backordered order waits for: goods in for its missing SKUs."""
    missing = ", ".join(f"{d.sku} x{d.quantity}" for d in backordered)
    return f"restock of {missing} (goods in: orderflow restock)"


def parcels_wanted(shipments: Iterable[Shipment]) -> str:
    """Ship notices from the warehouse first, then delivery notices from the carrier."""
    shipments = list(shipments)
    unshipped = [s.shipment_id for s in shipments if not s.shipped]
    if unshipped:
        return f"ship notice from the warehouse for {', '.join(unshipped)}"
    underway = [s.shipment_id for s in shipments if not (s.delivered or s.lost)]
    if underway:
        return f"delivery notice from the carrier for {', '.join(underway)}"
    return "nothing: every parcel is delivered"


def returns_wanted(window_ends: datetime, rmas: Iterable[Rma], now: datetime) -> str:
    """Inside the return window: return requests; for each open RMA, the next party."""
    parts = []
    if now < window_ends:
        parts.append(f"return requests from the customer until {window_ends.date().isoformat()}")
    for rma in rmas:
        if rma.state == "OPEN":
            parts.append(f"{rma.rma_id}: the parcel from the customer")
        elif rma.state in ("RECEIVED", "INSPECTED"):
            parts.append(f"{rma.rma_id}: inspection and refund by the warehouse")
    return "; ".join(parts) or "nothing: the return window has closed"
