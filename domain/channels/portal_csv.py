"""Orders from the B2B portal's CSV export: one file, many orders, one row per order line.

The first row names the columns (matched case-insensitively, in any order):

    po_number         the customer's purchase order number            required
    customer_id       our account id, e.g. C-ACME                     required
    sku               catalog SKU, e.g. KB-100                        required
    quantity          whole units, e.g. 10                            required
    unit_price        agreed unit price, decimal point, e.g. 229.00   required
    currency          ISO code, e.g. EUR (empty: the channel's)       required column
    ship_name         who receives the goods                          required
    ship_street       street and number                               required
    ship_city                                                         required
    ship_postal_code                                                  required
    ship_country      ISO 3166 two-letter code, e.g. DE               required
    promised_date     YYYY-MM-DD (empty: promised_days, else the channel's days)
    requested_by      the buyer who placed it                         optional column
    promised_days     days to deliver, when there is no promised_date optional column

Rows with the same customer_id and po_number are one order; its external id is
`<customer_id>/<po_number>`. The rows of an order must agree on currency, ship-to, promised
date or days and requested_by; a row that differs is an error on that row. The same SKU on two
rows at the same price is one line with the quantities added; at two prices it is an error.
A customer_id is booked as the channel's partners map it; a channel configured for one account
takes that account's orders only.

An order with any bad row is not placed, and every error of it is reported: placing its good
rows alone would ship less than the customer asked for on a PO they believe placed in full. The
file's other orders are placed. A row without customer_id or po_number belongs to no order and is
reported alone. A file that cannot be read as this CSV (not UTF-8, a broken quote, an unknown or
missing column) is one error and no orders: past the break no order is known to be complete.
Line numbers are the file's physical lines, the header being line 1.
"""

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
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
from domain.order import Order

_SHIP_TO = ("ship_name", "ship_street", "ship_city", "ship_postal_code", "ship_country")
REQUIRED = (
    *("po_number", "customer_id", "sku", "quantity", "unit_price", "currency"),
    *_SHIP_TO,
    "promised_date",
)
OPTIONAL = ("requested_by", "promised_days")
_SHARED = ("currency", *_SHIP_TO, "promised_date", "promised_days", "requested_by")
_FIELDS = {
    "order_id": "po_number",
    "customer_id": "customer_id",
    "purchase_order": "po_number",
    "submitted_by": "requested_by",
    "ship_to": "ship_name",
    "ship_to.name": "ship_name",
    "ship_to.street": "ship_street",
    "ship_to.city": "ship_city",
    "ship_to.postal_code": "ship_postal_code",
    "ship_to.country": "ship_country",
}
_WHOLE = re.compile(r"^[0-9]{1,9}$")
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LINE_PATH = re.compile(r"^lines\.([0-9]+)\.(sku|quantity|unit_price)")


@dataclass
class _Row:
    """One order line as the file has it: its physical line and its values by column."""

    line: int
    values: dict[str, str]
    width_error: str | None = None

    def get(self, column: str) -> str:
        return self.values.get(column, "")


def parse(payload: bytes, source: str, config: ChannelConfig) -> ChannelBatch:
    """The orders of a portal CSV export and an error per bad row."""
    rows = _read(payload, source)
    if isinstance(rows, RecordError):
        return ChannelBatch(errors=[rows])
    orders: dict[tuple[str, str], list[_Row]] = {}
    errors: list[RecordError] = []
    for row in rows:
        key = (row.get("customer_id"), row.get("po_number"))
        if all(key):
            orders.setdefault(key, []).append(row)
        else:
            errors.extend(_check(row, config, source, key[1] or key[0] or None)[1])
    built = []
    for (customer_id, po_number), order_rows in orders.items():
        external_id = f"{customer_id}/{po_number}"
        result = _order(order_rows, external_id, config, source)
        built.append((external_id, order_rows[0].line, result))
    batch = collect(config.name, built)
    batch.errors = sorted([*batch.errors, *errors], key=lambda error: error.line or 0)
    return batch


