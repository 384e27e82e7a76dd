"""EDI purchase orders: an X12 850 interchange (version 004010) read into canonical orders, and
the 997 functional acknowledgement that answers it.

The envelope is read strictly. The ISA is fixed-width (106 characters): its 4th character is the
element separator, ISA16 the component separator, its last character the segment terminator;
line breaks after terminators are ignored. ISA13 = IEA02, IEA01 = the number of groups;
GS06 = GE02, GE01 = the number of transaction sets; ST02 = SE02, SE01 = the segments from ST to
SE. One payload is one production interchange (ISA12 00401, ISA15 P) of PO groups (GS08
004010...). A broken group rejects its orders, a broken interchange rejects all of them; an
interchange whose ISA cannot be read is one error and gets no 997 (it cannot be addressed).

Each 850 is one order:

- customer: the partner entry `<ISA06>/<N104 of N1*BY>` (one EDI sender ordering for several
  accounts), else `config.customer_for(ISA06)`. An N104 alone never chooses an account, so a
  partner cannot order for another one by naming it.
- external id `<ISA06>/<BEG03>` (BEG01 must be 00, an original order; BEG05 its CCYYMMDD date);
  purchase_order BEG03; submitted_by PER02 of a PER*BD or PER*OC.
- currency CUR02, else the channel's; DTM*002 (delivery requested) -> promised_date, none ->
  the channel's promised_days.
- ship_to: N1*ST N102 name, N3 N301 (+ N302) street, N4 N401 city, N403 postal code, N404
  country. Ship-to and delivery dates per line are refused (one address, one promise per order).
- one line per PO1: PO102 whole units, PO103 EA, PO104 unit price (PO105 empty or PE, per
  each), and the SKU is the id qualified VP (vendor's part number: our SKU) in the first
  PO106/PO107 ... pair that has one; buyer part numbers (BP) and others are not mapped. The same
  SKU twice at one price is one line with the quantities added.
- CTT01, when sent, must equal the number of PO1 segments.

Errors: `line` is the segment's position in the interchange (ISA = 1: its line when the file
has one segment per line), `field` the element as the 850 names it (`BEG03`, `PO1[2].PO104`,
`N1[ST].N403`), `record` the external id.

The 997: `parse(..., now=...)` also puts it in `ChannelBatch.acknowledgement` (the clock is
passed in: domain code has none). One 997 per PO group (AK1), an AK2/AK5 per 850 (A accepted,
R rejected with AK3/AK4 naming the segment, its position in the set and the element), AK9 A, P
or R; sender and receiver swapped, the received separators; its control number is the
received ISA13 unless `control_number` is given, so the same interchange gets the same 997.
"""

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from domain.channels.records import (
    ChannelBatch,
    ChannelConfig,
    ChannelOrder,
    RecordError,
    amount_problem,
    build_order,
    currency_problem,
    merge_same_sku,
    order_id_for,
    sku_problem,
)

ISA_LENGTH = 106
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_TAG = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
_CLOSES_SET = frozenset({"SE", "ST", "GE", "GS", "IEA"})
_READ_PAST = frozenset(
    {"REF", "ITD", "FOB", "TD1", "TD4", "TD5", "PID", "PO4", "MSG", "N9", "SAC", "AMT", "TXI"}
    | {"MEA", "SCH", "CTP", "TAX", "PKG", "PWK", "SI", "N2", "LIN", "PAM", "CSH", "DIS", "MAN"}
)
"""850 segments that are read past: they carry nothing the canonical order holds."""
_ELEMENT_REFERENCE = {
    "BEG01": "353", "BEG02": "92", "BEG03": "324", "BEG05": "373", "CUR02": "100",
    "DTM02": "373", "N102": "93", "N301": "166", "N401": "19", "N403": "116", "N404": "26",
    "PO102": "330", "PO103": "355", "PO104": "212", "PO105": "639", "CTT01": "354",
    "PER02": "93",
}  # fmt: skip
"""X12 data element numbers, for AK402."""


