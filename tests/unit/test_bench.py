"""The bench's reading of a history: counts and where the time goes (no server needed)."""

import json
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

from starter.bench import order_status, percentile, sample_of
from starter.history import LOCAL_ACTIVITY_MARKER

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


def _event(event_id: int, kind: int, at: float) -> HistoryEvent:
    event = HistoryEvent(event_id=event_id, event_type=kind)  # type: ignore[arg-type]
    event.event_time.FromNanoseconds(int(at * 1e9))
    return event


def _local_marker(event_id: int, name: str, started: float, recorded: float) -> HistoryEvent:
    event = _event(event_id, EventType.EVENT_TYPE_MARKER_RECORDED, recorded)
    marker = event.marker_recorded_event_attributes
    marker.marker_name = LOCAL_ACTIVITY_MARKER
    facts = {
        "activity_type": name,
        "original_schedule_time": {"seconds": int(started), "nanos": round(started % 1 * 1e9)},
        "complete_time": {"seconds": 1, "nanos": 0},  # the workflow's clock: never read
    }
    marker.details["data"].payloads.add(data=json.dumps(facts).encode())
    return event


def test_a_local_step_ends_where_the_order_did_something_else() -> None:
    # A local attempt that failed over to an ordinary activity: its span ends where the
    # ordinary activity was scheduled, which is counted once, by its own events.
    scheduled = _event(3, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, 1000.5)
    scheduled.activity_task_scheduled_event_attributes.activity_type.name = "authorize_payment"
    completed = _event(4, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, 1002.0)
    completed.activity_task_completed_event_attributes.scheduled_event_id = 3
    events = [
        _event(1, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED, 999.9),
        _local_marker(2, "authorize_payment", 1000.0, 1000.5),
        scheduled,
        completed,
        _local_marker(5, "book_shipments", 1002.1, 1002.4),
        _event(6, EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES, 1002.4),
    ]
    sample = sample_of(events)
    assert {name: round(took, 3) for name, took in sample.steps.items()} == {
        "authorize_payment": 2.0,  # 0.5 locally, 1.5 as an ordinary activity
        "book_shipments": 0.3,
    }
    assert round(sample.latency, 3) == 2.5 and round(sample.between_steps, 3) == 0.2
