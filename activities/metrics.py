"""Business metrics recorded by activities through the SDK's activity metric meter.

They come out of the worker's Prometheus endpoint (README, "Metrics, traces and logs") with
the labels namespace, task_queue and activity_type added by the SDK. Outside an activity (a
test calling the method directly) nothing is recorded.

- orderflow_refund_amount {currency, kind} (minor units, a histogram: its _count is the number
  of refunds, its _sum the money): a refund booked in the ledger, once per idempotency key
  (kind "card": paid back through the gateway; "credit_note": credited on account terms)
"""

from temporalio import activity


def refund_booked(amount_minor: int, currency: str, kind: str) -> None:
    """The attempt that booked a refund's ledger row (a retry of the same key does not)."""
    if not activity.in_activity():
        return
    activity.metric_meter().create_histogram(
        "orderflow_refund_amount", "refunds booked, in minor units of their currency"
    ).record(amount_minor, {"currency": currency, "kind": kind})
