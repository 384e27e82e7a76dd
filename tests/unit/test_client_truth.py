"""The client never misleads a script (issue 14): the pure parts, without Temporal."""

import json
import logging
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from rich.console import Console
from temporalio.exceptions import ApplicationError

from domain.fulfilment import Shipment
from domain.order import Order, parse_order
from domain.returns import Disposition, InspectionRequest
from domain.sla import format_duration
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import render
from starter.chart import draw_kpis
from starter.commands.orders import wait_failure
from starter.demo import seed_summary
from starter.logs import BusinessFailures
from starter.orders import UserError
from starter.returns import parse_inspection, parse_lines

EXAMPLE = Path(__file__).parents[2] / "examples" / "web-order.json"
PNG = b"\x89PNG\r\n\x1a\n"


def placed(**line: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    data["lines"][0].update(line)
    return data


# --- place: strict at the edge, lenient for payloads already recorded ----------------------


@pytest.mark.parametrize(
    ("change", "where", "message"),
    [
        ({"quantity": "2"}, ("lines", 0, "quantity"), "must be a JSON integer"),
        ({"quantity": 2.0}, ("lines", 0, "quantity"), "must be a JSON integer"),
        ({"quantity": True}, ("lines", 0, "quantity"), "must be a JSON integer"),
        ({"unit_price": 12}, ("lines", 0, "unit_price"), "must be a decimal string"),
        ({"unit_price": 12.5}, ("lines", 0, "unit_price"), "must be a decimal string"),
    ],
)
def test_a_placed_order_needs_integer_quantities_and_string_money(
    change: dict[str, Any], where: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_order(placed(**change))
    first = refused.value.errors()[0]
    assert first["loc"] == where and message in first["msg"]


def test_a_placed_order_gives_one_promise_not_both() -> None:
    data = placed()
    data["promised_date"] = "2030-01-01"
    with pytest.raises(ValidationError, match="not both"):
        parse_order(data)
    # A payload recorded before (a workflow's input, a golden) still deserializes.
    assert Order.model_validate(data).promised_date is not None
    lenient = placed(quantity="2")
    assert Order.model_validate(lenient).lines[0].quantity == 2
    assert parse_order(placed()).lines[0].quantity == 1


def test_the_schema_says_what_place_accepts() -> None:
    line = Order.model_json_schema()["$defs"]["OrderLine"]["properties"]
    assert line["quantity"]["type"] == "integer" and line["unit_price"]["type"] == "string"
    assert parse_order(placed(unit_price="12.50")).lines[0].unit_price == Decimal("12.50")


# --- place --wait: an order that stopped short is a failure ----------------------------------


@pytest.mark.parametrize("ended", [OrderStatus.REJECTED, OrderStatus.CANCELLED, OrderStatus.FAILED])
def test_waiting_for_a_stage_the_order_never_reaches_fails_with_the_reason(
    ended: OrderStatus,
) -> None:
    failure = wait_failure("o-1", ended, OrderStatus.AWAITING_SHIPMENT, "unknown SKU KB-999")
    assert failure == (f"order o-1 ended {ended.value}, not AWAITING_SHIPMENT: unknown SKU KB-999")
    assert wait_failure("o-1", ended, ended, "asked for it") is None


def test_waiting_is_met_at_the_stage_or_later_on_the_happy_path() -> None:
    for reached in (OrderStatus.AWAITING_SHIPMENT, OrderStatus.COMPLETED, OrderStatus.REFUNDED):
        assert wait_failure("o-1", reached, OrderStatus.AWAITING_SHIPMENT, None) is None


# --- one spelling of a disposition: the CLI's, the README's and the wire's -------------------


def test_disposition_is_spelled_restock_on_the_wire_and_old_spellings_still_parse() -> None:
    line = {"sku": "KB-100", "quantity": 1, "disposition": "RESTOCK"}  # as recorded before
    old = json.dumps({"rma_id": "RMA-o-1-1", "lines": [line]})
    request = InspectionRequest.model_validate_json(old)
    assert request.lines[0].disposition is Disposition.RESTOCK
    assert '"disposition":"restock"' in request.model_dump_json()
    assert Disposition("Refurbish") is Disposition.REFURBISH
    with pytest.raises(ValueError):
        Disposition("burn")
    parsed = parse_inspection(["kb-100:2:RESTOCK", "KB-100:1:dispose"])
    assert [(x.sku, x.quantity, x.disposition.value) for x in parsed] == [
        ("KB-100", 2, "restock"),
        ("KB-100", 1, "dispose"),
    ]


@pytest.mark.parametrize("item", ["KB-100:²", "KB-100:1.5", "KB-100:-1", ":2"])
def test_a_line_option_takes_a_plain_whole_quantity(item: str) -> None:
    with pytest.raises(UserError, match="use SKU:QTY"):
        parse_lines([item])
    with pytest.raises(UserError, match=r"restock, refurbish, dispose"):
        parse_inspection([item + ":restock"])


# --- what people read: durations, totals, parcels, the report --------------------------------


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(hours=24), "24h"),
        (timedelta(hours=48), "48h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(days=5), "5d"),
        (timedelta(days=3, hours=12), "3d12h"),
        (timedelta(0), "0s"),
    ],
)
def test_durations_read_as_people_write_them(span: timedelta, text: str) -> None:
    assert format_duration(span) == text


