"""Channel adapters: pure parsers from what a channel sends into canonical orders.

Each format is a module with `parse(payload, source, config) -> ChannelBatch` (see
`records.py`); `parser_for` picks it by the channel's configured format.
"""

import importlib
from collections.abc import Callable

from domain.channels.records import ChannelBatch, ChannelConfig, ChannelFormat

Parser = Callable[[bytes, str, ChannelConfig], ChannelBatch]

MODULES: dict[str, str] = {
    "canonical": "domain.channels.canonical",
    "shopify": "domain.channels.shopify",
    "x12_850": "domain.channels.x12",
    "csv": "domain.channels.portal_csv",
    "email": "domain.channels.email_order",
}


def parser_for(format: ChannelFormat) -> Parser:
    """The adapter of a channel format."""
    parse: Parser = importlib.import_module(MODULES[format]).parse
    return parse