@dataclass(frozen=True)
class Segment:
    """One segment as sent: its elements (index 0 is the segment id) and its position in the
    interchange (ISA = 1)."""

    elements: tuple[str, ...]
    number: int

    @property
    def tag(self) -> str:
        return self.elements[0]

    def get(self, n: int) -> str:
        """Element n (`get(3)` of a BEG is BEG03), "" when not sent."""
        return self.elements[n].strip() if n < len(self.elements) else ""


@dataclass(frozen=True)
class _Note:
    """Where a problem sits, for the 997: AK3 (segment, syntax code) and AK4 (element)."""

    tag: str
    number: int
    segment_code: str
    element: int | None = None
    element_code: str = ""
    value: str = ""


@dataclass
class _Set:
    """One transaction set as read: its order when good, else what is wrong with it."""

    ident: str
    control: str
    start: int
    record: str
    codes: list[str] = field(default_factory=list)  # AK502
    notes: list[_Note] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    order: ChannelOrder | None = None


@dataclass
class _Group:
    """One functional group (GS...GE) as read."""

    functional_id: str
    control: str
    sender: str
    receiver: str
    sets: list[_Set] = field(default_factory=list)
    included: int | None = None  # GE01
    codes: list[str] = field(default_factory=list)  # AK905
    errors: list[RecordError] = field(default_factory=list)


@dataclass
class _Interchange:
    """One interchange as read: its header, separators, groups and envelope errors."""

    isa: Segment
    separators: tuple[str, str, str]  # element, component, segment terminator
    source: str
    groups: list[_Group] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # external id -> ST02

    def error(self, line: int | None, name: str, reason: str) -> None:
        self.errors.append(RecordError(source=self.source, line=line, field=name, reason=reason))

    def taken(self, group: _Group, tset: _Set) -> bool:
        """Whether a set's order is placed: it and its whole envelope are sound."""
        return tset.order is not None and not (
            tset.errors or tset.codes or group.errors or self.errors
        )


def parse(
    payload: bytes,
    source: str,
    config: ChannelConfig,
    *,
    now: datetime | None = None,
    control_number: int | None = None,
) -> ChannelBatch:
    """The orders of an X12 850 interchange and an error per problem; given `now`, the 997
    that answers it too (None when the interchange cannot be addressed).

    Args:
        control_number: the 997's own ISA13/GS06; default the received ISA13.
    """
    interchange = _read(payload, source, config)
    if isinstance(interchange, RecordError):
        return ChannelBatch(errors=[interchange])
    batch = ChannelBatch(errors=list(interchange.errors))
    for group in interchange.groups:
        batch.errors.extend(group.errors)
        for tset in group.sets:
            batch.errors.extend(tset.errors)
            if tset.order is not None and interchange.taken(group, tset):
                batch.orders.append(tset.order)
    batch.errors.sort(key=lambda error: error.line or 0)
    if now is not None:
        batch.acknowledgement = _acknowledgement(interchange, now, control_number)
    return batch


# The envelope


def _read(payload: bytes, source: str, config: ChannelConfig) -> _Interchange | RecordError:
    """The interchange with every set mapped, or the one reason it cannot be read at all."""
    try:
        text = payload.decode("utf-8").lstrip("\ufeff \t\r\n")
    except UnicodeDecodeError as error:
        reason = f"is not X12 text (byte {error.start} is not ASCII/UTF-8)"
        return RecordError(source=source, field="ISA", reason=reason)
    header = _isa(text, source)
    if isinstance(header, RecordError):
        return header
    interchange = _Interchange(header[0], header[1], source)
    _check_isa(interchange)
    segments = _segments(text[ISA_LENGTH:], header[1])
    at = 0
    while at < len(segments) and segments[at].tag == "GS":
        at = _group(segments, at, interchange, config)
    _trailer(segments, at, interchange)
    return interchange


