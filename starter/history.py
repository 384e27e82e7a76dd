"""Reading an order's history: the SDK's bookkeeping of its local activities.

A local activity leaves no scheduled/completed events, only a marker whose `data` is plain
JSON (not encrypted: the SDK's own): the activity's type, its attempt, and when it was
scheduled and completed on the worker's clock; a failed one also carries the failure.
"""

import json
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent, MarkerRecordedEventAttributes

LOCAL_ACTIVITY_MARKER = "core_local_activity"


def local_activity(
    event: HistoryEvent,
) -> tuple[MarkerRecordedEventAttributes, dict[str, Any]] | None:
    """A local activity's marker and its bookkeeping ({} if it has none); None for any other
    event."""
    if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
        return None
    marker = event.marker_recorded_event_attributes
    if marker.marker_name != LOCAL_ACTIVITY_MARKER:
        return None
    data = marker.details["data"].payloads if "data" in marker.details else []
    facts: dict[str, Any] = json.loads(data[0].data) if data else {}
    return marker, facts
