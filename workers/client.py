"""The one way to reach Temporal: address, namespace and the pydantic data converter."""

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import Runtime

from workers.settings import Settings
from workers.telemetry import client_interceptors


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client that speaks pydantic v2 models on the wire.

    `runtime`: the SDK runtime (workers.telemetry.metrics_runtime: Prometheus metrics);
    traced over OTLP when ORDERFLOW_OTLP_ENDPOINT is set (workers.telemetry).
    """
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.namespace,
        data_converter=pydantic_data_converter,
        interceptors=client_interceptors(settings),
        runtime=runtime,
    )
