"""Builds the worker: the task queue, OrderWorkflow, and the activities with their dependencies."""

import asyncio
import random
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from activities.approvals import ApprovalActivities
from activities.backorders import BackorderActivities
from activities.baseline import noop
from activities.billing import MoneyRules
from activities.carriers import carriers_from_config
from activities.customer_notices import CustomerMail, reach_customers
from activities.db.engine import make_engine
from activities.erp import WebhookErp
from activities.erp_delivery import DeliveryPolicy, ErpActivities
from activities.intake import IntakeActivities
from activities.inventory import InventoryActivities
from activities.metrics import StepCpu
from activities.payments import PaymentActivities, SimulatedGateway
from activities.refunds import RefundActivities
from activities.returns import ReturnsActivities
from activities.shipping import DatabaseLabelBook, ShippingActivities
from domain.erp import DispatcherInput
from domain.policy import ApprovalThresholds, SlaPolicy
from domain.routing import DEFAULT_RULES, RoutingRules, load_rules
from domain.shipping import DEFAULT_CARRIERS
from workers.client import require_search_attributes
from workers.mail_loop import mail_config, mail_delivery
from workers.settings import Settings
from workflows.baseline import LocalBaselineWorkflow, PlainBaselineWorkflow
from workflows.erp_dispatcher import ErpDispatcherWorkflow, dispatcher_id
from workflows.order import OrderWorkflow
from workflows.receipt import StockReceiptWorkflow

BASELINES = [PlainBaselineWorkflow, LocalBaselineWorkflow]  # for `orderflow bench`


def sla_policy(settings: Settings) -> SlaPolicy:
    """The SLA durations every new order is given (snapshotted into its history)."""
    return SlaPolicy(
        approval_escalate_after=settings.approval_escalate_after,
        approval_expire_after=settings.approval_expire_after,
        approval_expire_action=settings.approval_expire_action,
        backorder_expire_after=settings.backorder_expire_after,
        ship_escalate_after=settings.ship_escalate_after,
        delivery_grace=settings.delivery_grace,
        return_window=settings.return_window,
        refund_escalate_after=settings.refund_escalate_after,
        rma_expire_after=settings.rma_expire_after,
        booking_attempts=settings.booking_attempts,
    )


def money_rules(settings: Settings) -> MoneyRules:
    """Tax rates and charges: the configured files, else the bundled ones (domain/data)."""
    return MoneyRules.load(settings.tax_rates_file, settings.charges_file)


def routing_rules(settings: Settings) -> RoutingRules:
    """Routing weights from the operator's JSON file, or the shipped defaults."""
    if settings.routing_rules_file is None:
        return DEFAULT_RULES
    return load_rules(settings.routing_rules_file.read_text())


def milliseconds(text: str) -> tuple[int, int]:
    """A simulated latency setting: "20-80" (uniform between) or "0"."""
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def erp_adapter(settings: Settings) -> WebhookErp | None:
    """The configured ERP (ORDERFLOW_ERP_URL), or None: postings wait in the outbox."""
    if not settings.erp_url:
        return None
    return WebhookErp(
        settings.erp_url, settings.erp_signing_secret(), settings.erp_timeout.total_seconds()
    )


def delivery_policy(settings: Settings) -> DeliveryPolicy:
    return DeliveryPolicy(
        poll_interval=settings.erp_poll_interval,
        first_retry=settings.erp_first_retry,
        max_backoff=settings.erp_max_backoff,
        concurrency=settings.erp_concurrency,
    )


async def start_erp_dispatcher(client: Client, settings: Settings) -> WorkflowHandle[Any, Any]:
    """The task queue's ERP dispatcher, started unless it runs already."""
    assert settings.erp_url
    return await client.start_workflow(
        ErpDispatcherWorkflow.run,
        DispatcherInput(erp_url=settings.erp_url, round_seconds=settings.erp_round.total_seconds()),
        id=dispatcher_id(settings.task_queue),
        task_queue=settings.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"delivers the ERP outbox of task queue {settings.task_queue}",
    )


