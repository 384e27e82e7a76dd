"""The 997 functional acknowledgement answering an interchange as read.

One 997 per PO group (AK1), an AK2/AK5 per 850 (A accepted, R rejected with AK3/AK4 naming the
segment, its position in the set and the element), AK9 A, P or R; sender and receiver swapped,
the received separators; its control number is the received ISA13 unless `control_number` is
given, so the same interchange gets the same 997.
"""

from datetime import datetime

from domain.channels.x12.interchange import Group, Interchange, Separators, TransactionSet

_ELEMENT_REFERENCE = {
    "BEG01": "353", "BEG02": "92", "BEG03": "324", "BEG05": "373", "CUR02": "100",
    "DTM02": "373", "N102": "93", "N301": "166", "N401": "19", "N403": "116", "N404": "26",
    "PO102": "330", "PO103": "355", "PO104": "212", "PO105": "639", "CTT01": "354",
    "PER02": "93",
}  # fmt: skip
"""X12 data element numbers, for AK402."""


def functional_acknowledgement(
    ic: Interchange, now: datetime, control_number: int | None
) -> str | None:
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


def _answer(ic: Interchange, group: Group, control: str) -> list[list[str]]:
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


def _notes(tset: TransactionSet) -> list[list[str]]:
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


def _text(elements: list[str], separators: Separators, clean: bool = True) -> str:
    """One segment as text, trailing empty elements dropped, separators kept out of values."""
    separator, _, terminator = separators
    values = [value if not clean else _clean(value, separators) for value in elements]
    while values and values[-1] == "":
        values.pop()
    line_break = "" if terminator in "\r\n" else "\n"
    return separator.join(values) + terminator + line_break


def _clean(value: str, separators: Separators) -> str:
    for symbol in separators:
        value = value.replace(symbol, "")
    return value