def _isa(text: str, source: str) -> tuple[Segment, tuple[str, str, str]] | RecordError:
    """The ISA and the separators it defines, or why it is not a readable ISA."""

    def broken(reason: str, name: str = "ISA") -> RecordError:
        return RecordError(source=source, line=1, field=name, reason=reason)

    if not text.startswith("ISA") or len(text) < 4:
        return broken(f"an X12 interchange starts with ISA; this starts with {text[:12]!r}")
    separator = text[3]
    if separator.isalnum() or separator.isspace():
        return broken(f"the element separator (4th character) must be a symbol, not {separator!r}")
    parts = text.split(separator, 16)
    if len(parts) < 17:
        return broken(f"the ISA has {len(parts) - 1} of its 16 elements")
    for n, (value, width) in enumerate(zip(parts[1:16], _ISA_WIDTHS, strict=False), 1):
        if len(value) != width:
            reason = (
                f"is {len(value)} characters, it must be {width}: the ISA is fixed-width "
                f"({ISA_LENGTH} characters), shorter values are padded with spaces"
            )
            return broken(reason, f"ISA{n:02d}")
    if len(parts[16]) < 2:
        return broken("the ISA ends before ISA16 and the segment terminator", "ISA16")
    component, terminator = parts[16][0], parts[16][1]
    if len({separator, component, terminator}) < 3 or component.isalnum() or terminator.isalnum():
        reason = (
            f"element separator {separator!r}, component separator {component!r} and segment "
            f"terminator {terminator!r} must be three different symbols"
        )
        return broken(reason, "ISA16")
    return Segment((*parts[:16], component), 1), (separator, component, terminator)


def _check_isa(interchange: _Interchange) -> None:
    isa = interchange.isa
    if not isa.get(6):
        interchange.error(1, "ISA06", "the interchange sender id is blank")
    if isa.get(12) != "00401":
        interchange.error(1, "ISA12", f"version {isa.get(12)!r} is not read: send 00401 (004010)")
    if not isa.get(13).isdigit():
        interchange.error(1, "ISA13", "the interchange control number must be 9 digits")
    if isa.get(15) == "T":
        reason = "a test interchange (T) is not placed as orders: send production data as P"
        interchange.error(1, "ISA15", reason)
    elif isa.get(15) != "P":
        interchange.error(1, "ISA15", f"usage {isa.get(15)!r} is not P (production) or T (test)")


def _segments(body: str, separators: tuple[str, str, str]) -> list[Segment]:
    """The segments after the ISA, numbered from 2; line breaks after terminators ignored."""
    separator, _, terminator = separators
    found: list[Segment] = []
    for piece in body.split(terminator):
        text = piece.strip("\r\n")
        if text.strip():
            found.append(Segment(tuple(text.split(separator)), len(found) + 2))
    return found


def _group(segments: list[Segment], at: int, ic: _Interchange, config: ChannelConfig) -> int:
    """Read the group whose GS is at `at`; the index after its GE."""
    gs = segments[at]
    group = _Group(gs.get(1), gs.get(6), gs.get(2), gs.get(3))
    ic.groups.append(group)

    def wrong(segment: Segment, name: str, reason: str, code: str = "") -> None:
        group.errors.append(
            RecordError(source=ic.source, line=segment.number, field=name, reason=reason)
        )
        if code:
            group.codes.append(code)

    if gs.get(1) != "PO":
        wrong(gs, "GS01", f"group {gs.get(1)!r} is not read: purchase orders come in PO", "1")
    elif not gs.get(8).startswith("004010"):
        wrong(gs, "GS08", f"version {gs.get(8)!r} is not read: send 004010", "2")
    if not re.fullmatch(r"[0-9]{1,9}", gs.get(6)):
        wrong(gs, "GS06", "the group control number must be 1 to 9 digits", "6")
    at += 1
    while at < len(segments) and segments[at].tag not in ("GE", "GS", "IEA"):
        if segments[at].tag == "ST":
            at = _transaction(segments, at, group, ic, config)
        else:
            wrong(segments[at], segments[at].tag, "is outside a transaction set (ST...SE)")
            at += 1
    if at >= len(segments) or segments[at].tag != "GE":
        wrong(gs, "GE", f"the group {gs.get(6)} has no GE trailer", "3")
        return at
    ge = segments[at]
    group.included = int(ge.get(1)) if ge.get(1).isdigit() else None
    if ge.get(2) != gs.get(6):
        wrong(ge, "GE02", f"{ge.get(2)!r} does not match GS06 {gs.get(6)!r}", "4")
    if group.included != len(group.sets):
        reason = f"says {ge.get(1)!r} transaction sets; the group has {len(group.sets)}"
        wrong(ge, "GE01", reason, "5")
    return at + 1


