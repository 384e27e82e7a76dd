"""Metrics and traces of a process: the SDK runtime's Prometheus endpoint, OTLP tracing.

Metrics: with `ORDERFLOW_METRICS_PORT` set, `metrics_runtime` builds the temporalio `Runtime`
whose Core serves Prometheus on `ORDERFLOW_METRICS_HOST:PORT/metrics`: the SDK's own metrics
(`temporal_*`: task latencies, slots, polls, activity and workflow outcomes) and the business
metrics that workflows and activities record through the SDK's metric meter (`orderflow_*`,
see workflows/metrics.py and activities/metrics.py), out of one endpoint. A client connected
with that runtime (workers.client.connect(runtime=...)) and every worker built on it report
there. One runtime per process and address: Core binds the port once.

Traces: with `ORDERFLOW_OTLP_ENDPOINT` set, `client_interceptors` gives the SDK's
`TracingInterceptor` (temporalio.contrib.opentelemetry), whose spans go to that collector over
OTLP/HTTP. On a client it traces the client's calls (StartWorkflow, Update, Signal, Query) and,
on the workers built with that client, the workflows (RunWorkflow, StartActivity...) and
activities (RunActivity) those calls caused, linked in one trace by a header. Off by default.
"""

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from workers.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from temporalio.client import Interceptor

HOUR, DAY = 3600.0, 86400.0
STAGE_BUCKETS = (
    1.0,
    5.0,
    30.0,
    60.0,
    300.0,
    900.0,
    HOUR,
    4 * HOUR,
    12 * HOUR,
    DAY,
    3 * DAY,
    7 * DAY,
)
"""Stage durations in seconds: from a test's second to a backorder's week."""
CPU_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5)
"""An activity attempt's CPU time in seconds: a database step takes a few milliseconds."""
REFUND_BUCKETS = (1000.0, 5000.0, 10_000.0, 50_000.0, 100_000.0, 500_000.0, 1_000_000.0)
"""Refund amounts in minor units (cents): 10.00 to 10 000.00."""

_providers: list["TracerProvider"] = []

BUCKETS: Mapping[str, Sequence[float]] = {
    "orderflow_stage_duration": STAGE_BUCKETS,
    "orderflow_refund_amount": REFUND_BUCKETS,
    "orderflow_activity_cpu": CPU_BUCKETS,
}


def metrics_address(settings: Settings) -> str | None:
    """host:port of the Prometheus endpoint, or None when metrics are off."""
    if settings.metrics_port is None:
        return None
    return f"{settings.metrics_host}:{settings.metrics_port}"


def metrics_runtime(settings: Settings) -> Runtime | None:
    """The runtime serving Prometheus on the configured port; None: metrics are off."""
    address = metrics_address(settings)
    return None if address is None else prometheus_runtime(address)


@lru_cache
def prometheus_runtime(address: str) -> Runtime:
    """One runtime per address and process: its Core serves http://address/metrics.

    Durations are seconds (Prometheus' unit); counters keep the SDK's names (no `_total`).
    Raises if the port is taken (Core cannot bind it).
    """
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=address,
                durations_as_seconds=True,
                histogram_bucket_overrides=BUCKETS,
            )
        )
    )


def client_interceptors(settings: Settings) -> list["Interceptor"]:
    """What every client of this process is connected with: tracing when OTLP is set."""
    if not settings.otlp_endpoint:
        return []
    return [otlp_tracing(settings.otlp_endpoint)]


@lru_cache
def otlp_tracing(endpoint: str) -> "Interceptor":
    """The tracing interceptor exporting to an OTLP/HTTP collector (one per process)."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return tracing_interceptor(OTLPSpanExporter(endpoint=traces_url(endpoint)), batch=True)


def traces_url(endpoint: str) -> str:
    """The collector's base URL (http://collector:4318) or its full traces URL, as given."""
    endpoint = endpoint.rstrip("/")
    return endpoint if endpoint.endswith("/v1/traces") else f"{endpoint}/v1/traces"


def tracing_interceptor(exporter: "SpanExporter", *, batch: bool = False) -> "Interceptor":
    """The SDK's TracingInterceptor with its own tracer provider sending to `exporter`.

    Its own provider, not the global one: a test gives an in-memory exporter, and a library
    that sets the global provider does not reroute orderflow's spans. The service name is
    "orderflow" unless OTEL_SERVICE_NAME (or OTEL_RESOURCE_ATTRIBUTES) says otherwise.
    """
    import os

    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from temporalio.contrib.opentelemetry import TracingInterceptor

    attributes: dict[str, Any] = {}
    told = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    )
    if not told:
        attributes[SERVICE_NAME] = "orderflow"
    provider = TracerProvider(resource=Resource.create(attributes))
    processor = BatchSpanProcessor(exporter) if batch else SimpleSpanProcessor(exporter)
    provider.add_span_processor(processor)
    _providers.append(provider)  # flushed at exit by the SDK (atexit), or by flush_traces
    return TracingInterceptor(provider.get_tracer("orderflow"))


def flush_traces(timeout_millis: int = 5000) -> bool:
    """Send the spans still batched now (the SDK sends them every few seconds and at exit)."""
    return all(p.force_flush(timeout_millis) for p in _providers)
