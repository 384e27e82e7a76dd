"""Storefront orders from Shopify: the `orders/create` webhook body read into one canonical order.

The body is Shopify's order JSON (the REST Admin API `Order` resource; the same object wrapped as
`{"order": {...}}`, as the Admin API returns it, is read too). One webhook is one order:

- `id` (a large integer) -> the external id; the order id is `<channel>-<id>`, so a webhook
  Shopify delivers twice names the same order.
- `name` ("#1001") -> purchase_order.
- `email` (else `contact_email`, else `customer.email`) -> the customer: the sender's partner
  entry, else the storefront's own account (e.g. C-WEB-001); it is also submitted_by and
  contact_email (the shopper is told, not the storefront's account).
- `currency` (else the channel's) -> currency.
- `line_items[]`: `sku`, `quantity`, `price` (a decimal string, as Shopify sends it) -> lines.
  The same SKU on two line items is one line with the quantities added when the price is the
  same; at two prices it is an error (only the shop can say which price holds).
- `shipping_address`: `name` (else `first_name` + `last_name`) and `company`, `address1` +
  `address2`, `city`, `zip`, `country_code` -> ship_to.
- Shopify carries no promised date: the channel's promised_days.

`price` is the unit price before discounts; Shopify's discounts, shipping lines and taxes are
settled at the storefront and not carried (the canonical order prices goods only).
"""

import json
from dataclasses import dataclass, field
from typing import Any

from domain.channels.records import (
    ChannelBatch,
    ChannelConfig,
    RecordError,
    amount_problem,
    build_order,
    collect,
    currency_problem,
    merge_same_sku,
    order_id_for,
    sku_problem,
)

_ADDRESS_FIELDS = {
    "ship_to": "shipping_address",
    "ship_to.name": "shipping_address.name",
    "ship_to.street": "shipping_address.address1",
    "ship_to.city": "shipping_address.city",
    "ship_to.postal_code": "shipping_address.zip",
    "ship_to.country": "shipping_address.country_code",
}
_ADDRESS_PARTS = (
    "name",
    "first_name",
    "last_name",
    "company",
    "address1",
    "address2",
    "city",
    "zip",
    "country_code",
)
_ORDER_FIELDS = {
    "order_id": "id",
    "customer_id": "email",
    "submitted_by": "email",
    "purchase_order": "name",
    "lines": "line_items",
    **_ADDRESS_FIELDS,
}


@dataclass
class _Problems:
    """The errors found in one webhook so far."""

    source: str
    record: str | None = None
    found: list[RecordError] = field(default_factory=list)

    def add(self, where: str, reason: str, line: int | None = None) -> None:
        self.found.append(
            RecordError(
                source=self.source, line=line, record=self.record, field=where, reason=reason
            )
        )


def parse(payload: bytes, source: str, config: ChannelConfig) -> ChannelBatch:
    """The order a Shopify `orders/create` webhook carries, or every reason it cannot be placed."""
    problems = _Problems(source)
    body = _json_object(payload, problems)
    if body is None:
        return ChannelBatch(errors=problems.found)
    external_id = _external_id(body.get("id"), problems)
    problems.record = _text(body.get("name")) or external_id
    email = _sender(body)
    customer = config.customer_for(email)
    if customer is None:
        problems.add(
            "email",
            f"no customer account for {email or 'an order without e-mail'}: "
            "the channel has no account and the sender is not a known partner",
        )
    currency = _currency(body.get("currency"), config, problems)
    lines, origin = _lines(body.get("line_items"), currency or "", problems)
    ship_to = _ship_to(body.get("shipping_address"), problems)
    if problems.found or external_id is None:
        return ChannelBatch(errors=problems.found)
    data = {
        "order_id": order_id_for(config.name, external_id),
        "channel": config.order_channel.value,
        "customer_id": customer,
        "currency": currency,
        "lines": lines,
        "ship_to": ship_to,
        "promised_days": config.promised_days,
        "purchase_order": _text(body.get("name")),
        "submitted_by": email if email and len(email) <= 64 else None,
        "contact_email": email or None,
    }
    renames = {**_ORDER_FIELDS, **_line_fields(origin)}
    result = build_order(data, source, record=problems.record, fields=renames)
    return collect(config.name, [(external_id, None, result)])


def _json_object(payload: bytes, problems: _Problems) -> dict[str, Any] | None:
    """The webhook body as a JSON object, or None with the reason recorded."""
    if not payload.strip():
        problems.add("body", "is empty: expected one Shopify order as a JSON object")
        return None
    try:
        body = json.loads(payload)
    except UnicodeDecodeError as error:
        problems.add("body", f"is not UTF-8 text (byte {error.start}): Shopify sends UTF-8 JSON")
        return None
    except json.JSONDecodeError as error:
        cut = error.pos >= len(payload.rstrip()) - 1
        reason = "ends before the JSON is complete (cut off?)" if cut else error.msg
        problems.add("body", f"is not valid JSON: {reason} at column {error.colno}", error.lineno)
        return None
    except (ValueError, RecursionError) as error:
        problems.add("body", f"is not JSON we can read: {error}")
        return None
    if isinstance(body, dict) and set(body) == {"order"} and isinstance(body["order"], dict):
        body = body["order"]
    if not isinstance(body, dict):
        problems.add("body", f"must be a JSON object (one Shopify order), not {_kind(body)}")
        return None
    return body


