"""The bench's reading of a history: counts and where the time goes (no server needed)."""

from pathlib import Path

from temporalio.client import WorkflowHistory

from starter.bench import order_status, percentile, sample_of

HISTORIES = Path(__file__).parents[1] / "replay" / "histories"
GOLDEN = HISTORIES / "fresh-run" / "happy.json"
LOCAL_FIRST = HISTORIES / "waves-local-first" / "happy.json"


def test_an_order_history_is_read_up_to_its_labels() -> None:
    events = list(WorkflowHistory.from_json("happy", GOLDEN.read_text()).events)
    done = next(i for i, e in enumerate(events) if order_status(e) == "AWAITING_SHIPMENT")
    sample = sample_of(events[: done + 1])
    assert sample.events == done + 1
    assert sample.activities == 6 and sample.local_activities == 0
    assert {"validate_order", "reserve_inventory", "book_shipments"} <= set(sample.steps)
    assert 0 < sample.between_steps < sample.latency
    assert sample.workflow_tasks >= 1


def test_local_steps_count_where_the_time_goes_too() -> None:
    events = list(WorkflowHistory.from_json("happy", LOCAL_FIRST.read_text()).events)
    done = next(i for i, e in enumerate(events) if order_status(e) == "AWAITING_SHIPMENT")
    sample = sample_of(events[: done + 1])
    assert sample.activities == 0 and sample.local_activities >= 5  # every step local now
    assert {"validate_order", "authorize_payment", "book_shipments"} <= set(sample.steps)
    # A local step's time runs to the next one's start (its marker's completion time is the
    # workflow's clock, which stands still in a workflow task): every step took some time.
    assert all(took > 0 for took in sample.steps.values()), sample.steps
    assert sum(sample.steps.values()) <= sample.latency
    assert 0 <= sample.between_steps < sample.latency


def test_percentiles_take_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 50), percentile(values, 95), percentile(values, 99)) == (
        50.0,
        95.0,
        99.0,
    )
    assert percentile([7.0], 99) == 7.0