def state(status: OrderStatus, **fields: Any) -> OrderState:
    return OrderState(
        order_id="o-1",
        status=status,
        customer_id="C-WEB-001",
        channel="web",
        currency="EUR",
        lines=[{"sku": "KB-100", "quantity": 2, "unit_price": "49.90"}],
        **fields,
    )


def parcel(**flags: bool) -> Shipment:
    return Shipment(shipment_id="o-1-FRA", warehouse="FRA", lines=[], label_id="L-1", **flags)


def test_one_total_even_for_an_order_rejected_before_it_was_totalled() -> None:
    assert render.order_total(state(OrderStatus.REJECTED)) == Decimal("99.80")
    assert render.order_total(state(OrderStatus.COMPLETED, total=Decimal("99.80"))) == Decimal(
        "99.80"
    )
    assert render.state_json(state(OrderStatus.REJECTED), "temporal")["total"] == "99.80"


def shown(*parts: Any) -> str:
    """What the CLI's console prints for `parts` (wide: no column is cut)."""
    console = Console(width=400, color_system=None)
    with console.capture() as output:
        console.print(*parts)
    return output.get()


def printed(monkeypatch: pytest.MonkeyPatch, call: Any) -> str:
    """What `call()` prints on the CLI's console."""
    console = Console(width=400, color_system=None)
    monkeypatch.setattr(render, "console", console)
    with console.capture() as output:
        call()
    return output.get()


ROW = {"order_id": "o-1", "status": "AWAITING_SHIPMENT", "total": "20.00", "currency": "EUR"}


def test_list_says_which_amount_is_the_goods_net_and_which_gross_it_shows() -> None:
    rows = [
        ROW | {"gross_estimate": "53.49", "invoiced_gross": None},
        ROW
        | {"order_id": "o-2", "status": "COMPLETED"}
        | {"gross_estimate": "53.49", "invoiced_gross": "29.69"},
        ROW
        | {"order_id": "o-3", "status": "SHIPPED"}
        | {"gross_estimate": "53.49", "invoiced_gross": "12.00"},
        ROW | {"order_id": "o-4", "status": "REJECTED", "total": "30.00", "currency": None},
    ]
    text = shown(render.order_table(rows))
    header = next(line for line in text.splitlines() if "goods net" in line)
    assert "gross" in header.replace("goods net", "")
    assert "before shipping and tax" in text and "the dearest shipping + tax" in text
    line = {
        row["order_id"]: next(x for x in text.splitlines() if row["order_id"] in x) for row in rows
    }
    assert "20.00 EUR" in line["o-1"] and "est. 53.49 EUR" in line["o-1"]
    assert "invoiced 29.69 EUR" in line["o-2"] and "est." not in line["o-2"]
    assert "est. 53.49 EUR, invoiced 12.00 EUR so far" in line["o-3"]  # invoiced in parts
    assert "30.00" in line["o-4"] and "est." not in line["o-4"] and "invoiced" not in line["o-4"]


