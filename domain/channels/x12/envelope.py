"""Reading the X12 envelope: the ISA and its separators, the segments, the GS...GE groups and
ST...SE transaction sets with their control numbers and counts, and the IEA.

The envelope is read strictly. The ISA is fixed-width (106 characters): its 4th character is the
element separator, ISA16 the component separator, its last character the segment terminator;
line breaks after terminators are ignored. ISA13 = IEA02, IEA01 = the number of groups;
GS06 = GE02, GE01 = the number of transaction sets; ST02 = SE02, SE01 = the segments from ST to
SE. One payload is one production interchange (ISA12 00401, ISA15 P) of PO groups (GS08
004010...). A broken group rejects its orders, a broken interchange rejects all of them; an
interchange whose ISA cannot be read is one error and gets no 997 (it cannot be addressed).
"""

import re

from domain.channels.records import ChannelConfig, RecordError
from domain.channels.x12.interchange import (
    Faults,
    Group,
    Interchange,
    Segment,
    Separators,
    TransactionSet,
)
from domain.channels.x12.purchase_order import read_purchase_order

ISA_LENGTH = 106
_ISA_WIDTHS = (2, 10, 2, 10, 2, 15, 2, 15, 6, 4, 1, 5, 9, 1, 1, 1)
_CLOSES_SET = frozenset({"SE", "ST", "GE", "GS", "IEA"})


def read_interchange(
    payload: bytes, source: str, config: ChannelConfig
) -> Interchange | RecordError:
    """The interchange with every set mapped, or the one reason it cannot be read at all."""
    try:
        text = payload.decode("utf-8").lstrip("\ufeff \t\r\n")
    except UnicodeDecodeError as error:
        reason = f"is not X12 text (byte {error.start} is not ASCII/UTF-8)"
        return RecordError(source=source, field="ISA", reason=reason)
    header = _isa(text, source)
    if isinstance(header, RecordError):
        return header
    interchange = Interchange(header[0], header[1], source)
    _check_isa(interchange)
    segments = _segments(text[ISA_LENGTH:], header[1])
    at = 0
    while at < len(segments) and segments[at].tag == "GS":
        at = _group(segments, at, interchange, config)
    _trailer(segments, at, interchange)
    return interchange


def _isa(text: str, source: str) -> tuple[Segment, Separators] | RecordError:
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


def _check_isa(interchange: Interchange) -> None:
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


def _segments(body: str, separators: Separators) -> list[Segment]:
    """The segments after the ISA, numbered from 2; line breaks after terminators ignored."""
    separator, _, terminator = separators
    found: list[Segment] = []
    for piece in body.split(terminator):
        text = piece.strip("\r\n")
        if text.strip():
            found.append(Segment(tuple(text.split(separator)), len(found) + 2))
    return found


def _group(segments: list[Segment], at: int, ic: Interchange, config: ChannelConfig) -> int:
    """Read the group whose GS is at `at`; the index after its GE."""
    gs = segments[at]
    group = Group(gs.get(1), gs.get(6), gs.get(2), gs.get(3))
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


def _trailer(segments: list[Segment], at: int, ic: Interchange) -> None:
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
    segments: list[Segment], at: int, group: Group, ic: Interchange, config: ChannelConfig
) -> int:
    """Read the transaction set whose ST is at `at`; the index after its SE."""
    st = segments[at]
    end = at + 1
    while end < len(segments) and segments[end].tag not in _CLOSES_SET:
        end += 1
    body = segments[at + 1 : end]
    beg = next((s for s in body if s.tag == "BEG" and s.get(3)), None)
    record = f"{ic.isa.get(6)}/{beg.get(3)}" if beg else f"ST {st.get(2)}"
    tset = TransactionSet(st.get(1), st.get(2), st.number, record)
    group.sets.append(tset)
    faults = Faults(tset, ic.source)
    if st.get(1) != "850":
        faults.envelope(st, "ST01", f"transaction set {st.get(1)!r} is not read: send 850", "1")
    elif group.functional_id == "PO":
        order = read_purchase_order(body, st, ic.isa, config, faults)
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