def _trailer(segments: list[Segment], at: int, ic: _Interchange) -> None:
    """Check the IEA and that nothing but groups stands between ISA and IEA."""
    end = next((n for n in range(at, len(segments)) if segments[n].tag == "IEA"), None)
    for stray in segments[at : end if end is not None else len(segments)]:
        ic.error(stray.number, stray.tag, "is outside a functional group (GS...GE)")
    if end is None:
        ic.error(None, "IEA", "the interchange has no IEA trailer (is it cut short?)")
        return
    iea = segments[end]
    if iea.get(2) != ic.isa.get(13):
        ic.error(iea.number, "IEA02", f"{iea.get(2)!r} does not match ISA13 {ic.isa.get(13)!r}")
    if iea.get(1) != str(len(ic.groups)):
        reason = f"says {iea.get(1)!r} groups; the interchange has {len(ic.groups)}"
        ic.error(iea.number, "IEA01", reason)
    if end + 1 < len(segments):
        reason = "data after the IEA trailer: send one interchange per message"
        ic.error(segments[end + 1].number, segments[end + 1].tag, reason)


def _transaction(
    segments: list[Segment], at: int, group: _Group, ic: _Interchange, config: ChannelConfig
) -> int:
    """Read the transaction set whose ST is at `at`; the index after its SE."""
    st = segments[at]
    end = at + 1
    while end < len(segments) and segments[end].tag not in _CLOSES_SET:
        end += 1
    body = segments[at + 1 : end]
    beg = next((s for s in body if s.tag == "BEG" and s.get(3)), None)
    record = f"{ic.isa.get(6)}/{beg.get(3)}" if beg else f"ST {st.get(2)}"
    tset = _Set(st.get(1), st.get(2), st.number, record)
    group.sets.append(tset)
    faults = _Faults(tset, ic.source)
    if st.get(1) != "850":
        faults.envelope(st, "ST01", f"transaction set {st.get(1)!r} is not read: send 850", "1")
    elif group.functional_id == "PO":
        order = _purchase_order(body, st, ic.isa, config, faults)
        duplicate = ic.seen.get(record) if order else None
        if duplicate is not None:
            reason = f"{record} is also transaction set {duplicate} of this interchange"
            faults.envelope(st, "BEG03", reason, "")
        elif order is not None:
            ic.seen[record] = st.get(2)
            tset.order = order
    if not 4 <= len(st.get(2)) <= 9:
        faults.envelope(
            st, "ST02", "the transaction set control number must be 4-9 characters", "7"
        )
    if end >= len(segments) or segments[end].tag != "SE":
        faults.envelope(st, "SE", f"transaction set {st.get(2)} has no SE trailer", "2")
        return end
    se = segments[end]
    if se.get(2) != st.get(2):
        faults.envelope(se, "SE02", f"{se.get(2)!r} does not match ST02 {st.get(2)!r}", "3")
    if se.get(1) != str(len(body) + 2):
        reason = f"says {se.get(1)!r} segments; ST to SE are {len(body) + 2}"
        faults.envelope(se, "SE01", reason, "4")
    return end + 1