def build_activities(
    settings: Settings, engine: Engine, client: Client
) -> list[Callable[..., Any]]:
    """Every activity the order workflow calls, bound to its dependencies."""
    mail = mail_config(settings)
    reach_customers(
        engine,
        CustomerMail(mail if mail.smtp_host else None, settings.backorder_expire_after),
    )
    latency = milliseconds(settings.carrier_latency_ms)
    carriers = carriers_from_config(
        DEFAULT_CARRIERS,
        DatabaseLabelBook(engine),
        down={c.strip().upper() for c in settings.carriers_down.split(",") if c.strip()},
        failure_rate=settings.carrier_failure_rate,
        latency_ms=latency,
    )
    money = money_rules(settings)
    intake = IntakeActivities(
        engine,
        sla_policy(settings),
        ApprovalThresholds(
            manager=settings.approval_manager_threshold,
            director=settings.approval_director_threshold,
        ),
        settings.max_quantity_per_line,
        settings.duplicate_window,
        money,
    )
    inventory = InventoryActivities(engine, routing_rules(settings))
    gateway = SimulatedGateway(
        rng=random.Random(),
        latency_ms=milliseconds(settings.gateway_latency_ms),
        authorization_valid_for=settings.card_authorization_valid_for,
    )
    payments = PaymentActivities(engine, gateway, money)
    shipping = ShippingActivities(engine, list(carriers))
    backorders = BackorderActivities(client)
    approvals = ApprovalActivities(engine, mail)
    returns = ReturnsActivities(engine, list(carriers))
    refunds = RefundActivities(engine, gateway, money)
    erp = ErpActivities(engine, erp_adapter(settings), delivery_policy(settings))
    return [
        erp.deliver_erp_postings,
        returns.open_rma,
        returns.receive_return,
        returns.inspect_return,
        returns.expire_rma,
        refunds.refund,
        approvals.assess_holds,
        approvals.load_approvers,
        approvals.notify,
        inventory.receive_stock,
        inventory.backordered_orders,
        backorders.offer_stock,
        intake.validate_order,
        intake.record_status,
        intake.record_edit,
        inventory.reserve_inventory,
        inventory.release_inventory,
        inventory.ship_stock,
        payments.authorize_payment,
        payments.void_authorization,
        payments.capture_payment,
        shipping.book_shipments,
        shipping.void_labels,
        shipping.record_shipment_progress,
    ]


def build_worker(
    client: Client,
    settings: Settings,
    engine: Engine | None = None,
    *,
    overrides: list[Callable[..., Any]] | None = None,
) -> Worker:
    """A worker on the order task queue; run several processes of it to scale out.

    `overrides`: activities registered under the same names instead of ours (tests use it
    to hold a step until they say go, making a race deterministic).
    """
    engine = engine or make_engine(
        settings.resolved_database_url, pool_size=settings.activity_threads
    )
    activities = build_activities(settings, engine, client)
    if overrides:
        replaced = {_activity_name(fn) for fn in overrides}
        activities = [fn for fn in activities if _activity_name(fn) not in replaced]
        activities += overrides
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[OrderWorkflow, StockReceiptWorkflow, ErpDispatcherWorkflow, *BASELINES],
        activities=[*activities, noop],
        activity_executor=ThreadPoolExecutor(settings.activity_threads),
        interceptors=[StepCpu()],
        max_concurrent_activities=settings.activity_threads,
        max_cached_workflows=settings.workflow_cache_size,
        # The sandbox re-imports the workflow modules for every order and compiles a snippet
        # for every activation: about a third of a worker's CPU (README, "Speed"). Workers run
        # without it; determinism is guarded by the sandboxed Replayer in CI (tests/replay),
        # which replays every recorded history and every live scenario under its restrictions.
        workflow_runner=(
            SandboxedWorkflowRunner() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()
        ),
    )


def _activity_name(fn: Callable[..., Any]) -> str:
    defn = activity._Definition.must_from_callable(fn)
    return defn.name or ""


async def run_worker(client: Client, settings: Settings, stop: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or forever), sending e-mail when SMTP is configured and
    handing postings to the ERP when one is (its dispatcher is started once per task queue).

    Refuses to start on a namespace without the order search attributes (`orderflow setup`).
    """
    await require_search_attributes(client, settings.namespace)
    engine = make_engine(settings.resolved_database_url, pool_size=settings.activity_threads)
    async with build_worker(client, settings, engine), mail_delivery(settings, engine):
        if settings.erp_url:
            await start_erp_dispatcher(client, settings)
        await (stop or asyncio.Event()).wait()
