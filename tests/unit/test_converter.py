"""The worker's payload converter writes what the SDK's pydantic converter writes (so every
recorded history still replays), and reads it back, whichever of its instances does."""

from decimal import Decimal
from typing import Any

from temporalio.contrib.pydantic import PydanticPayloadConverter

from domain.order import Order
from domain.statuses import OrderStatus
from domain.steps import StatusChange
from tests.factories import make_order
from workers.converter import PayloadConverter

ORDER = make_order({"SKU-1": 2, "SKU-2": 1}, price="19.99")
VALUES: list[Any] = [
    ORDER,
    StatusChange(order_id=ORDER.order_id, step="validated", status=OrderStatus.VALIDATED),
    Decimal("10.05"),
    None,
    b"\x00raw",
    {"any": ["json", 1, 2.5, True]},
]


def test_payloads_are_the_sdk_pydantic_converters_byte_for_byte() -> None:
    ours, sdk = (
        PayloadConverter().to_payloads(VALUES),
        PydanticPayloadConverter().to_payloads(VALUES),
    )
    assert ours == sdk


def test_any_instance_reads_what_another_wrote() -> None:
    written = PayloadConverter().to_payloads(VALUES)
    hints: list[type] = [Order, StatusChange, Decimal, type(None), bytes, dict]
    assert PayloadConverter().from_payloads(written, hints) == VALUES
    assert PydanticPayloadConverter().from_payloads(written, hints) == VALUES


def test_instances_are_cheap_and_stay_apart() -> None:
    first, second = PayloadConverter(), PayloadConverter()
    assert first.converters is second.converters  # built once per process
    first.converters = {}  # an instance given other converters leaves the others alone
    assert second.converters and PayloadConverter().converters is second.converters
