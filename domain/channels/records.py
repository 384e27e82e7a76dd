"""What every channel adapter returns: canonical orders with their channel reference, and a
clear error per record it could not read.

An adapter is a pure function `parse(payload: bytes, source: str, config: ChannelConfig) ->
ChannelBatch`: no I/O, no clock, no database. It never raises for bad input; every problem
becomes a `RecordError` naming the source (file name or "request"), the line or segment, the
field and the reason, and the records that are good still come back as orders.
"""

import hashlib
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from domain.money import CURRENCY_EXPONENT
from domain.order import Order
from domain.statuses import Channel

_ORDER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")

ChannelFormat = Literal["canonical", "shopify", "x12_850", "csv", "email"]


class ChannelConfig(BaseModel):
    """One intake channel as configured: its format, the account its orders are booked to,
    and how its senders map to customers (no secrets here: those live in settings and the
    database)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,30}$", description="URL and order id prefix")
    format: ChannelFormat
    order_channel: Channel = Field(description="the canonical order's `channel`")
    auth: Literal["api_key", "hmac"] = "api_key"
    customer_id: str | None = Field(
        default=None, description="the account every order of this channel is booked to"
    )
    partners: dict[str, str] = Field(
        default_factory=dict,
        description="sender identifier (EDI id, e-mail address, customer id) -> customer id",
    )
    currency: str | None = Field(default=None, description="when the payload gives none")
    promised_days: int = Field(default=5, gt=0, le=90, description="when the payload gives none")

    def customer_for(self, sender: str | None) -> str | None:
        """The customer a sender orders for: its partner entry, else the channel's account."""
        if sender is not None:
            found = self.partners.get(sender) or self.partners.get(sender.strip().lower())
            if found:
                return found
        return self.customer_id


class RecordError(BaseModel):
    """One problem in one record: where it is and what is wrong, in words a sender can act on."""

    source: str
    line: int | None = Field(default=None, description="line (CSV, body) or segment (X12) number")
    record: str | None = Field(default=None, description="the record's own reference, if known")
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        ref = f" ({self.record})" if self.record else ""
        return f"{where}{ref}: {self.field}: {self.reason}"


class ChannelOrder(BaseModel):
    """One order read from a channel: the canonical order and the channel's own reference."""

    channel: str = Field(description="the configured channel's name")
    external_id: str = Field(min_length=1, max_length=200)
    order: Order
    line: int | None = Field(default=None, description="where the record starts in its source")


class ChannelBatch(BaseModel):
    """Everything one payload held: the good orders and an error per bad record."""

    orders: list[ChannelOrder] = Field(default_factory=list)
    errors: list[RecordError] = Field(default_factory=list)
    acknowledgement: str | None = Field(
        default=None, description="what the sender expects back (an X12 997), if anything"
    )


def order_id_for(channel: str, external_id: str) -> str:
    """The order id of a channel's order: `<channel>-<external id>` when that is a valid id
    (a `/` written as `.`), else a readable part and a hash; the same reference always gives
    the same id. Two references that only differ in `/` vs `.` would share an id: the intake
    answers the second with a conflict, never with the first one's order."""
    candidate = f"{channel}-{external_id}"
    if _ORDER_ID.match(candidate):
        return candidate
    readable = candidate.replace("/", ".")  # "C-ACME/PO-4711": an account's own PO number
    if "/" in candidate and _ORDER_ID.match(readable):
        return readable
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", external_id).strip("-.")[:24]
    digest = hashlib.sha256(external_id.encode()).hexdigest()[:16]
    return f"{channel}-{cleaned}-{digest}" if cleaned else f"{channel}-{digest}"


def field_errors(
    error: ValidationError,
    source: str,
    line: int | None = None,
    record: str | None = None,
    fields: dict[str, str] | None = None,
) -> list[RecordError]:
    """One `RecordError` per problem pydantic found in a canonical order built from a record.

    `fields` renames canonical paths to the channel's own names (e.g. `lines.0.sku` ->
    `line_items[0].sku`) so the sender sees the field of the payload they sent; the longest
    matching prefix wins.
    """
    renames = fields or {}
    out = []
    for problem in error.errors():
        path = ".".join(str(part) for part in problem["loc"]) or "order"
        prefix = max(
            (p for p in renames if path == p or path.startswith(p + ".")), key=len, default=None
        )
        if prefix is not None:
            path = renames[prefix] + path[len(prefix) :]
        message = str(problem["msg"]).removeprefix("Value error, ")
        out.append(RecordError(source=source, line=line, record=record, field=path, reason=message))
    return out