def _read(payload: bytes, source: str) -> list[_Row] | RecordError:
    """The data rows of the file by column, or the one reason the file cannot be read."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = payload[: error.start].count(b"\n") + 1
        reason = (
            f"is not UTF-8 text (byte 0x{payload[error.start]:02X} on line {line}): "
            "export the file as CSV UTF-8"
        )
        return RecordError(source=source, line=line, field="file", reason=reason)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    lines: list[tuple[int, list[str]]] = []
    end = 0
    try:
        for cells in reader:
            start, end = end + 1, reader.line_num
            if any(cell.strip() for cell in cells):
                lines.append((start, cells))
    except csv.Error as error:
        reason = (
            f"is not readable CSV from here on ({error}): a value holding a comma, quote or "
            'line break must be in double quotes, with quotes inside it doubled ("")'
        )
        return RecordError(source=source, line=end + 1, field="file", reason=reason)
    if not lines:
        reason = f"is empty: expected a header row ({', '.join(REQUIRED)}) and a row per line"
        return RecordError(source=source, line=1, field="file", reason=reason)
    header_line, header = lines[0]
    columns = _columns(header)
    if isinstance(columns, str):
        return RecordError(source=source, line=header_line, field="header", reason=columns)
    if len(lines) == 1:
        reason = "has a header but no order rows"
        return RecordError(source=source, line=header_line, field="file", reason=reason)
    return [_row(line, cells, columns) for line, cells in lines[1:]]


def _columns(header: list[str]) -> list[str] | str:
    """The column of each position of the header, or what is wrong with the header."""
    names = [cell.strip().lower() for cell in header]
    if len(names) == 1 and ";" in names[0]:
        return "columns are separated by semicolons: export the file with commas"
    unknown = [repr(name) for name in names if name not in REQUIRED + OPTIONAL]
    missing = [name for name in REQUIRED if name not in names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    problems = [
        f"{label} column(s) {', '.join(found)}"
        for label, found in (("unknown", unknown), ("missing", missing), ("repeated", repeated))
        if found
    ]
    if not problems:
        return names
    expected = f"the columns are {', '.join(REQUIRED)}; optional {', '.join(OPTIONAL)}"
    return f"{'; '.join(problems)} ({expected})"


def _row(line: int, cells: list[str], columns: list[str]) -> _Row:
    values = {column: cell.strip() for column, cell in zip(columns, cells, strict=False)}
    row = _Row(line, values)
    if len(cells) != len(columns):
        row.width_error = (
            f"has {len(cells)} values where the header has {len(columns)} columns "
            "(a value holding a comma must be in double quotes)"
        )
    return row


def _order(
    rows: list[_Row], external_id: str, config: ChannelConfig, source: str
) -> Order | list[RecordError]:
    """One order from its rows, or every error that keeps it from being placed."""
    checked = [_check(row, config, source, external_id) for row in rows]
    errors = [error for _, found in checked for error in found]
    errors += _disagreements(rows, config, source, external_id)
    customer = _customer(rows[0].get("customer_id"), config)
    if customer is None:
        reason = f"is not an account of this channel (it books orders for {config.customer_id})"
        errors.append(_error(source, rows[0].line, external_id, "customer_id", reason))
    lines, line_rows, conflicts = _lines(rows, [line for line, _ in checked], source, external_id)
    errors += conflicts
    if errors:
        return errors
    first = rows[0]
    data = {
        "order_id": order_id_for(config.name, external_id),
        "channel": config.order_channel.value,
        "customer_id": customer,
        "lines": lines,
        "ship_to": {
            "name": first.get("ship_name"),
            "street": first.get("ship_street"),
            "city": first.get("ship_city"),
            "postal_code": first.get("ship_postal_code"),
            "country": first.get("ship_country").upper(),
        },
        "purchase_order": first.get("po_number"),
        "submitted_by": first.get("requested_by") or None,
        **_terms(first, config),
    }
    result = build_order(data, source, first.line, external_id, _FIELDS)
    if isinstance(result, list):
        return [_on_its_row(error, line_rows) for error in result]
    return result


def _lines(
    rows: list[_Row], read: list[dict[str, Any] | None], source: str, record: str
) -> tuple[list[dict[str, Any]], list[_Row], list[RecordError]]:
    """The order's lines, one per SKU; the row each comes from; an error per price conflict."""
    good = [(row, line) for row, line in zip(rows, read, strict=True) if line is not None]
    merged, origin, conflicts = merge_same_sku([line for _, line in good])
    errors = []
    for later, earlier in conflicts:
        (row, line), (first_row, first_line) = good[later], good[earlier]
        reason = (
            f"{line['sku']} is also on line {first_row.line} at {first_line['unit_price']}; "
            "one SKU has one price per order"
        )
        errors.append(_error(source, row.line, record, "unit_price", reason))
    return merged, [good[index][0] for index in origin], errors


def _check(
    row: _Row, config: ChannelConfig, source: str, record: str | None
) -> tuple[dict[str, Any] | None, list[RecordError]]:
    """A row's order line (sku, quantity, unit_price), or None and a reason per bad value."""
    if row.width_error:
        # The values may sit under the wrong columns: naming them would mislead.
        return None, [_error(source, row.line, record, "row", row.width_error)]
    reasons: dict[str, str | None] = {
        "po_number": None if row.get("po_number") else "missing: the purchase order number",
        "customer_id": None if row.get("customer_id") else "missing: our account id, e.g. C-ACME",
        "sku": sku_problem(row.get("sku")),
        "quantity": _quantity(row.get("quantity")),
        "currency": currency_problem(_currency(row, config)),
        "unit_price": amount_problem(row.get("unit_price"), _currency(row, config)),
        "ship_name": _present(row, "ship_name"),
        "ship_street": _present(row, "ship_street"),
        "ship_city": _present(row, "ship_city"),
        "ship_postal_code": _present(row, "ship_postal_code"),
        "ship_country": _country(row.get("ship_country")),
        "promised_date": _date(row.get("promised_date")),
        "promised_days": _days(row),
    }
    errors = [
        _error(source, row.line, record, column, reason)
        for column, reason in reasons.items()
        if reason
    ]
    if errors:
        return None, errors
    line = {
        "sku": row.get("sku"),
        "quantity": int(row.get("quantity")),
        "unit_price": row.get("unit_price"),
    }
    return line, []