def _external_id(value: object, problems: _Problems) -> str | None:
    """Shopify's order id as text, or None with the reason recorded."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return str(value)
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return value.strip()
    if value is None:
        problems.add(
            "id", "missing: the Shopify order id tells a repeated webhook from a new order"
        )
    else:
        problems.add("id", f"must be Shopify's numeric order id, e.g. 5123456789012, not {value!r}")
    return None


def _sender(body: dict[str, Any]) -> str | None:
    """Who placed the order: its e-mail address, as Shopify gives it."""
    customer = body.get("customer")
    candidates = [body.get("email"), body.get("contact_email")]
    if isinstance(customer, dict):
        candidates.append(customer.get("email"))
    return next((text for text in map(_text, candidates) if text), None)


def _currency(value: object, config: ChannelConfig, problems: _Problems) -> str | None:
    """The order's currency (the channel's when Shopify gives none), or None with the reason."""
    if value is not None and not isinstance(value, str):
        problems.add("currency", f"must be an ISO currency code such as EUR, not {value!r}")
        return None
    code = _text(value) or config.currency or ""
    reason = currency_problem(code)
    if reason:
        problems.add("currency", reason)
        return None
    return code


def _lines(
    items: object, currency: str, problems: _Problems
) -> tuple[list[dict[str, Any]], list[int]]:
    """One canonical line per SKU, and for each the line item it came from first."""
    if not isinstance(items, list) or not items:
        problems.add("line_items", "missing: an order needs at least one line item")
        return [], []
    read = [(index, _line(index, item, currency, problems)) for index, item in enumerate(items)]
    indices = [index for index, line in read if line is not None]
    lines = [line for _, line in read if line is not None]
    merged, origin, conflicts = merge_same_sku(lines)
    for later, earlier in conflicts:
        problems.add(
            f"line_items[{indices[later]}].price",
            f"{lines[later]['sku']} is also on line_items[{indices[earlier]}] at "
            f"{lines[earlier]['unit_price']}; one SKU has one price per order",
        )
    return merged, [indices[first] for first in origin]


def _line(index: int, item: object, currency: str, problems: _Problems) -> dict[str, Any] | None:
    """One line item as a canonical line, or None with every reason recorded."""
    at = f"line_items[{index}]"
    if not isinstance(item, dict):
        problems.add(at, f"must be a line item object, not {_kind(item)}")
        return None
    count = len(problems.found)
    sku, quantity, price = item.get("sku"), item.get("quantity"), item.get("price")
    if reason := _sku_reason(sku, item.get("title")):
        problems.add(f"{at}.sku", reason)
    if quantity is None:
        problems.add(f"{at}.quantity", "missing: how many units of the product")
    elif type(quantity) is not int or quantity < 1:
        problems.add(f"{at}.quantity", f"must be a whole number of at least 1, not {quantity!r}")
    if price is None:
        problems.add(f"{at}.price", 'missing: the unit price, e.g. "199.00"')
    elif not isinstance(price, str):
        problems.add(
            f"{at}.price",
            f'must be a decimal string such as "199.00" (Shopify sends '
            f"prices as strings), not {_kind(price)}: {price!r}",
        )
    elif reason := amount_problem(price, currency):
        problems.add(f"{at}.price", reason)
    if len(problems.found) > count:
        return None
    return {"sku": str(sku).strip(), "quantity": quantity, "unit_price": str(price).strip()}


def _sku_reason(sku: object, title: object) -> str | None:
    """Why a line item's SKU is not one of ours (naming the product when it has none)."""
    if isinstance(sku, str) and sku.strip():
        return sku_problem(sku)
    product = f" ({title})" if isinstance(title, str) and title.strip() else ""
    return (
        f"missing{product}: every line item needs the SKU of a catalog product, e.g. KB-100; "
        "set it on the product variant in Shopify"
    )


def _ship_to(address: object, problems: _Problems) -> dict[str, str] | None:
    """The canonical address from Shopify's shipping address, or None with the reasons."""
    if not isinstance(address, dict):
        problems.add("shipping_address", "missing: the order has no address to ship to")
        return None
    count = len(problems.found)
    part = {key: _address_part(address, key, problems) for key in _ADDRESS_PARTS}
    person = part["name"] or " ".join(p for p in (part["first_name"], part["last_name"]) if p)
    shipped = {
        "name": ", ".join(p for p in (person, part["company"]) if p),
        "street": ", ".join(p for p in (part["address1"], part["address2"]) if p),
        "city": part["city"],
        "postal_code": part["zip"],
        "country": part["country_code"].upper(),
    }
    if len(problems.found) > count:
        return None
    for key, value in shipped.items():
        if not value:
            problems.add(_ADDRESS_FIELDS[f"ship_to.{key}"], "missing: needed to ship the order")
    if not part["address1"] and part["address2"]:
        problems.add("shipping_address.address1", "missing: needed to ship the order")
    return shipped


def _address_part(address: dict[str, Any], key: str, problems: _Problems) -> str:
    """One part of a Shopify address as text ("" when absent), or "" with the reason."""
    value = address.get(key)
    if value is None or isinstance(value, str):
        return (value or "").strip()
    problems.add(f"shipping_address.{key}", f"must be a JSON string, not {_kind(value)}: {value!r}")
    return ""


def _line_fields(origin: list[int]) -> dict[str, str]:
    """Canonical line paths renamed to the line items they came from."""
    renames: dict[str, str] = {}
    for line, index in enumerate(origin):
        renames[f"lines.{line}"] = f"line_items[{index}]"
        renames[f"lines.{line}.unit_price"] = f"line_items[{index}].price"
    return renames


def _text(value: object) -> str | None:
    """A non-blank string value, stripped; anything else is None."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _kind(value: object) -> str:
    """A JSON value's kind in words a sender knows."""
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list"}
    return "null" if value is None else names.get(type(value), "an object")
