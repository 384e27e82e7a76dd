"""Shopify storefront orders: the `orders/create` webhook body read into the canonical order."""

import copy
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.channels.records import ChannelBatch, ChannelConfig, RecordError
from domain.channels.shopify import parse
from domain.order import Address, Order, OrderLine

SAMPLE = Path(__file__).parents[2] / "examples" / "channels" / "shopify-order.json"
BAD = Path(__file__).parent / "channel_samples"

SHOP = ChannelConfig(
    name="shop",
    format="shopify",
    order_channel="web",
    auth="hmac",
    customer_id="C-WEB-001",
    currency="EUR",
    promised_days=5,
)


def sample() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SAMPLE.read_bytes())
    return loaded


def read(body: dict[str, Any] | bytes, config: ChannelConfig = SHOP) -> ChannelBatch:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse(payload, "request", config)


def only_order(batch: ChannelBatch) -> Order:
    assert batch.errors == []
    assert len(batch.orders) == 1
    return batch.orders[0].order


def problems(batch: ChannelBatch) -> list[tuple[str, str]]:
    assert batch.orders == []
    return [(error.field, error.reason) for error in batch.errors]


def fields(batch: ChannelBatch) -> list[str]:
    return [field for field, _ in problems(batch)]


def test_the_sample_webhook_is_exactly_the_storefront_order() -> None:
    batch = parse(SAMPLE.read_bytes(), "request", SHOP)

    assert batch.errors == []
    [placed] = batch.orders
    assert (placed.channel, placed.external_id) == ("shop", "5634127890123")
    assert placed.order == Order(
        order_id="shop-5634127890123",
        channel="web",
        customer_id="C-WEB-001",
        currency="EUR",
        lines=[
            OrderLine(sku="KB-100", quantity=1, unit_price=Decimal("49.90")),
            OrderLine(sku="MS-200", quantity=2, unit_price=Decimal("19.90")),
            OrderLine(sku="CB-USB", quantity=3, unit_price=Decimal("9.90")),
        ],
        ship_to=Address(
            name="Sanne Bakker",
            street="Keizersgracht 112, 3e verdieping",
            city="Amsterdam",
            postal_code="1015 CV",
            country="NL",
        ),
        promised_days=5,
        purchase_order="#1001",
        submitted_by="sanne.bakker@example.nl",
        contact_email="sanne.bakker@example.nl",  # the shopper is told, not the storefront
    )
    assert placed.order.total == Decimal("119.40")  # Shopify's total_line_items_price


def test_the_same_webhook_delivered_twice_names_the_same_order() -> None:
    first = only_order(parse(SAMPLE.read_bytes(), "request", SHOP))
    again = only_order(read(sample()))  # re-serialised: other whitespace, same order

    assert again.order_id == first.order_id == "shop-5634127890123"
    assert again == first


def test_the_admin_api_shape_wrapped_in_order_reads_the_same() -> None:
    assert only_order(read({"order": sample()})) == only_order(read(sample()))


def test_the_sample_with_bad_line_items_names_every_bad_item() -> None:
    path = BAD / "shopify-bad-line-items.json"
    batch = parse(path.read_bytes(), path.name, SHOP)

    assert batch.orders == []
    assert {error.source for error in batch.errors} == {path.name}
    assert {error.record for error in batch.errors} == {"#1002"}
    found = problems(batch)
    assert [field for field, _ in found] == [
        "line_items[0].price",
        "line_items[3].sku",
        "line_items[4].price",
    ]
    assert "decimal string" in found[0][1] and "49.9" in found[0][1]
    assert found[1][1].startswith("missing (Cadeauverpakking)")
    assert "MS-200 is also on line_items[1] at 19.90" in found[2][1]


def test_an_order_without_a_shipping_address_is_not_placed() -> None:
    path = BAD / "shopify-local-pickup.json"
    batch = parse(path.read_bytes(), path.name, SHOP)

    assert problems(batch) == [("shipping_address", "missing: the order has no address to ship to")]
    assert batch.errors[0].record == "#1003"


def test_a_truncated_body_is_one_error_with_its_line() -> None:
    path = BAD / "shopify-truncated.json"
    [error] = parse(path.read_bytes(), path.name, SHOP).errors

    assert (error.source, error.field) == (path.name, "body")
    assert error.line == path.read_text().count("\n") + 1
    assert "cut off" in error.reason


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "is empty"),
        (b"   \n", "is empty"),
        (b"[]", "must be a JSON object (one Shopify order), not a list"),
        (b'"#1001"', "not a string"),
        (b"null", "not null"),
        (b"{'id': 1}", "is not valid JSON"),
        ('{"name": "#1001 Café"}'.encode("latin-1"), "is not UTF-8 text"),
        (b"[" * 100_000, "JSON"),
        (b'{"id": ' + b"9" * 5000 + b"}", "JSON"),
    ],
)
def test_a_body_that_is_not_a_shopify_order_is_one_error(payload: bytes, reason: str) -> None:
    batch = parse(payload, "request", SHOP)

    assert batch.orders == []
    [error] = batch.errors
    assert (error.source, error.field) == ("request", "body")
    assert reason in error.reason


