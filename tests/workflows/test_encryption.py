"""What the Temporal server holds of an order: ciphertext only (workers/codec.py).

The history is read straight from the server, without the codec: every payload of the order
(its input, the summary and card, each activity's input and result, the edit's argument, the
answers) must be AES-GCM ciphertext under the session's key id, and no byte of the customer's
name or address may appear anywhere in it. Only the search attributes are plain, and they hold
ids, statuses and totals (README, "Payload encryption").
"""

from collections.abc import Iterator
from typing import Any

from google.protobuf.message import Message
from sqlalchemy import Engine
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from domain.commands import OrderEdit
from domain.holds import ApprovalDecision
from domain.order import Address, Order
from domain.statuses import OrderStatus
from starter import orders
from tests.factories import make_order, new_sku
from tests.payload_keys import TEST_PAYLOAD_KEY_ID
from workers.codec import ENCODING, KEY_ID
from workers.settings import Settings

PLAIN_FIELDS = {"search_attributes", "header"}
"""Fields the codec never sees (Temporal indexes search attributes; headers carry context)."""

CORE_MARKER_DATA = ("details[patch-data]", "details[data]")
"""Markers' bookkeeping written by the SDK core itself, not by the converter: a patch's id, a
local activity's id, type, attempt and time (its result, `details[result]`, is encrypted)."""

PERSONAL = ("Philippa Cryptwell", "Geheimgracht 77", "Bartholomew Sealer", "Verborgenstraat 12")
SECRET_ADDRESS = Address(
    name="Philippa Cryptwell",
    street="Geheimgracht 77",
    city="Amsterdam",
    postal_code="1016 GV",
    country="NL",
)
EDITED_ADDRESS = Address(
    name="Bartholomew Sealer",
    street="Verborgenstraat 12",
    city="Amsterdam",
    postal_code="1017 AB",
    country="NL",
)


def payloads(message: Message, path: str = "") -> Iterator[tuple[str, Payload]]:
    """Every Payload in a protobuf message with where it is, outside PLAIN_FIELDS."""
    if isinstance(message, Payload):
        yield path, message
        return
    for field, value in message.ListFields():
        if field.name in PLAIN_FIELDS:
            continue
        where = f"{path}.{field.name}" if path else field.name
        if field.message_type is None:
            continue
        if field.message_type.GetOptions().map_entry:
            items: list[tuple[str, Any]] = [(f"{where}[{k}]", v) for k, v in value.items()]
        elif field.is_repeated:
            items = [(where, v) for v in value]
        else:
            items = [(where, value)]
        for at, item in items:
            if isinstance(item, Message):
                yield from payloads(item, at)


async def test_the_server_holds_only_ciphertext_of_an_order(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    order: Order = make_order({sku: 6}, price="1000.00", ship_to=SECRET_ADDRESS.model_dump())
    handle = await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    await orders.edit(client, order.order_id, OrderEdit(ship_to=EDITED_ADDRESS, by="j.buyer"))
    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)

    history = await handle.fetch_history()  # raw events: no codec applied
    found: dict[str, int] = {}
    for event in history.events:
        kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
        for where, payload in payloads(event):
            if kind == "MARKER_RECORDED" and any(f"{k}." in where for k in CORE_MARKER_DATA):
                continue
            assert payload.metadata.get("encoding") == ENCODING, f"{kind} {where} is plain"
            assert payload.metadata.get(KEY_ID) == TEST_PAYLOAD_KEY_ID.encode()
            found[f"{kind} {where}"] = found.get(f"{kind} {where}", 0) + 1
        raw = event.SerializeToString()
        for text in PERSONAL:
            assert text.encode() not in raw, f"{text!r} in plain in {kind}"
    for wanted in (
        "WORKFLOW_EXECUTION_STARTED workflow_execution_started_event_attributes.input.payloads",
        "WORKFLOW_EXECUTION_STARTED user_metadata.summary",
        "WORKFLOW_EXECUTION_STARTED user_metadata.details",
        "ACTIVITY_TASK_SCHEDULED activity_task_scheduled_event_attributes.input.payloads",
        "ACTIVITY_TASK_COMPLETED activity_task_completed_event_attributes.result.payloads",
        "WORKFLOW_EXECUTION_UPDATE_ACCEPTED "
        "workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads",
        "TIMER_STARTED user_metadata.summary",
        "MARKER_RECORDED marker_recorded_event_attributes.details[result].payloads",
    ):
        assert found.get(wanted), f"no {wanted} in the history: {sorted(found)}"

    # Visible without a key: the search attributes (ours: ids, statuses, totals, a tier, a
    # time; Temporal's own: build ids, patch names).
    described = await handle.describe()
    attributes = {key.name: value for key, value in described.typed_search_attributes}
    assert {"OrderStatus", "CustomerId", "OrderTotal"} <= set(attributes)
    for value in attributes.values():
        assert not any(text in str(value) for text in PERSONAL)

    # With the key (the client's converter), the same history reads as the order.
    started = history.events[0].workflow_execution_started_event_attributes
    [placed] = await client.data_converter.decode(started.input.payloads, [Order])
    assert placed.ship_to == SECRET_ADDRESS
    [edit] = [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.input
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
        and e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
        == "edit"
    ]
    [change] = await client.data_converter.decode(edit.args.payloads, [OrderEdit])
    assert change.ship_to == EDITED_ADDRESS
