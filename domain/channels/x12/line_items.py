"""The PO1 segments of an 850 as order lines: PO102 whole units, PO103 EA, PO104 the unit price
(PO105 empty or PE, per each), and the SKU the id qualified VP (vendor's part number: our SKU)
in the first PO106/PO107 ... pair that has one; buyer part numbers (BP) and others are not
mapped. The same SKU twice at one price is one line with the quantities added."""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.channels.records import amount_problem, merge_same_sku, sku_problem
from domain.channels.x12.interchange import Faults, Segment


@dataclass
class LineItem:
    """One PO1 read: its order line and where each value came from."""

    segment: Segment
    name: str
    sku_at: int
    line: dict[str, Any]


def read_line_item(segment: Segment, n: int, currency: str, faults: Faults) -> LineItem | None:
    """The order line of the n-th PO1, or None with a problem per bad element."""
    name = f"PO1[{n}]"
    before = len(faults.tset.errors)
    quantity = _quantity(segment, name, faults)
    if segment.get(3) != "EA":
        reason = f"unit {segment.get(3)!r} is not sold: order in EA (each)"
        faults.element(segment, 3, f"{name}.PO103", reason, "7")
    price = segment.get(4)
    problem = amount_problem(price, currency)
    if problem:
        faults.element(segment, 4, f"{name}.PO104", problem)
    if segment.get(5) not in ("", "PE"):
        reason = f"price basis {segment.get(5)!r} is not read: send prices per each (PE)"
        faults.element(segment, 5, f"{name}.PO105", reason, "7")
    pairs = range(6, len(segment.elements) - 1, 2)
    sku_at = next((k + 1 for k in pairs if segment.get(k) == "VP"), None)
    if sku_at is None:
        reason = "no vendor part number: send our SKU qualified VP, e.g. PO106 VP, PO107 KB-100"
        faults.element(segment, 6, f"{name}.PO106", reason, "2")
        return None
    problem = sku_problem(segment.get(sku_at))
    if problem:
        faults.element(segment, sku_at, f"{name}.PO1{sku_at:02d}", problem)
    if quantity is None or len(faults.tset.errors) > before:
        return None
    line = {"sku": segment.get(sku_at), "quantity": quantity, "unit_price": price}
    return LineItem(segment, name, sku_at, line)


def _quantity(segment: Segment, name: str, faults: Faults) -> int | None:
    """PO102 as whole units (10 or 10.0), or None with its problem."""
    text = segment.get(2)
    try:
        value = Decimal(text) if re.fullmatch(r"-?[0-9]*\.?[0-9]+", text) else None
    except InvalidOperation:
        value = None
    if value is None:
        reason = f"{text!r} is not a number of units such as 10" if text else "missing"
    elif value != value.to_integral_value():
        reason = f"{text} is not a whole number: quantities are whole units (EA), e.g. 2"
    elif value < 1:
        reason = f"{text} must be at least 1"
    else:
        return int(value)
    faults.element(segment, 2, f"{name}.PO102", reason)
    return None


def merge_line_items(
    items: list[LineItem], fields: dict[str, str], faults: Faults
) -> list[dict[str, Any]] | None:
    """One line per SKU (the same SKU at one price added up); renames and places per line."""
    lines, origin, conflicts = merge_same_sku([item.line for item in items])
    for later, earlier in conflicts:
        item, first = items[later], items[earlier]
        reason = (
            f"{item.line['sku']} is also on {first.name} at {first.line['unit_price']}; "
            "one SKU has one price per order"
        )
        faults.element(item.segment, 4, f"{item.name}.PO104", reason)
    for index, at in enumerate(origin):
        item = items[at]
        names = {"sku": f"{item.name}.PO1{item.sku_at:02d}", "quantity": f"{item.name}.PO102"}
        names["unit_price"] = f"{item.name}.PO104"
        fields[f"lines.{index}"] = item.name
        for key, name in names.items():
            fields[f"lines.{index}.{key}"] = name
            faults.places[name] = (item.segment, int(name[-2:]))
    return None if conflicts else lines
