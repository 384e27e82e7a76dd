"""Channel adapters: pure parsers from what a channel sends into canonical orders.

Each format is a module with `parse(payload, source, config) -> ChannelBatch` (see
`records.py`); `read` picks it by the channel's configured format. Formats whose sender
expects an acknowledgement (an X12 850, or an 850 attached to an e-mail) get the clock from
the caller, since domain code has none.
"""

from collections.abc import Callable
from datetime import datetime

from domain.channels import canonical, email_order, portal_csv, shopify, x12
from domain.channels.records import ChannelBatch, ChannelConfig, ChannelFormat

Parser = Callable[[bytes, str, ChannelConfig], ChannelBatch]

PARSERS: dict[str, Parser] = {
    "canonical": canonical.parse,
    "shopify": shopify.parse,
    "csv": portal_csv.parse,
}


def read(
    format: ChannelFormat, payload: bytes, source: str, config: ChannelConfig, now: datetime
) -> ChannelBatch:
    """The orders (and errors, and acknowledgement) one payload of a channel holds."""
    if format == "x12_850":
        return x12.parse(payload, source, config, now=now)
    if format == "email":
        return email_order.parse(payload, source, config, now=now)
    return PARSERS[format](payload, source, config)