class _Faults:
    """The problems of one transaction set: errors for the sender, notes for the 997."""

    def __init__(self, tset: _Set, source: str) -> None:
        self.tset = tset
        self.source = source
        self.places: dict[str, tuple[Segment, int]] = {}

    def error(self, line: int | None, name: str, reason: str) -> None:
        self.tset.errors.append(
            RecordError(
                source=self.source, line=line, record=self.tset.record, field=name, reason=reason
            )
        )

    def element(self, segment: Segment, n: int, name: str, reason: str, code: str = "6") -> None:
        """An element is wrong (AK403 code: 1 missing, 6 invalid value, 7 code, 8 date)."""
        code = "1" if not segment.get(n) else code
        self.error(segment.number, name, reason)
        value = segment.get(n)[:99]
        self.tset.notes.append(_Note(segment.tag, segment.number, "8", n, code, value))

    def segment(self, tag: str, number: int, name: str, reason: str, code: str) -> None:
        """A segment is missing (AK304 3), unexpected (2), repeated (5), misplaced (7) or
        unknown to the 850 (6)."""
        self.error(number, name, reason)
        self.tset.notes.append(_Note(tag, number, code))

    def envelope(self, segment: Segment, name: str, reason: str, code: str) -> None:
        """The set's own envelope is wrong (AK502 code)."""
        self.error(segment.number, name, reason)
        if code:
            self.tset.codes.append(code)

    def absorb(self, errors: list[RecordError]) -> None:
        """Errors the canonical order found, placed on their element where it is known."""
        for error in errors:
            place = self.places.get(error.field)
            line = place[0].number if place else error.line
            self.tset.errors.append(
                error.model_copy(update={"record": self.tset.record, "line": line})
            )
            if place is not None:
                segment, n = place
                note = _Note(segment.tag, segment.number, "8", n, "6", segment.get(n)[:99])
                self.tset.notes.append(note)


# The 850


@dataclass
class _Parts:
    """The segments of one 850 that its order is built from."""

    beg: Segment | None = None
    cur: Segment | None = None
    dtm: Segment | None = None
    per: Segment | None = None
    parties: dict[str, list[Segment]] = field(default_factory=dict)  # N101 -> N1, N3, N4
    lines: list[Segment] = field(default_factory=list)
    ctt: Segment | None = None


def _sort(body: list[Segment], faults: _Faults) -> _Parts:
    """The 850's segments by role; a problem per segment out of place or unknown."""
    parts = _Parts()
    party: list[Segment] | None = None
    for position, segment in enumerate(body):
        tag = segment.tag
        if not _TAG.match(tag):
            reason = f"{tag[:12]!r} is not a segment id"
            faults.segment(tag[:3] or "?", segment.number, "segment", reason, "1")
        elif parts.ctt is not None and tag != "AMT":
            faults.segment(tag, segment.number, tag, "comes after CTT, which ends the order", "2")
        elif tag == "BEG":
            _sort_beg(segment, position, parts, faults)
        elif tag == "PO1":
            parts.lines.append(segment)
            party = None
        elif tag == "CTT":
            parts.ctt = segment
        elif tag == "N1":
            party = _sort_party(segment, parts, faults)
        elif tag in ("N3", "N4"):
            if party is not None:
                party.append(segment)
            elif not parts.lines:
                faults.segment(tag, segment.number, tag, "must follow the N1 it belongs to", "7")
        elif tag in ("CUR", "DTM"):
            _sort_header(segment, parts, faults)
        elif tag == "PER":
            if parts.per is None and segment.get(1) in ("BD", "OC"):
                parts.per = segment
        elif tag not in _READ_PAST:
            reason = "is not a segment of an 850 purchase order as read here"
            faults.segment(tag, segment.number, tag, reason, "6")
    return parts


