"""The payload converter: pydantic v2 models as JSON, with one cache of type adapters per
process.

The SDK gives every workflow it runs a payload converter of its own (it is handed the
converter's class and makes one), and the SDK's pydantic converter caches its type adapters
per instance: every order built the adapters (pydantic schemas) of `Order`, `ValidatedOrder`,
`AllocationResult`... again, about a tenth of a worker's CPU per order (README, "Speed").
Here the cache is the process's, shared by every instance. An adapter depends on its type
hint only, so sharing it changes no payload.
"""

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
)

_adapter = functools.lru_cache(maxsize=1024)(TypeAdapter)
"""Type adapters by type hint, least recently used out first (as the SDK's, but shared)."""


class _PydanticJSON(PydanticJSONPlainPayloadConverter):
    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        hint = type_hint if type_hint is not None else Any
        try:
            adapter: TypeAdapter[Any] = _adapter(hint)
        except TypeError:
            try:
                hash(hint)
            except TypeError:  # an unhashable hint: not cached (as the SDK does)
                adapter = TypeAdapter(hint)
            else:
                raise
        return adapter.validate_json(payload.data)


_CONVERTERS: dict[bytes, EncodingPayloadConverter] = {
    c.encoding.encode(): c
    for c in (
        _PydanticJSON() if isinstance(c, JSONPlainPayloadConverter) else c
        for c in DefaultPayloadConverter.default_encoding_payload_converters
    )
}
"""The converters by encoding, built once: none keeps state of its own (ours shares the
adapters above; the SDK's are plain functions of the value), so every instance shares them."""


class PayloadConverter(CompositePayloadConverter):
    """The SDK's default converters, JSON replaced by pydantic's (as
    `temporalio.contrib.pydantic.PydanticPayloadConverter`), its adapters shared.

    Made often: the SDK makes a data converter, so a payload converter, for each workflow
    activation it encodes or decodes and for each activity task, and a new pydantic converter
    builds a serializer and a cache of its own (a few percent of a worker's CPU per order,
    README "Speed"); an instance here only points at the shared converters.
    """

    def __init__(self) -> None:
        self.converters = _CONVERTERS
