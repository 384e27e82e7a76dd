"""EDI purchase orders: an X12 850 interchange (version 004010) read into canonical orders, and
the 997 functional acknowledgement that answers it.

- `envelope`: the ISA/GS/ST...SE/GE/IEA envelope, read strictly (separators, control numbers,
  counts); `interchange` holds what was read and what is wrong with it.
- `purchase_order`: each 850 is one order (customer, external id `<ISA06>/<BEG03>`, currency,
  promise, ship-to); `order_segments` sorts its segments, `line_items` reads its PO1 lines.
- `acknowledgement`: the 997.

Errors: `line` is the segment's position in the interchange (ISA = 1: its line when the file
has one segment per line), `field` the element as the 850 names it (`BEG03`, `PO1[2].PO104`,
`N1[ST].N403`), `record` the external id.

The 997: `parse(..., now=...)` also puts it in `ChannelBatch.acknowledgement` (the clock is
passed in: domain code has none).
"""

from datetime import datetime

from domain.channels.records import ChannelBatch, ChannelConfig, RecordError
from domain.channels.x12.acknowledgement import functional_acknowledgement
from domain.channels.x12.envelope import ISA_LENGTH, read_interchange

__all__ = ["ISA_LENGTH", "ChannelBatch", "parse"]


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
    interchange = read_interchange(payload, source, config)
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
        batch.acknowledgement = functional_acknowledgement(interchange, now, control_number)
    return batch
