"""An X12 interchange as read: its segments, functional groups and transaction sets, and what
is wrong with each, kept both for the sender's errors and for the 997 that answers them."""

from dataclasses import dataclass, field

from domain.channels.records import ChannelOrder, RecordError

Separators = tuple[str, str, str]
"""The element separator, the component separator and the segment terminator (from the ISA)."""


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
class Note:
    """Where a problem sits, for the 997: AK3 (segment, syntax code) and AK4 (element)."""

    tag: str
    number: int
    segment_code: str
    element: int | None = None
    element_code: str = ""
    value: str = ""

    @classmethod
    def on_element(cls, segment: Segment, n: int, code: str) -> "Note":
        """A data element error (AK304 8) on element n, with the value received (AK404)."""
        return cls(segment.tag, segment.number, "8", n, code, segment.get(n)[:99])


@dataclass
class TransactionSet:
    """One transaction set (ST...SE) as read: its order when good, else what is wrong."""

    ident: str
    control: str
    start: int
    record: str
    codes: list[str] = field(default_factory=list)  # AK502
    notes: list[Note] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    order: ChannelOrder | None = None


@dataclass
class Group:
    """One functional group (GS...GE) as read."""

    functional_id: str
    control: str
    sender: str
    receiver: str
    sets: list[TransactionSet] = field(default_factory=list)
    included: int | None = None  # GE01
    codes: list[str] = field(default_factory=list)  # AK905
    errors: list[RecordError] = field(default_factory=list)


@dataclass
class Interchange:
    """One interchange as read: its header, separators, groups and envelope errors."""

    isa: Segment
    separators: Separators
    source: str
    groups: list[Group] = field(default_factory=list)
    errors: list[RecordError] = field(default_factory=list)
    seen: dict[str, str] = field(default_factory=dict)  # external id -> ST02

    def error(self, line: int | None, name: str, reason: str) -> None:
        self.errors.append(RecordError(source=self.source, line=line, field=name, reason=reason))

    def taken(self, group: Group, tset: TransactionSet) -> bool:
        """Whether a set's order is placed: it and its whole envelope are sound."""
        return tset.order is not None and not (
            tset.errors or tset.codes or group.errors or self.errors
        )


class Faults:
    """The problems of one transaction set: errors for the sender, notes for the 997."""

    def __init__(self, tset: TransactionSet, source: str) -> None:
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
        self.tset.notes.append(Note.on_element(segment, n, code))

    def segment(self, tag: str, number: int, name: str, reason: str, code: str) -> None:
        """A segment is missing (AK304 3), unexpected (2), repeated (5), misplaced (7) or
        unknown to the 850 (6)."""
        self.error(number, name, reason)
        self.tset.notes.append(Note(tag, number, code))

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
                self.tset.notes.append(Note.on_element(*place, "6"))
