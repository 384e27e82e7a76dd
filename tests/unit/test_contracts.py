"""The canonical order contract, statuses and command rules: pure, fast."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from domain.commands import CommandRefused, ShipmentNotice, pick_shipment
from domain.order import Order
from domain.sla import format_duration, parse_duration
from domain.statuses import OrderStatus, has_reached

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*.json"))


def base() -> dict[str, object]:
    return json.loads(EXAMPLES[0].read_text())


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_is_a_valid_order(path: Path) -> None:
    order = Order.model_validate_json(path.read_text())
    assert order.total > 0


def test_money_is_decimal_and_respects_the_currency() -> None:
    data = base()
    data["lines"] = [{"sku": "KB-100", "quantity": 1, "unit_price": 49.9}]
    with pytest.raises(ValidationError, match="not a float"):
        Order.model_validate(data)
    data["lines"] = [{"sku": "KB-100", "quantity": 1, "unit_price": "49.901"}]
    with pytest.raises(ValidationError, match="more decimals than EUR allows"):
        Order.model_validate(data)
    data["currency"] = "XXX"
    with pytest.raises(ValidationError, match="not traded"):
        Order.model_validate(data)


def test_a_sku_appears_once_and_quantities_are_positive_integers() -> None:
    data = base()
    data["lines"] = [{"sku": "KB-100", "quantity": 1, "unit_price": "1"}] * 2
    with pytest.raises(ValidationError, match="one line only"):
        Order.model_validate(data)
    data["lines"] = [{"sku": "KB-100", "quantity": 0, "unit_price": "1"}]
    with pytest.raises(ValidationError):
        Order.model_validate(data)


def test_an_order_needs_a_delivery_promise() -> None:
    data = base()
    data.pop("promised_days")
    with pytest.raises(ValidationError, match="promised_days or promised_date"):
        Order.model_validate(data)


def test_stage_progress_for_waiting() -> None:
    assert has_reached(OrderStatus.SHIPPED, OrderStatus.AWAITING_SHIPMENT)
    assert not has_reached(OrderStatus.RESERVED, OrderStatus.SHIPPED)
    assert has_reached(OrderStatus.REJECTED, OrderStatus.COMPLETED)  # closed: stop waiting


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("4h", 14400), ("30m", 1800), ("2s", 2), ("1h30m", 5400), ("1.5", 1.5), ("2d", 172800)],
)
def test_sla_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_bad_durations_are_refused_and_formats_round_trip() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("soon")
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"


def test_shipment_notices_name_a_shipment_when_there_are_several() -> None:
    two = {"o-AMS": False, "o-FRA": False}
    with pytest.raises(CommandRefused, match="name one with --shipment"):
        pick_shipment(ShipmentNotice(), two, "ship", "shipped")
    assert pick_shipment(ShipmentNotice(shipment_id="o-FRA"), two, "ship", "shipped") == "o-FRA"
    assert (
        pick_shipment(ShipmentNotice(), {"o-AMS": True, "o-FRA": False}, "ship", "shipped")
        == "o-FRA"
    )
    with pytest.raises(CommandRefused, match="already shipped"):
        pick_shipment(ShipmentNotice(shipment_id="o-AMS"), {"o-AMS": True}, "ship", "shipped")
    with pytest.raises(CommandRefused, match="no shipment o-X"):
        pick_shipment(ShipmentNotice(shipment_id="o-X"), two, "ship", "shipped")