def _sort_beg(segment: Segment, position: int, parts: _Parts, faults: _Faults) -> None:
    if parts.beg is not None:
        faults.segment("BEG", segment.number, "BEG", "is sent twice: one BEG per order", "5")
        return
    parts.beg = segment
    if position != 0:
        faults.segment("BEG", segment.number, "BEG", "must come right after ST", "7")


def _sort_party(segment: Segment, parts: _Parts, faults: _Faults) -> list[Segment] | None:
    """Start an N1 loop; None for one that cannot be taken (per line, or repeated)."""
    role = segment.get(1)
    if parts.lines:
        reason = "a party per line (N1 after PO1) is not read: one ship-to per order, in the header"
        faults.segment("N1", segment.number, f"N1[{role}]", reason, "2")
        return None
    if role in parts.parties:
        faults.segment("N1", segment.number, f"N1[{role}]", f"N1*{role} is sent twice", "5")
        return None
    parts.parties[role] = [segment]
    return parts.parties[role]


def _sort_header(segment: Segment, parts: _Parts, faults: _Faults) -> None:
    tag = segment.tag
    if tag == "DTM" and segment.get(1) != "002":
        return  # other dates (ship not before, cancel after) are not part of the order
    name = "CUR" if tag == "CUR" else "DTM[002]"
    if parts.lines:
        reason = f"a {name} per line is not read: one currency and one date per order"
        faults.segment(tag, segment.number, name, reason, "2")
    elif (parts.cur if tag == "CUR" else parts.dtm) is not None:
        faults.segment(tag, segment.number, name, "is sent twice", "5")
    elif tag == "CUR":
        parts.cur = segment
    else:
        parts.dtm = segment


def _purchase_order(
    body: list[Segment], st: Segment, isa: Segment, config: ChannelConfig, faults: _Faults
) -> ChannelOrder | None:
    """The order of one 850, or None with its problems in `faults`."""
    parts = _sort(body, faults)
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
    items = [_line(segment, n, currency, faults) for n, segment in enumerate(parts.lines, 1)]
    _count(parts, end, faults)
    if faults.tset.errors:
        return None
    fields = {"customer_id": "ISA06", "currency": "CUR02", "purchase_order": "BEG03"}
    fields |= {"promised_date": "DTM[002].DTM02", "submitted_by": "PER02", "lines": "PO1"}
    fields |= {f"ship_to.{key}": name for key, name in _SHIP_TO_FIELDS.items()}
    lines = _merged([item for item in items if item], fields, faults)
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


_SHIP_TO_FIELDS = {
    "name": "N1[ST].N102",
    "street": "N1[ST].N301",
    "city": "N1[ST].N401",
    "postal_code": "N1[ST].N403",
    "country": "N1[ST].N404",
}


def _beg(beg: Segment, faults: _Faults) -> str:
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


def _customer(isa: Segment, parts: _Parts, config: ChannelConfig, faults: _Faults) -> str | None:
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


def _currency(parts: _Parts, st: Segment, config: ChannelConfig, faults: _Faults) -> str:
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


def _promise(parts: _Parts, config: ChannelConfig, faults: _Faults) -> dict[str, Any]:
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


def _ship_to(parts: _Parts, end: int, faults: _Faults) -> dict[str, str]:
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


@dataclass
class _Item:
    """One PO1 read: its order line and where each value came from."""

    segment: Segment
    name: str
    sku_at: int
    line: dict[str, Any]


def _line(segment: Segment, n: int, currency: str, faults: _Faults) -> _Item | None:
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
    return _Item(segment, name, sku_at, line)


def _quantity(segment: Segment, name: str, faults: _Faults) -> int | None:
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


