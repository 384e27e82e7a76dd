"""The one way to reach Temporal: address, namespace and the data converter (pydantic v2
models, payloads encrypted by workers/codec.py)."""

from temporalio.client import Client
from temporalio.runtime import Runtime

from workers.codec import data_converter
from workers.settings import Settings
from workers.telemetry import client_interceptors


async def connect(settings: Settings, *, runtime: Runtime | None = None) -> Client:
    """A client that speaks pydantic v2 models on the wire, encrypted (workers/codec.py).

    `runtime`: the SDK runtime (workers.telemetry.metrics_runtime: Prometheus metrics);
    traced over OTLP when ORDERFLOW_OTLP_ENDPOINT is set (workers.telemetry).
    """
    return await Client.connect(
        settings.resolved_temporal_address,
        namespace=settings.namespace,
        data_converter=data_converter(settings),
        interceptors=client_interceptors(settings),
        runtime=runtime,
    )