def _disagreements(
    rows: list[_Row], config: ChannelConfig, source: str, record: str
) -> list[RecordError]:
    """An error per row whose order-wide value differs from the order's first row."""
    # A row of the wrong width is reported as such: its values may sit under the wrong columns.
    readable = [row for row in rows if not row.width_error]
    errors = []
    for row in readable[1:]:
        first = readable[0]
        for column in _SHARED:
            mine, theirs = _shared(row, column, config), _shared(first, column, config)
            if mine != theirs and (mine or column not in _SHIP_TO):
                reason = (
                    f"{mine!r} differs from {theirs!r} on line {first.line} of the same order; "
                    f"an order has one {column}"
                )
                errors.append(_error(source, row.line, record, column, reason))
    return errors


def _shared(row: _Row, column: str, config: ChannelConfig) -> str:
    if column == "currency":
        return _currency(row, config)
    return row.get(column).upper() if column == "ship_country" else row.get(column)


def _terms(row: _Row, config: ChannelConfig) -> dict[str, Any]:
    """Currency and promise of an order: the file's, else the channel's."""
    promise: dict[str, Any] = {"promised_days": config.promised_days}
    if row.get("promised_date"):
        promise = {"promised_date": row.get("promised_date")}
    elif row.get("promised_days"):
        promise = {"promised_days": int(row.get("promised_days"))}
    return {"currency": _currency(row, config), **promise}


def _customer(customer_id: str, config: ChannelConfig) -> str | None:
    """The account an order is booked to, or None when this channel may not book it."""
    mapped = config.partners.get(customer_id) or config.partners.get(customer_id.lower())
    if mapped:
        return mapped
    if config.customer_id is None or customer_id == config.customer_id:
        return customer_id
    return None


def _on_its_row(error: RecordError, line_rows: list[_Row]) -> RecordError:
    """An error about an order line, moved to the row the line came from."""
    found = _LINE_PATH.match(error.field)
    if found is None:
        return error
    row = line_rows[int(found.group(1))]
    return error.model_copy(update={"line": row.line, "field": found.group(2)})


def _currency(row: _Row, config: ChannelConfig) -> str:
    return row.get("currency").upper() or config.currency or ""


def _present(row: _Row, column: str) -> str | None:
    return None if row.get(column) else "missing: needed to ship the order"


def _quantity(text: str) -> str | None:
    """Why `text` is not a whole number of units, or None."""
    if not text:
        return "missing: how many units, e.g. 10"
    if "," in text:
        return f"{text!r} has a comma: write whole units without separators, e.g. 1000"
    if not _WHOLE.match(text):
        if text.isascii() and text.isdigit():
            return f"{text[:12]}... is more units than one line can hold"
        if re.match(r"^-?[0-9]*\.[0-9]+$", text):
            return f"{text} is not a whole number: quantities are whole units, e.g. 2"
        return f"{text!r} is not a number of units such as 10"
    return None if int(text) >= 1 else "must be at least 1"


def _country(text: str) -> str | None:
    if not text:
        return "missing: needed to ship the order"
    if not _COUNTRY.match(text.upper()):
        return f"{text!r} is not a two-letter ISO country code such as NL or DE"
    return None


def _date(text: str) -> str | None:
    """Why `text` is not a promised date as YYYY-MM-DD, or None (an empty cell is fine)."""
    if not text:
        return None
    if not _ISO_DATE.match(text):
        return f"{text!r} is not a date as YYYY-MM-DD, e.g. 2025-03-14"
    try:
        date.fromisoformat(text)
    except ValueError:
        return f"{text} is not a date of the calendar"
    return None


def _days(row: _Row) -> str | None:
    text = row.get("promised_days")
    if not text:
        return None
    if row.get("promised_date"):
        return "give promised_date or promised_days, not both"
    if not _WHOLE.match(text) or not 1 <= int(text) <= 90:
        return f"{text!r} is not a whole number of days from 1 to 90"
    return None


def _error(source: str, line: int, record: str | None, column: str, reason: str) -> RecordError:
    return RecordError(source=source, line=line, record=record, field=column, reason=reason)