def build_order(
    data: dict[str, Any],
    source: str,
    line: int | None = None,
    record: str | None = None,
    fields: dict[str, str] | None = None,
) -> Order | list[RecordError]:
    """The canonical order a record maps to (validated as a placed order), or its errors."""
    from domain.order import parse_order

    try:
        return parse_order(data)
    except ValidationError as error:
        return field_errors(error, source, line, record, fields)


def collect(
    channel: str, built: Iterable[tuple[str, int | None, Order | list[RecordError]]]
) -> ChannelBatch:
    """A batch from (external id, line, order-or-errors) triples."""
    batch = ChannelBatch()
    for external_id, line, result in built:
        if isinstance(result, list):
            batch.errors.extend(result)
        else:
            batch.orders.append(
                ChannelOrder(channel=channel, external_id=external_id, order=result, line=line)
            )
    return batch


# Field checks shared by the adapters, so every sender reads the same words for the same mistake.

_AMOUNT = re.compile(r"^[0-9]+(\.[0-9]+)?$")
_SKU = re.compile(r"^[A-Z0-9][A-Z0-9-]{1,39}$")


def sku_problem(sku: str) -> str | None:
    """Why `sku` cannot be one of our catalog SKUs, or None when it can."""
    if not sku.strip():
        return "missing: every line needs the SKU of a catalog product, e.g. KB-100"
    if not _SKU.match(sku.strip()):
        return (
            f"{sku!r} is not a SKU of our catalog (capital letters, digits and dashes, e.g. KB-100)"
        )
    return None


def currency_problem(code: str) -> str | None:
    """Why `code` is not a currency we trade in, or None when it is."""
    if not code.strip():
        return "missing: give the ISO currency code, e.g. EUR"
    if code.strip() not in CURRENCY_EXPONENT:
        known = ", ".join(sorted(CURRENCY_EXPONENT))
        return f"{code!r} is not a currency we trade in (known: {known})"
    return None


def amount_problem(text: str, currency: str) -> str | None:
    """Why `text` is not a unit price in `currency` (digits, a decimal point, no more decimals
    than the currency has), or None when it is."""
    value = text.strip()
    if not value:
        return "missing: give the unit price, e.g. 12.50"
    if value.startswith("-"):
        return f"{value} is negative: a unit price is 0 or more"
    if "," in value:
        return (
            f"{value!r} has a comma: write the amount with a decimal point and no thousands "
            "separator, e.g. 1299.50"
        )
    if not _AMOUNT.match(value):
        return f"{value!r} is not an amount such as 12.50"
    decimals = len(value.partition(".")[2])
    allowed = CURRENCY_EXPONENT.get(currency, 2)
    if decimals > allowed:
        return f"{value} has {decimals} decimals; {currency} amounts have at most {allowed}"
    return None


def merge_same_sku(
    lines: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[int], list[tuple[int, int]]]:
    """One line per SKU, as the canonical order wants: a SKU repeated at the same unit price is
    one line with the quantities added up; repeated at another price it is a conflict only the
    sender can settle.

    Args:
        lines: `sku`, `quantity` (int) and `unit_price` (a valid decimal string) per line.

    Returns:
        The merged lines; for each, the index of the line it came from first; and a
        (later, earlier) index pair per SKU repeated at a different price.
    """
    merged: list[dict[str, Any]] = []
    origin: list[int] = []
    first_of: dict[str, int] = {}
    conflicts: list[tuple[int, int]] = []
    for index, line in enumerate(lines):
        at = first_of.get(line["sku"])
        if at is None:
            first_of[line["sku"]] = len(merged)
            merged.append(dict(line))
            origin.append(index)
        elif Decimal(merged[at]["unit_price"]) == Decimal(line["unit_price"]):
            merged[at]["quantity"] += line["quantity"]
        else:
            conflicts.append((index, origin[at]))
    return merged, origin, conflicts
