"""The segments of one 850 sorted by what they say about the order: BEG, CUR, DTM*002, PER,
the header's N1 loops, the PO1 lines and CTT; a problem per segment out of place or unknown."""

import re
from dataclasses import dataclass, field

from domain.channels.x12.interchange import Faults, Segment

_TAG = re.compile(r"^[A-Z][A-Z0-9]{1,2}$")
_READ_PAST = frozenset(
    {"REF", "ITD", "FOB", "TD1", "TD4", "TD5", "PID", "PO4", "MSG", "N9", "SAC", "AMT", "TXI"}
    | {"MEA", "SCH", "CTP", "TAX", "PKG", "PWK", "SI", "N2", "LIN", "PAM", "CSH", "DIS", "MAN"}
)
"""850 segments that are read past: they carry nothing the canonical order holds."""


@dataclass
class OrderSegments:
    """The segments of one 850 that its order is built from."""

    beg: Segment | None = None
    cur: Segment | None = None
    dtm: Segment | None = None
    per: Segment | None = None
    parties: dict[str, list[Segment]] = field(default_factory=dict)  # N101 -> N1, N3, N4
    lines: list[Segment] = field(default_factory=list)
    ctt: Segment | None = None


def sort_segments(body: list[Segment], faults: Faults) -> OrderSegments:
    """The 850's segments by role; a problem per segment out of place or unknown."""
    parts = OrderSegments()
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


def _sort_beg(segment: Segment, position: int, parts: OrderSegments, faults: Faults) -> None:
    if parts.beg is not None:
        faults.segment("BEG", segment.number, "BEG", "is sent twice: one BEG per order", "5")
        return
    parts.beg = segment
    if position != 0:
        faults.segment("BEG", segment.number, "BEG", "must come right after ST", "7")


def _sort_party(segment: Segment, parts: OrderSegments, faults: Faults) -> list[Segment] | None:
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


def _sort_header(segment: Segment, parts: OrderSegments, faults: Faults) -> None:
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
