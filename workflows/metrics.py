"""An order's business metrics, recorded through the SDK's workflow metric meter.

They come out of the worker's Prometheus endpoint beside the SDK's own metrics (README,
"Metrics, traces and logs"), with the labels namespace, task_queue and workflow_type added by
the SDK. Recording is no command: nothing here changes what the workflow does or its history.
The SDK drops what a workflow records while it replays, so an order is counted once however
often a worker replays it (after a restart, a cache eviction).

Names and labels (each recorded in one place, said in brackets):
- orderflow_orders_placed {channel}: orders started (OrderWorkflow.run, first run only)
- orderflow_order_status {status}: an order entered a status (OrderJournal.note, every
  status change: final ones included, REJECTED, CANCELLED, FAILED)
- orderflow_stage_duration {stage} (seconds): placed_to_validated, placed_to_labels_booked,
  placed_to_delivered, placed_to_completed (from placement, the first time the status is
  reached), and the time spent waiting in awaiting_approval, backordered, awaiting_shipment
  and shipped, each time the order leaves that status (OrderJournal.note)
- orderflow_holds_placed / orderflow_holds_released {type, tier} (ApprovalGate)
- orderflow_escalations {stage}: an SLA timer fired (OrderJournal.escalate)
- orderflow_compensations {step}: void_labels, release_inventory, void_authorization
  (OrderJournal.compensate)
Refunds are counted by the refund activity itself (activities/metrics.py).
"""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.holds import Hold
    from domain.statuses import OrderStatus

MILESTONES = {
    OrderStatus.VALIDATED: "placed_to_validated",
    OrderStatus.AWAITING_SHIPMENT: "placed_to_labels_booked",
    OrderStatus.DELIVERED: "placed_to_delivered",
    OrderStatus.COMPLETED: "placed_to_completed",
}
"""Statuses whose first arrival is timed from placement (the seeds' cycle-time KPIs)."""

WAITS = frozenset(
    {
        OrderStatus.AWAITING_APPROVAL,
        OrderStatus.BACKORDERED,
        OrderStatus.AWAITING_SHIPMENT,
        OrderStatus.SHIPPED,
    }
)
"""Statuses in which the order waits for someone else; their length is timed."""


def placed(channel: str) -> None:
    """A new order (not a continued run of an invoiced one)."""
    _count("orderflow_orders_placed", "orders placed", {"channel": channel})


def status_changed(
    left: OrderStatus,
    entered: OrderStatus,
    *,
    waited: timedelta | None,
    since_placed: timedelta | None,
) -> None:
    """The order left `left` after `waited` and entered `entered`.

    `since_placed`: time since placement when this is the first arrival at `entered` in the
    order's first run (None otherwise).
    """
    _count("orderflow_order_status", "orders entering each status", {"status": entered.value})
    if waited is not None and left in WAITS and left != entered:
        _duration(left.value.lower(), waited)
    milestone = MILESTONES.get(entered)
    if since_placed is not None and milestone is not None:
        _duration(milestone, since_placed)


def holds_placed(holds: list[Hold]) -> None:
    """Holds an assessment put on the order (open ones: a release carried over is not new)."""
    for hold in holds:
        if hold.is_open:
            _count("orderflow_holds_placed", "approval holds placed", _hold(hold))


def holds_released(holds: list[Hold]) -> None:
    """Holds an approver released (one decision may release several)."""
    for hold in holds:
        _count("orderflow_holds_released", "approval holds released", _hold(hold))


def escalated(stage: str) -> None:
    """An SLA timer fired: approval, shipping or delivery, refund."""
    _count("orderflow_escalations", "SLA escalations", {"stage": stage})


def compensated(step: str) -> None:
    """A compensation ran while stopping an order."""
    _count("orderflow_compensations", "compensations run", {"step": step})


def _hold(hold: Hold) -> dict[str, str | int | float | bool]:
    return {"type": hold.type.value, "tier": hold.tier.value}


def _count(name: str, description: str, labels: dict[str, str | int | float | bool]) -> None:
    workflow.metric_meter().create_counter(name, description).add(1, labels)


def _duration(stage: str, length: timedelta) -> None:
    workflow.metric_meter().create_histogram_timedelta(
        "orderflow_stage_duration", "seconds from placement to a milestone, or spent waiting"
    ).record(max(length, timedelta(0)), {"stage": stage})