def test_status_shows_the_gross_estimate_until_the_invoice_says_the_gross(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    validated = state(OrderStatus.AWAITING_SHIPMENT, total=Decimal("99.80"))
    before = printed(monkeypatch, lambda: render.show_state(validated, gross_estimate="143.46"))
    assert "goods net 99.80 EUR" in before
    assert "gross est. 143.46 EUR incl. shipping and tax" in before
    billed = {
        "invoice_no": "INV-2026-000001",
        "currency": "EUR",
        "net": "104.75",
        "tax": "19.90",
        "gross": "124.65",
        "due_date": "2026-01-31",
        "credited": "0.00",
    }
    after = printed(
        monkeypatch, lambda: render.show_state(validated, billed=billed, gross_estimate="143.46")
    )
    assert "goods net 99.80 EUR" in after and "gross est." not in after
    assert "net 104.75  tax 19.90  gross 124.65 EUR" in after
    data = render.state_json(validated, "temporal", None, "143.46")
    assert (data["total"], data["goods_net"], data["gross_estimate"]) == (
        "99.80",
        "99.80",
        "143.46",
    )
    assert render.state_json(state(OrderStatus.REJECTED), "temporal")["gross_estimate"] is None


def test_a_parcel_that_never_left_a_stopped_or_billed_order_shows_as_voided() -> None:
    for stopped in (OrderStatus.CANCELLED, OrderStatus.REJECTED, OrderStatus.COMPLETED):
        assert render.shipment_state(state(stopped), parcel()) == "voided"
    assert render.shipment_state(state(OrderStatus.AWAITING_SHIPMENT), parcel()) == "booked"
    assert render.shipment_state(state(OrderStatus.COMPLETED), parcel(shipped=True)) == "shipped"
    assert render.shipment_state(state(OrderStatus.CANCELLED), parcel(lost=True)) == "lost"
    stopped = state(OrderStatus.CANCELLED, shipments=[parcel()])
    assert render.state_json(stopped, "temporal")["shipments"][0]["state"] == "voided"


NUMBERS = {
    "orders": 3,
    "by_status": {"COMPLETED": 2, "REJECTED": 1},
    "cycle_time_hours_median": 30.5,
    "order_accuracy_pct": 100.0,
    "on_time_delivery_pct": None,
    "rma_to_refund_hours_median": 2.0,
    "escalations": 1,
}


def test_report_rows_read_as_durations_and_shares_against_their_targets() -> None:
    rows = {row["key"]: row for row in render.kpi_rows(NUMBERS)}
    assert rows["cycle_time_hours_median"] | {"kpi": ""} == {
        "key": "cycle_time_hours_median",
        "kpi": "",
        "value": "30h30m",
        "target": "< 24h",
        "met": False,
    }
    assert (
        rows["rma_to_refund_hours_median"]["value"],
        rows["rma_to_refund_hours_median"]["target"],
    ) == ("2h", "< 5d")
    assert rows["order_accuracy_pct"]["target"] == "> 99.5 %" and rows["order_accuracy_pct"]["met"]
    assert rows["on_time_delivery_pct"]["value"] == "no data yet"
    assert rows["on_time_delivery_pct"]["met"] is None


def test_the_chart_is_a_png_and_a_bad_path_is_one_line(tmp_path: Path) -> None:
    chart = tmp_path / "kpis.png"
    draw_kpis(NUMBERS, chart)
    data = chart.read_bytes()
    assert data.startswith(PNG) and len(data) > 5000
    for bad in (tmp_path / "missing" / "kpis.png", tmp_path / "kpis.jpg"):
        with pytest.raises(UserError) as refused:
            draw_kpis(NUMBERS, bad)
        assert "\n" not in str(refused.value) and str(bad) in str(refused.value)


def test_a_second_seed_says_the_stock_is_kept_not_zero() -> None:
    again = {"warehouses": 4, "stock": 20, "new stock": 0, "price_book": 4}
    assert seed_summary(again) == (
        "seeded 4 warehouses, 20 stock rows (0 new, 20 kept as they are: a re-seed never "
        "resets live stock), 4 price book entries"
    )
    first = {"warehouses": 4, "stock": 20, "new stock": 20}
    assert seed_summary(first) == "seeded 4 warehouses, 20 stock rows (20 new)"


# --- logs: an expected business failure is one INFO line; a fault keeps its traceback --------


def record_of(error: BaseException) -> logging.LogRecord:
    try:
        raise error
    except BaseException:
        info = sys.exc_info()
    record = logging.LogRecord(
        "temporalio.activity",
        logging.WARNING,
        __file__,
        1,
        "Completing activity as failed",
        None,
        info,
    )
    record.temporal_activity = {"workflow_id": "order-o-1", "activity_type": "validate_order"}
    return record


def test_a_business_failure_is_logged_as_one_info_line() -> None:
    record = record_of(
        ApplicationError("unknown SKU KB-999", type="InvalidOrder", non_retryable=True)
    )
    assert BusinessFailures().filter(record)
    text = logging.Formatter("%(levelname)s %(message)s").format(record)
    assert text == (
        "INFO order-o-1 validate_order: InvalidOrder: unknown SKU KB-999 "
        "(business failure, not retried)"
    )


def test_a_real_error_keeps_its_level_and_traceback() -> None:
    for error in (RuntimeError("database is down"), ApplicationError("retry me", type="Flaky")):
        record = record_of(error)
        assert BusinessFailures().filter(record)
        text = logging.Formatter("%(levelname)s %(message)s").format(record)
        assert record.levelno == logging.WARNING and "Traceback" in text