def _merged(
    items: list[_Item], fields: dict[str, str], faults: _Faults
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


def _count(parts: _Parts, end: int, faults: _Faults) -> None:
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


# The 997


def _acknowledgement(ic: _Interchange, now: datetime, control_number: int | None) -> str | None:
    """The 997 interchange answering every group read (a 997 is never acknowledged)."""
    groups = [group for group in ic.groups if group.functional_id != "FA"]
    if not groups:
        return None
    isa = ic.isa
    number = control_number
    if number is None:
        number = int(isa.get(13)) if isa.get(13).isdigit() else 1
    if not 0 < number < 10**9:
        raise ValueError(f"a control number has 1 to 9 digits, not {number}")
    usage = isa.get(15) if isa.get(15) in ("P", "T") else "P"
    day, time = now.strftime("%y%m%d"), now.strftime("%H%M")
    header = ["ISA", "00", " " * 10, "00", " " * 10, *isa.elements[7:9], *isa.elements[5:7]]
    header += [day, time, "U", "00401", f"{number:09d}", "0", usage, ic.separators[1]]
    text = _text(header, ic.separators, clean=False)
    functional = ["GS", "FA", groups[0].receiver, groups[0].sender, f"20{day}", time, str(number)]
    envelope = [[*functional, "X", "004010"]]
    for n, group in enumerate(groups, 1):
        envelope.extend(_answer(ic, group, f"{n:04d}"))
    envelope += [["GE", str(len(groups)), str(number)], ["IEA", "1", f"{number:09d}"]]
    return text + "".join(_text(segment, ic.separators) for segment in envelope)


def _answer(ic: _Interchange, group: _Group, control: str) -> list[list[str]]:
    """The 997 transaction set answering one group."""
    segments = [["ST", "997", control], ["AK1", group.functional_id, group.control]]
    accepted = 0
    for tset in group.sets:
        segments.append(["AK2", tset.ident, tset.control])
        segments.extend(_notes(tset))
        if ic.taken(group, tset):
            accepted += 1
            segments.append(["AK5", "A"])
        else:
            codes = tset.codes or (["5"] if tset.notes else [])
            segments.append(["AK5", "R", *codes[:5]])
    received = len(group.sets)
    clean = accepted == received and not (group.errors or ic.errors)
    verdict = "A" if clean else "P" if accepted else "R"
    included = group.included if group.included is not None else received
    segments.append(["AK9", verdict, str(included), str(received), str(accepted)])
    segments[-1] += group.codes[:5]
    segments.append(["SE", str(len(segments) + 1), control])
    return segments


def _notes(tset: _Set) -> list[list[str]]:
    """AK3 per segment in error (its position in the set, ST = 1) and AK4 per element."""
    segments: list[list[str]] = []
    last: tuple[str, int] | None = None
    for note in sorted(tset.notes, key=lambda note: note.number):
        if (note.tag, note.number) != last:
            position = str(note.number - tset.start + 1)
            segments.append(["AK3", note.tag, position, "", note.segment_code])
            last = (note.tag, note.number)
        if note.element is not None:
            key = f"{note.tag}{note.element:02d}"
            reference = _ELEMENT_REFERENCE.get(key, "")
            if note.tag == "PO1" and note.element >= 6:
                reference = "235" if note.element % 2 == 0 else "234"
            element = str(note.element)
            segments.append(["AK4", element, reference, note.element_code, note.value])
    return segments


def _text(elements: list[str], separators: tuple[str, str, str], clean: bool = True) -> str:
    """One segment as text, trailing empty elements dropped, separators kept out of values."""
    separator, _, terminator = separators
    values = [value if not clean else _clean(value, separators) for value in elements]
    while values and values[-1] == "":
        values.pop()
    line_break = "" if terminator in "\r\n" else "\n"
    return separator.join(values) + terminator + line_break


def _clean(value: str, separators: tuple[str, str, str]) -> str:
    for symbol in separators:
        value = value.replace(symbol, "")
    return value
