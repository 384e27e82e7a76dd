"""Prometheus metrics of an orderflow HTTP service, served at its own `/metrics`.

`instrument(app, "inbox")` counts every answered request and times it, by route template
(`/orders/{order_id}/decide`, never the order id or a link's token, so labels stay few and
nothing secret is exposed). The service's Temporal client is not on a metrics runtime: the
SDK's metrics of the orders come from the workers' port (workers/telemetry.py).

- orderflow_http_requests_total {service, method, route, status}
- orderflow_http_request_duration_seconds {service, method, route} (histogram)
"""

from collections.abc import Awaitable, Callable
from time import perf_counter

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as exposition

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def instrument(app: FastAPI, service: str) -> CollectorRegistry:
    """Count and time `app`'s requests; serve them at GET /metrics. Returns its registry
    (one per app: a test process builds several apps)."""
    registry = CollectorRegistry()
    requests = Counter(
        "orderflow_http_requests",
        "HTTP requests answered",
        ["service", "method", "route", "status"],
        registry=registry,
    )
    latency = Histogram(
        "orderflow_http_request_duration_seconds",
        "time to answer an HTTP request",
        ["service", "method", "route"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )

    @app.middleware("http")
    async def measure(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = perf_counter()
        response = await call_next(request)
        found = request.scope.get("route")
        route = getattr(found, "path", None) or "unmatched"
        if route != "/metrics":
            latency.labels(service, request.method, route).observe(perf_counter() - started)
            requests.labels(service, request.method, route, str(response.status_code)).inc()
        return response

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(exposition(registry), media_type=CONTENT_TYPE_LATEST)

    return registry
