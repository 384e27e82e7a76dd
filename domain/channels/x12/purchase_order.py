"""One 850 transaction set mapped to a canonical order:

- customer: the partner entry `<ISA06>/<N104 of N1*BY>` (one EDI sender ordering for several
  accounts), else `config.customer_for(ISA06)`. An N104 alone never chooses an account, so a
  partner cannot order for another one by naming it.
- external id `<ISA06>/<BEG03>` (BEG01 must be 00, an original order; BEG05 its CCYYMMDD date);
  purchase_order BEG03; submitted_by PER02 of a PER*BD or PER*OC.
- currency CUR02, else the channel's; DTM*002 (delivery requested) -> promised_date, none ->
  the channel's promised_days.
- ship_to: N1*ST N102 name, N3 N301 (+ N302) street, N4 N401 city, N403 postal code, N404
  country. Ship-to and delivery dates per line are refused (one address, one promise per order).
- one line per PO1 (see `line_items`).
- CTT01, when sent, must equal the number of PO1 segments.
"""

import re
from datetime import date
from typing import Any

from domain.channels.records import (
    ChannelConfig,
    ChannelOrder,
    build_order,
    currency_problem,
    order_id_for,
)
from domain.channels.x12.interchange import Faults, Segment
from domain.channels.x12.line_items import merge_line_items, read_line_item
from domain.channels.x12.order_segments import OrderSegments, sort_segments

_SHIP_TO_FIELDS = {
    "name": "N1[ST].N102",
    "street": "N1[ST].N301",
    "city": "N1[ST].N401",
    "postal_code": "N1[ST].N403",
    "country": "N1[ST].N404",
}


def read_purchase_order(
    body: list[Segment], st: Segment, isa: Segment, config: ChannelConfig, faults: Faults
) -> ChannelOrder | None:
    """The order of one 850 (the segments between ST and SE), or None with its problems in
    `faults`."""
    parts = sort_segments(body, faults)
    end = st.number + len(body) + 1  # where SE is: missing segments are noted there
    if parts.beg is None:
        reason = "the 850 has no BEG (purchase order number and date)"
        faults.segment("BEG", st.number + 1, "BEG", reason, "3")
        return None
    po_number = _beg(parts.beg, faults)
    customer = _customer(isa, parts, config, faults)
    currency = _currency(parts, st, config, faults)
    promise = _promise(parts, config, faults)
    ship_to = _ship_to(parts, end, faults)
    items = [
        read_line_item(segment, n, currency, faults) for n, segment in enumerate(parts.lines, 1)
    ]
    _count(parts, end, faults)
    if faults.tset.errors:
        return None
    fields = {"customer_id": "ISA06", "currency": "CUR02", "purchase_order": "BEG03"}
    fields |= {"promised_date": "DTM[002].DTM02", "submitted_by": "PER02", "lines": "PO1"}
    fields |= {f"ship_to.{key}": name for key, name in _SHIP_TO_FIELDS.items()}
    lines = merge_line_items([item for item in items if item], fields, faults)
    if lines is None:
        return None
    external_id = f"{isa.get(6)}/{po_number}"
    data: dict[str, Any] = {
        "order_id": order_id_for(config.name, external_id),
        "channel": config.order_channel.value,
        "customer_id": customer,
        "currency": currency,
        "lines": lines,
        "ship_to": ship_to,
        "purchase_order": po_number,
        **promise,
    }
    if parts.per is not None and parts.per.get(2):
        data["submitted_by"] = parts.per.get(2)
        faults.places["PER02"] = (parts.per, 2)
    result = build_order(data, faults.source, st.number, faults.tset.record, fields)
    if isinstance(result, list):
        faults.absorb(result)
        return None
    return ChannelOrder(channel=config.name, external_id=external_id, order=result, line=st.number)


def _beg(beg: Segment, faults: Faults) -> str:
    """The purchase order number (BEG03), the other BEG elements checked."""
    if beg.get(1) != "00":
        reason = f"purpose {beg.get(1)!r} is not read: only original orders (00) are placed"
        faults.element(beg, 1, "BEG01", reason, "7")
    if not beg.get(2):
        faults.element(beg, 2, "BEG02", "missing: the purchase order type, e.g. SA")
    po_number = beg.get(3)
    if not po_number:
        faults.element(beg, 3, "BEG03", "missing: the purchase order number")
    elif len(po_number) > 22:
        faults.element(beg, 3, "BEG03", f"is {len(po_number)} characters; at most 22", "5")
    if _date(beg.get(5)) is None:
        reason = f"{beg.get(5)!r} is not the order date as CCYYMMDD, e.g. 20261128"
        faults.element(beg, 5, "BEG05", reason, "8")
    return po_number


