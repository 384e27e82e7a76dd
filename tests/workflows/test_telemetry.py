"""Metrics, traces and logs of a worker, on the real dev server (README, "Metrics, traces
and logs"): the Prometheus endpoint is scraped, spans are caught in memory, log lines read."""

import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from temporalio import activity, workflow
from temporalio.client import Client

from domain.holds import ApprovalDecision
from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.statuses import OrderStatus
from starter import orders
from starter.logs import setup_logging
from starter.returns import inspect_return, receive_return, request_return
from tests.factories import make_order, new_sku
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.client import connect
from workers.settings import Settings
from workers.telemetry import flush_traces, prometheus_runtime, tracing_interceptor
from workers.worker import build_worker
from workflows import search

Samples = list[tuple[str, dict[str, str], float]]
DEPLOY = Path(__file__).parents[2] / "deploy"
ON_FIRST_FAILURE = {"temporal_activity_execution_failed"}
"""Dashboard metrics that a worker exports only once something has failed."""


def dashboard_metrics(prefix: str) -> set[str]:
    """The metric names deploy/grafana-dashboard.json queries (series suffixes dropped)."""
    dashboard = json.loads((DEPLOY / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    names = {n for e in exprs for n in re.findall(r"\b(?:orderflow|temporal)_[a-z_]+", e)}
    return {re.sub(r"_(bucket|sum|count)$", "", n) for n in names if n.startswith(prefix)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def scrape(port: int) -> Samples:
    async with httpx.AsyncClient() as http:
        response = await http.get(f"http://127.0.0.1:{port}/metrics")
    response.raise_for_status()
    assert "orderflow_order_status{" in response.text  # as exposed: no _total
    return [
        (s.name, dict(s.labels), s.value)
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    ]


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`.

    The SDK names counters without `_total`; the parser reads them as `<name>_total`."""
    names = (name, f"{name}_total")
    return sum(
        v for n, got, v in samples if n in names and all(got.get(k) == w for k, w in labels.items())
    )


async def test_the_metrics_endpoint_has_the_sdk_and_the_business_metrics(
    client: Client, settings: Settings, engine: Engine
) -> None:
    """An order through approval, shipment, delivery and a refund; one cancelled after its
    labels (compensations); one left to escalate and expire: then /metrics is scraped."""
    port = free_port()
    target = client.service_client.config.target_host
    mine = settings.model_copy(update={"temporal_address": target, "metrics_port": port})
    metered = await connect(mine, runtime=prometheus_runtime(f"127.0.0.1:{port}"))
    queue = {"task_queue": settings.task_queue}

    async with build_worker(metered, mine, engine):
        sku = new_sku(engine, {"AMS": 20}, price="1000.00")
        big = make_order({sku: 6}, price="1000.00")  # 6000 > the manager threshold
        await orders.place(metered, mine, big)
        await orders.wait_for(metered, big.order_id, OrderStatus.AWAITING_APPROVAL, 30)
        await orders.approve(metered, big.order_id, ApprovalDecision(by="mia.manager"))
        await ship_and_deliver(metered, big.order_id)
        await orders.wait_for(metered, big.order_id, OrderStatus.COMPLETED, 30)
        rma = await request_return(
            metered, big.order_id, ReturnRequest(lines={sku: 1}, reason="one too many")
        )
        await receive_return(metered, rma.rma_id)
        restock = InspectionLine(sku=sku, quantity=1, disposition=Disposition.RESTOCK)
        await inspect_return(metered, InspectionRequest(rma_id=rma.rma_id, lines=[restock]))

        small = make_order({new_sku(engine, {"AMS": 5}): 1})
        await orders.place(metered, mine, small)
        await orders.wait_for(metered, small.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
        await orders.cancel(metered, small.order_id, "changed my mind", "cs-agent")
        await orders.wait_for(metered, small.order_id, OrderStatus.CANCELLED, 30)

    # the same task queue, SLAs of seconds: the next order escalates, then is auto-rejected
    hurried = Settings(
        **{**mine.model_dump(), "approval_escalate_after": "1s", "approval_expire_after": "2s"}
    )
    async with build_worker(metered, hurried, engine):
        late = make_order({new_sku(engine, {"AMS": 20}, price="1000.00"): 6}, price="1000.00")
        handle = await orders.place(metered, hurried, late)
        await handle.result()

    samples = await scrape(port)
    # the SDK's own metrics: task latencies and slots of this worker
    assert value(samples, "temporal_workflow_task_execution_latency_count", **queue) > 0
    assert value(samples, "temporal_activity_execution_latency_count", **queue) > 0
    assert any(n == "temporal_worker_task_slots_available" for n, _, _ in samples)
    # the business metrics
    assert value(samples, "orderflow_orders_placed", channel="web", **queue) == 3
    statuses = {
        "AWAITING_APPROVAL": 2,
        "VALIDATED": 4,  # 3 validated, and the big order's release
        "RESERVED": 2,
        "ROUTED": 2,
        "AWAITING_SHIPMENT": 2,
        "SHIPPED": 1,
        "DELIVERED": 1,
        "COMPLETED": 1,
        "RETURN_REQUESTED": 1,
        "RETURN_RECEIVED": 1,
        "REFUNDED": 1,
        "CANCELLED": 1,
        "REJECTED": 1,
    }
    for status, count in statuses.items():
        got = value(samples, "orderflow_order_status", status=status, **queue)
        assert got == count, (status, got)
    assert value(samples, "orderflow_holds_placed", type="AMOUNT", tier="manager", **queue) == 2
    assert value(samples, "orderflow_holds_released", type="AMOUNT", tier="manager", **queue) == 1
    assert value(samples, "orderflow_escalations", stage="APPROVAL", **queue) == 1
    for step in ("void_labels", "release_inventory", "void_authorization"):
        assert value(samples, "orderflow_compensations", step=step, **queue) == 1, step
    assert value(samples, "orderflow_refund_amount_count", currency="EUR", kind="card") == 1
    assert value(samples, "orderflow_refund_amount_sum", currency="EUR", kind="card") == 100_000
    durations = {
        "placed_to_validated": 3,
        "awaiting_approval": 2,
        "placed_to_labels_booked": 2,
        "awaiting_shipment": 2,  # left by shipping and by the cancel
        "shipped": 1,
        "placed_to_delivered": 1,
        "placed_to_completed": 1,
    }
    for stage, count in durations.items():
        got = value(samples, "orderflow_stage_duration_count", stage=stage, **queue)
        assert got == count, (stage, got)
    # every worker metric the dashboard draws is there
    exported = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n, _, _ in samples}
    assert dashboard_metrics("temporal_") - ON_FIRST_FAILURE <= exported
    assert (
        dashboard_metrics("orderflow_")
        - {"orderflow_http_requests_total"}
        - {"orderflow_http_request_duration_seconds"}
        <= exported
    )
    # the approval wait of the expired order lasted at least its expiry
    waits = value(samples, "orderflow_stage_duration_sum", stage="awaiting_approval", **queue)
    assert waits >= 2


@pytest.mark.parametrize("sandbox", [False, True], ids=["unsandboxed", "sandboxed"])
async def test_a_placed_order_is_one_trace_from_client_to_activity(
    client: Client, settings: Settings, engine: Engine, sandbox: bool
) -> None:
    """Client, workflow and activity spans of one order share a trace, parent to child
    (workers run without the sandbox; ORDERFLOW_WORKFLOW_SANDBOX=true traces the same)."""
    exporter = InMemorySpanExporter()
    traced = Client(**{**client.config(), "interceptors": [tracing_interceptor(exporter)]})
    settings = settings.model_copy(update={"workflow_sandbox": sandbox})
    async with build_worker(traced, settings, engine):
        order = make_order({new_sku(engine, {"AMS": 5}): 1})
        await orders.place(traced, settings, order)
        await orders.wait_for(traced, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)

    spans = {s.name: s for s in exporter.get_finished_spans()}
    start = spans["StartWorkflow:OrderWorkflow"]
    assert start.context is not None
    # the SDK's TracingInterceptor: the workflow's spans (RunWorkflow, and StartActivity for
    # each activity it schedules) are children of the client's StartWorkflow, each activity's
    # RunActivity a child of its StartActivity
    parents = {
        "RunWorkflow:OrderWorkflow": start,
        "StartActivity:validate_order": start,
        "RunActivity:validate_order": spans["StartActivity:validate_order"],
        "StartActivity:book_shipments": start,
        "RunActivity:book_shipments": spans["StartActivity:book_shipments"],
    }
    for name, parent in parents.items():
        child = spans[name]
        assert child.context is not None and parent.context is not None
        assert child.context.trace_id == start.context.trace_id, name
        assert child.parent is not None and child.parent.span_id == parent.context.span_id, name
    attributes = spans["RunActivity:validate_order"].attributes
    assert attributes is not None
    assert attributes["temporalWorkflowID"] == search.workflow_id(order.order_id)


class Collector(BaseHTTPRequestHandler):
    """A stand-in OTLP/HTTP collector: keeps each export request it is sent."""

    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/traces":
            self.received.append(ExportTraceServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP endpoint on 127.0.0.1; yields its URL and what it received."""
    received: list[ExportTraceServiceRequest] = []
    handler = type("Handler", (Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


async def test_with_an_otlp_endpoint_every_client_exports_its_traces(
    client: Client,
    settings: Settings,
    engine: Engine,
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    """ORDERFLOW_OTLP_ENDPOINT: connect() traces, and the spans reach the collector."""
    url, received = collector
    target = client.service_client.config.target_host
    traced = await connect(
        settings.model_copy(update={"temporal_address": target, "otlp_endpoint": url})
    )
    async with build_worker(traced, settings, engine):
        order = make_order({new_sku(engine, {"AMS": 5}): 1})
        await orders.place(traced, settings, order)
        await orders.wait_for(traced, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert flush_traces()
    spans = [
        (resource.resource, span)
        for request in received
        for resource in request.resource_spans
        for scope in resource.scope_spans
        for span in scope.spans
    ]
    names = {span.name for _, span in spans}
    assert {
        "StartWorkflow:OrderWorkflow",
        "RunWorkflow:OrderWorkflow",
        "RunActivity:validate_order",
    } <= names
    assert len({span.trace_id for _, span in spans if "OrderWorkflow" in span.name}) == 1
    services = {
        a.value.string_value for r, _ in spans for a in r.attributes if a.key == "service.name"
    }
    assert services == {"orderflow"}


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    """setup_logging as `orderflow worker` calls it, into a file; the test's logging after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    on_message = activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message
    yield tmp_path / "worker.log"
    for handler in root.handlers:
        handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)
    activity.logger.activity_info_on_message, workflow.logger.workflow_info_on_message = on_message


@pytest.mark.parametrize("log_format", ["json", "text"])
async def test_an_activity_log_line_names_its_order_workflow_and_run(
    client: Client, worker: Settings, engine: Engine, log_file: Path, log_format: str
) -> None:
    setup_logging(log_file, log_format=log_format)  # type: ignore[arg-type]
    held = make_order({new_sku(engine, {"AMS": 20}, price="1000.00"): 6}, price="1000.00")
    await orders.place(client, worker, held)
    await orders.wait_for(client, held.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    wrong = make_order({"KB-999": 1})  # unknown SKU: a business failure of validate_order
    await orders.place(client, worker, wrong)
    await orders.wait_for(client, wrong.order_id, OrderStatus.REJECTED, 30)
    runs = {}
    for order in (held, wrong):
        handle = client.get_workflow_handle(search.workflow_id(order.order_id))
        runs[order.order_id] = (await handle.describe()).run_id

    lines = log_file.read_text().splitlines()
    hold_line = next(line for line in lines if f"{held.order_id} held: AMOUNT" in line)
    failure = next(line for line in lines if "InvalidOrder" in line)
    assert "Traceback" not in log_file.read_text()
    for line, order in ((hold_line, held), (failure, wrong)):
        expected = {
            "order_id": order.order_id,
            "workflow_id": search.workflow_id(order.order_id),
            "run_id": runs[order.order_id],
        }
        if log_format == "json":
            fields = json.loads(line)
            assert {k: fields[k] for k in expected} == expected
            assert fields["activity"] in ("assess_holds", "validate_order")
            assert fields["level"] == "INFO"
        else:
            for key, want in expected.items():
                assert f" {key}={want}" in line, (key, line)
            assert " INFO " in line and "({'activity_id'" not in line
    assert "(business failure, not retried)" in failure
