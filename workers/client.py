"""The one way to reach Temporal: address, namespace and the pydantic data converter."""

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from workers.settings import Settings


async def connect(settings: Settings) -> Client:
    """A client that speaks pydantic v2 models on the wire."""
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
    )