def test_same_sku_twice_at_the_same_price_is_one_line() -> None:
    body = sample()
    extra = copy.deepcopy(body["line_items"][0])
    extra.update(id=14712367890199, quantity=2)
    body["line_items"].append(extra)

    order = only_order(read(body))

    assert [(line.sku, line.quantity) for line in order.lines] == [
        ("KB-100", 3),
        ("MS-200", 2),
        ("CB-USB", 3),
    ]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        (lambda o: o.pop("id"), "id", "missing"),
        (lambda o: o.update(id=5.634e12), "id", "numeric order id"),
        (lambda o: o.update(id=True), "id", "numeric order id"),
        (lambda o: o.pop("line_items"), "line_items", "at least one line item"),
        (lambda o: o.update(line_items=[]), "line_items", "at least one line item"),
        (lambda o: o.update(line_items=["KB-100"]), "line_items[0]", "line item object"),
        (lambda o: o["line_items"][1].update(sku=""), "line_items[1].sku", "missing (Wireless"),
        (lambda o: o["line_items"][1].update(sku="ms-200"), "line_items[1].sku", "'ms-200'"),
        (lambda o: o["line_items"][1].pop("quantity"), "line_items[1].quantity", "missing"),
        (lambda o: o["line_items"][1].update(quantity="2"), "line_items[1].quantity", "'2'"),
        (lambda o: o["line_items"][1].update(quantity=2.0), "line_items[1].quantity", "2.0"),
        (lambda o: o["line_items"][1].update(quantity=0), "line_items[1].quantity", "at least 1"),
        (lambda o: o["line_items"][1].update(quantity=200_000), "line_items[1].quantity", "100000"),
        (lambda o: o["line_items"][2].update(price=9.9), "line_items[2].price", "not a number"),
        (lambda o: o["line_items"][2].update(price="9.999"), "line_items[2].price", "decimals"),
        (lambda o: o["line_items"][2].update(price="9,90"), "line_items[2].price", "comma"),
        (lambda o: o["line_items"][2].pop("price"), "line_items[2].price", "missing"),
        (lambda o: o.update(currency="XYZ"), "currency", "not a currency we trade in"),
        (lambda o: o.update(currency=978), "currency", "ISO currency code"),
        (lambda o: o["shipping_address"].update(zip=None), "shipping_address.zip", "missing"),
        (lambda o: o["shipping_address"].update(zip=1015), "shipping_address.zip", "JSON string"),
        (lambda o: o["shipping_address"].update(address1=""), "shipping_address.address1", ""),
        (lambda o: o["shipping_address"].update(city=" "), "shipping_address.city", "missing"),
        (
            lambda o: o["shipping_address"].update(country_code="NLD"),
            "shipping_address.country_code",
            "pattern",
        ),
        (lambda o: o.update(name="#" + "9" * 80), "name", "64 characters"),
    ],
)
def test_a_bad_field_is_an_error_naming_the_shopify_field(
    change: Any, field: str, reason: str
) -> None:
    body = sample()
    change(body)

    found = problems(read(body))

    assert field in [name for name, _ in found], found
    assert any(reason in why for name, why in found if name == field), found


def test_every_problem_of_a_webhook_is_reported_at_once() -> None:
    body = sample()
    body.pop("id")
    body["line_items"][0]["sku"] = None
    body["line_items"][1]["price"] = 19.9
    body["shipping_address"]["zip"] = ""

    assert fields(read(body)) == [
        "id",
        "line_items[0].sku",
        "line_items[1].price",
        "shipping_address.zip",
    ]


def test_the_customer_is_the_senders_partner_account_else_the_storefronts() -> None:
    partner = SHOP.model_copy(update={"partners": {"sanne.bakker@example.nl": "C-SMALL"}})
    assert only_order(read(sample(), partner)).customer_id == "C-SMALL"

    body = sample()
    body["email"] = None  # the customer's e-mail is still on the customer record
    assert only_order(read(body)).customer_id == "C-WEB-001"

    no_account = SHOP.model_copy(update={"customer_id": None})
    [error] = read(sample(), no_account).errors
    assert error.field == "email"
    assert "no customer account for sanne.bakker@example.nl" in error.reason


def test_what_shopify_leaves_out_comes_from_the_channel() -> None:
    body = sample()
    body.pop("currency")
    assert only_order(read(body)).currency == "EUR"

    without = SHOP.model_copy(update={"currency": None})
    [error] = read(body, without).errors
    assert (error.field, error.reason) == (
        "currency",
        "missing: give the ISO currency code, e.g. EUR",
    )


def test_the_address_reads_the_way_shopify_fills_it() -> None:
    body = sample()
    address = body["shipping_address"]
    address.update(name=None, company="Studio Noord", address2=None, country_code="nl")

    ship_to = only_order(read(body)).ship_to

    assert ship_to == Address(
        name="Sanne Bakker, Studio Noord",
        street="Keizersgracht 112",
        city="Amsterdam",
        postal_code="1015 CV",
        country="NL",
    )


ODD_VALUES: list[object] = [None, True, 0, -1, 1.5, "", "x" * 300, [], {}, [None], {"a": 1}]


@pytest.mark.parametrize("odd", ODD_VALUES, ids=repr)
def test_no_value_anywhere_makes_the_adapter_raise(odd: object) -> None:
    template = sample()
    places: list[tuple[str, ...]] = [(key,) for key in template]
    places += [("line_items", "0", key) for key in template["line_items"][0]]
    places += [("shipping_address", key) for key in template["shipping_address"]]
    places += [("customer", key) for key in template["customer"]]
    for place in places:
        body = copy.deepcopy(template)
        target: Any = body
        for step in place[:-1]:
            target = target[int(step)] if isinstance(target, list) else target[step]
        target[place[-1]] = odd

        batch = read(body)

        assert all(isinstance(error, RecordError) for error in batch.errors)
        assert len(batch.orders) + bool(batch.errors) == 1, place