def _customer(
    isa: Segment, parts: OrderSegments, config: ChannelConfig, faults: Faults
) -> str | None:
    """The account the order is booked to (see the module's docstring)."""
    sender = isa.get(6)
    buyer = parts.parties.get("BY")
    code = buyer[0].get(4) if buyer else ""
    customer = (config.partners.get(f"{sender}/{code}") if code else None) or config.customer_for(
        sender
    )
    if customer is None:
        reason = f"sender {sender!r} is not a trading partner of this channel"
        faults.error(1, "ISA06", reason)
    return customer


def _currency(parts: OrderSegments, st: Segment, config: ChannelConfig, faults: Faults) -> str:
    if parts.cur is None:
        if config.currency is None:
            reason = "missing: send CUR*BY*EUR (this channel has no default currency)"
            faults.segment("CUR", st.number + 1, "CUR02", reason, "3")
        return config.currency or ""
    currency = parts.cur.get(2)
    problem = currency_problem(currency)
    if problem:
        faults.element(parts.cur, 2, "CUR02", problem, "7")
    faults.places["CUR02"] = (parts.cur, 2)
    return currency


def _promise(parts: OrderSegments, config: ChannelConfig, faults: Faults) -> dict[str, Any]:
    """The requested delivery date (DTM*002), else the channel's promised days."""
    if parts.dtm is None:
        return {"promised_days": config.promised_days}
    when = _date(parts.dtm.get(2))
    if when is None:
        reason = f"{parts.dtm.get(2)!r} is not the requested delivery date as CCYYMMDD"
        faults.element(parts.dtm, 2, "DTM[002].DTM02", reason, "8")
        return {"promised_days": config.promised_days}
    faults.places["DTM[002].DTM02"] = (parts.dtm, 2)
    return {"promised_date": when}


def _ship_to(parts: OrderSegments, end: int, faults: Faults) -> dict[str, str]:
    """The N1*ST loop as an address; a problem per part missing."""
    loop = parts.parties.get("ST")
    if loop is None:
        reason = "missing: send N1*ST with N3 (street) and N4 (city, postal code, country)"
        faults.segment("N1", end, "N1[ST]", reason, "3")
        return {}
    found = {segment.tag: segment for segment in reversed(loop)}
    wanted = {"name": ("N1", 2), "street": ("N3", 1), "city": ("N4", 1)}
    wanted |= {"postal_code": ("N4", 3), "country": ("N4", 4)}
    address: dict[str, str] = {}
    for key, (tag, n) in wanted.items():
        name = _SHIP_TO_FIELDS[key]
        segment = found.get(tag)
        if segment is None:
            reason = f"missing: the ship-to has no {tag} ({key.replace('_', ' ')})"
            faults.segment(tag, loop[0].number, name, reason, "3")
            continue
        faults.places[name] = (segment, n)
        address[key] = segment.get(n)
        if not address[key]:
            faults.element(segment, n, name, f"missing: the ship-to {key.replace('_', ' ')}")
    street2 = found["N3"].get(2) if "N3" in found else ""
    if street2 and address.get("street"):
        address["street"] = f"{address['street']}, {street2}"
    country = address.get("country", "")
    if country and not re.fullmatch(r"[A-Z]{2}", country):
        reason = f"{country!r} is not a two-letter ISO country code such as DE"
        faults.element(found["N4"], 4, _SHIP_TO_FIELDS["country"], reason, "7")
    return address


def _count(parts: OrderSegments, end: int, faults: Faults) -> None:
    """At least one PO1; CTT01, when sent, the number of PO1 segments."""
    if not parts.lines:
        faults.segment("PO1", end, "PO1", "missing: the order has no lines (one PO1 per SKU)", "3")
    ctt = parts.ctt
    if ctt is not None and ctt.get(1) != str(len(parts.lines)):
        reason = f"says {ctt.get(1)!r} line items; the order has {len(parts.lines)} PO1 segments"
        faults.element(ctt, 1, "CTT01", reason)


def _date(text: str) -> date | None:
    """A CCYYMMDD date, or None."""
    if not re.fullmatch(r"[0-9]{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None
