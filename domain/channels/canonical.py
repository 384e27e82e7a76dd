"""orderflow's own order JSON (README "The order contract"), as `POST /orders` takes it: one
order per request, its `order_id` is its reference."""

import json

from domain.channels.records import (
    ChannelBatch,
    ChannelConfig,
    ChannelOrder,
    RecordError,
    build_order,
)


def parse(payload: bytes, source: str, config: ChannelConfig) -> ChannelBatch:
    """One canonical order, or an error per problem (every field, not just the first)."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return ChannelBatch(errors=[_error(source, "body", f"not JSON: {error}")])
    if not isinstance(data, dict):
        return ChannelBatch(errors=[_error(source, "body", "must be a JSON object (one order)")])
    reference = data.get("order_id") if isinstance(data.get("order_id"), str) else None
    built = build_order(data, source, record=reference)
    if isinstance(built, list):
        return ChannelBatch(errors=built)
    order = ChannelOrder(channel=config.name, external_id=built.order_id, order=built)
    return ChannelBatch(orders=[order])


def _error(source: str, field: str, reason: str) -> RecordError:
    return RecordError(source=source, field=field, reason=reason)
