"""`orderflow demo` and `orderflow dev`: the embedded stack, seeded, with a handful of orders."""

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from domain.order import Order
from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders, read_model, returns
from starter.demo.stock import received_again, release_credit_taken_by_earlier_runs
from starter.logs import setup_logging
from starter.render import console, order_table, order_total
from starter.stack import dev_server, embedded_unless_configured
from workers.settings import Settings

HERE = Path(__file__).parent


def seed_database(settings: Settings, file: Path | None = None) -> dict[str, int]:
    """Migrate, then load the catalog (the demo one by default).

    Returns what the catalog holds per kind, and under "new stock" how many of its stock rows
    were created now (a re-seed never resets live stock, so a second run creates none).
    """
    from activities.catalog import load_catalog
    from activities.db.engine import make_engine, upgrade

    upgrade(settings.resolved_database_url)
    data = json.loads((file or HERE / "catalog.json").read_text())
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        loaded = load_catalog(engine, data)
    finally:
        engine.dispose()
    return {**loaded, "stock": len(data.get("stock", [])), "new stock": loaded["stock"]}


def seed_summary(counts: dict[str, int]) -> str:
    """One line: what the catalog holds, and which stock rows are new (live stock is kept)."""
    new = counts.get("new stock", 0)
    parts = []
    for what, n in counts.items():
        if what == "new stock":
            continue
        if what == "stock":
            kept = counts["stock"] - new
            note = f", {kept} kept as they are: a re-seed never resets live stock" if kept else ""
            parts.append(f"{n} stock rows ({new} new{note})")
        else:
            parts.append(f"{n} {'price book entries' if what == 'price_book' else what}")
    return "seeded " + ", ".join(parts)


def serve_forever(settings: Settings) -> None:
    """`orderflow dev`: the embedded server and its codec server until Ctrl-C."""
    from activities.db.engine import upgrade

    upgrade(settings.resolved_database_url)
    with dev_server(settings, ui=True):
        console.print(
            f"Temporal at {settings.resolved_temporal_address}, UI {settings.ui_url}; Ctrl-C stops"
        )
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_with_codec_server(settings))


async def _with_codec_server(settings: Settings) -> None:
    """The codec server next to the embedded UI (so it shows orders decoded) until
    SIGINT/SIGTERM; without it when its port is taken."""
    from starter.stack import port_open
    from starter.web.serving import serving_codec

    if port_open(settings.codec_port, settings.codec_host):
        console.print(
            f"The codec server is not started: port {settings.codec_port} is taken "
            "(ORDERFLOW_CODEC_PORT picks another); the UI shows orders encrypted."
        )
        await _wait_for_interrupt()
        return
    async with serving_codec(settings) as url:
        console.print(codec_note(settings, url))
        await _wait_for_interrupt()


def codec_note(settings: Settings, url: str) -> str:
    """What an operator does once so this browser's UI shows orders decoded."""
    from starter.web.codec_server import token_source

    return (
        f"Codec server: {url}/  the UI decodes the (encrypted) orders through it; once per\n"
        f"      browser, sign in at {settings.codec_endpoint}/ with the token in\n"
        f"      {token_source(settings)}, then turn on 'Include cross-origin credentials'\n"
        "      in the UI's Codec Server settings (README, Payload encryption)"
    )


def run_demo(settings: Settings, *, exit_after: bool) -> None:
    """Start what is missing, seed, place the demo orders, show where each one is."""
    # The in-process worker logs to a file so the demo output stays readable; a business
    # failure (a rejected demo order) is one INFO line there, never a traceback.
    setup_logging(settings.home / "worker.log", log_format=settings.log_format)
    console.print(seed_summary(seed_database(settings)))
    with embedded_unless_configured(settings, ui=True) as embedded:
        if embedded:
            console.print(
                f"Temporal dev server up: {settings.resolved_temporal_address}, "
                f"Web UI {settings.ui_url}"
            )
        asyncio.run(_demo(settings, exit_after))


async def _demo(settings: Settings, exit_after: bool) -> None:
    client = await connect_with_retry(settings)
    async with _erp(settings, client) as settings:
        await _orders_and_channels(settings, client, exit_after)


@contextlib.asynccontextmanager
async def _erp(settings: Settings, client: Any) -> AsyncIterator[Settings]:
    """The ERP the demo's invoices are posted to: ORDERFLOW_ERP_URL when set, else the
    simulated ERP in this process (its ledger kept under home, so reconcile stays whole), with
    the dispatcher that delivers the outbox; the dispatcher stops with the demo."""
    from starter.erp_sim import create_erp_sim
    from starter.stack import free_port
    from starter.web.serving import serving_app
    from workers.worker import start_erp_dispatcher

    if settings.erp_url:
        await start_erp_dispatcher(client, settings)
        yield settings
        return
    sim = create_erp_sim(settings.erp_signing_secret(), store=settings.home / "erp-sim.json")
    async with serving_app(sim, "127.0.0.1", free_port(), "the simulated ERP") as url:
        with_erp = settings.model_copy(update={"erp_url": url})
        dispatcher = await start_erp_dispatcher(client, with_erp)
        try:
            yield with_erp
        finally:
            with contextlib.suppress(Exception):
                await dispatcher.terminate("the demo and its simulated ERP stopped")


async def _orders_and_channels(settings: Settings, client: Any, exit_after: bool) -> None:
    from workers.worker import build_worker

    async with build_worker(client, settings):
        received = await received_again(settings, client)
        if received:
            console.print("Received again what earlier demo runs took: " + ", ".join(received))
        suffix = time.strftime("%m%d-%H%M%S")
        plans: list[tuple[Order, str]] = []
        for raw in json.loads((HERE / "orders.json").read_text()):
            plan = raw.pop("_demo")
            raw["order_id"] = f"demo-{raw['order_id']}-{suffix}"
            raw["purchase_order"] = f"{raw.get('purchase_order') or 'DEMO'}-{suffix}"
            plans.append((Order.model_validate(raw), plan))
        originals = [order for order, plan in plans if plan != "duplicate"]
        for order in originals:
            await orders.place(client, settings, order)
        # A copy is a duplicate of an order intake has already accepted: place it after.
        for order in originals:
            await orders.wait_for(client, order.order_id, OrderStatus.VALIDATED, 60)
        for order, plan in plans:
            if plan == "duplicate":
                await orders.place(client, settings, order)
        await asyncio.gather(*(_drive(client, order, plan) for order, plan in plans))
        arrived = await _orders_from_channels(settings, client, suffix)
        # Each order's own state (a query), not visibility: search attributes are updated
        # asynchronously and may lag a moment behind under load.
        rows = [_row(await orders.state_of(client, order.order_id)) for order, _ in plans]
        rows = await read_model.with_amounts(settings, rows)  # goods net and gross
        console.print(order_table(rows, title=f"Demo orders (run {suffix})"))
        console.print(channel_table(arrived))
        console.print(await _erp_summary(settings))
        waiting = next(o.order_id for o, plan in plans if "waiting" in o.order_id)
        held = next(o.order_id for o, plan in plans if plan == "approval")
        returned = next(o.order_id for o, plan in plans if plan == "return")
        console.print(next_steps(settings, waiting, returned, held, stopped=exit_after))
        if exit_after:
            return
        await _with_inbox(settings, client, held)


async def _erp_summary(settings: Settings, timeout: float = 60) -> str:
    """Once the outbox is delivered: what the ERP acknowledged against orderflow's books."""
    from activities.db.engine import make_engine
    from activities.erp_delivery import standing
    from starter.reconcile import reconcile_with_erp

    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        deadline = time.monotonic() + timeout
        while (await asyncio.to_thread(standing, engine))[0] and time.monotonic() < deadline:
            await asyncio.sleep(0.25)
    finally:
        engine.dispose()
    result = await asyncio.to_thread(reconcile_with_erp, settings)
    kinds = ", ".join(f"{n} {kind}" for kind, n in result["documents"].items())
    verdict = (
        "reconcile: clean"
        if result["ok"]
        else f"reconcile: {len(result['differences'])} difference(s) (orderflow reconcile)"
    )
    acknowledged = f"{result['acknowledged']} postings acknowledged"
    return f"\nERP ({result['erp']}): {acknowledged} for {kinds}; {verdict}"


async def _with_inbox(settings: Settings, client: Any, held: str) -> None:
    """Serve the approval inbox next to the demo, with a sign-in for the manager."""
    from activities.db.engine import make_engine
    from starter.stack import port_open
    from starter.web.accounts import issue_token
    from starter.web.serving import serving

    if port_open(settings.web_port):
        console.print(
            f"\nThe approval inbox is not started: port {settings.web_port} is taken "
            "(ORDERFLOW_WEB_PORT picks another)."
        )
        await _with_codec_server(settings)
        return
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        token = issue_token(engine, "mia.manager", None)
    finally:
        engine.dispose()
    async with serving(settings, client) as url:
        console.print(
            f"\nApproval inbox: {url}/  sign in as mia.manager with the token\n"
            f"      {token}\n"
            f"      ({held} waits there; `orderflow inbox-token USER` issues more)\n"
            f"Intake API: {url}/orders and {url}/channels/NAME, documented at {url}/docs\n"
            "      (`orderflow channels` lists them, `orderflow api-key CHANNEL` issues a key)"
        )
        await _with_codec_server(settings)


async def _orders_from_channels(
    settings: Settings, client: Any, suffix: str
) -> list[dict[str, str]]:
    """One order by each channel, through the HTTP intake (on the inbox's port when it is free),
    each with where it stands once intake has looked at it."""
    from activities.db.engine import make_engine
    from starter.demo.channels import send_all
    from starter.stack import free_port, port_open
    from starter.web.serving import serving

    port = settings.web_port if not port_open(settings.web_port) else free_port()
    engine = make_engine(settings.resolved_database_url, pool_size=1)
    try:
        async with serving(settings.model_copy(update={"web_port": port}), client) as url:
            rows = await send_all(url, settings, engine, suffix)
    finally:
        engine.dispose()
    for row in rows:
        if row["order_id"] != "-":
            state = await orders.wait_for(client, row["order_id"], OrderStatus.VALIDATED, 60)
            row["status"] = state.status.value
    return rows


def channel_table(rows: list[dict[str, str]]) -> Any:
    from rich.table import Table

    columns = ("channel", "sent as", "http", "order_id", "status", "outcome")
    table = Table(title="Orders from channels (POST /orders, POST /channels/NAME)")
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*(row.get(column, "") for column in columns))
    return table


def next_steps(settings: Settings, waiting: str, returned: str, held: str, *, stopped: bool) -> str:
    """What to try next. After `--exit` the stack is down, so first: how to bring it back."""
    tries = (
        f"Try:  orderflow status {waiting}\n"
        f"      orderflow status {returned}   (a return, inspected and refunded)\n"
        f"      orderflow ship {waiting}   then   orderflow deliver {waiting}\n"
        f"      orderflow list --status {OrderStatus.AWAITING_SHIPMENT.value}\n"
        f"A B2B order waits for a manager's approval (it was placed by j.buyer, who may not\n"
        f"approve their own order):\n"
        f"      orderflow approve {held} --as mia.manager --note 'budget ok'"
    )
    if stopped and settings.temporal_address:
        return (
            f"\nThe demo's worker has stopped (--exit); Temporal at {settings.temporal_address} "
            "keeps the orders.\nThe commands below need a worker: `orderflow worker`, then\n"
            + tries
        )
    if stopped:
        return (
            f"\nThe stack has stopped (--exit); the orders are kept in {settings.home}.\n"
            "Without a stack these work:  orderflow report   orderflow stock   orderflow check\n"
            "The commands below need it back: `orderflow dev` in one terminal and "
            "`orderflow worker` in another (or `orderflow demo` without --exit), then\n" + tries
        )
    return (
        f"\nOpen the Temporal UI: {settings.ui_url}/namespaces/{settings.namespace}/workflows\n"
        + tries
        + "\n\nThe stack keeps running (worker in this process); Ctrl-C stops it."
    )


def _row(state: OrderState) -> dict[str, Any]:
    return {
        "order_id": state.order_id,
        "status": state.status.value,
        "customer_id": state.customer_id,
        "channel": state.channel,
        "total": str(order_total(state) or ""),
        "escalation_level": state.escalation_level,
        "started_at": state.events[0].at.isoformat() if state.events else "",
    }


async def _drive(client: Any, order: Order, plan: str) -> None:
    """Stand in for the warehouse and the carrier for orders the demo completes."""
    if plan in ("approval", "duplicate"):  # a suspected duplicate waits for a reviewer
        await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 120)
        return
    held = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 120)
    if held.status == OrderStatus.AWAITING_APPROVAL:
        await release_credit_taken_by_earlier_runs(client, held)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 120)
    if plan == "cancel":
        await orders.cancel(client, order.order_id, "customer found a better offer", "cs-agent")
        await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 60)
        return
    if plan not in ("complete", "return") or state.status.is_final:
        return
    for shipment in state.shipments:
        await orders.notify_shipment(client, order.order_id, "ship", shipment.shipment_id, "wms")
    await orders.wait_for(client, order.order_id, OrderStatus.SHIPPED, 60)
    for shipment in state.shipments:
        await orders.notify_shipment(
            client, order.order_id, "deliver", shipment.shipment_id, "carrier"
        )
    await orders.wait_for(client, order.order_id, OrderStatus.COMPLETED, 60)
    if plan == "return":
        rma = await returns.request_return(
            client,
            order.order_id,
            ReturnRequest(lines={"MS-200": 1}, reason="arrived scratched", by="customer"),
        )
        await returns.receive_return(client, rma.rma_id)
        await returns.inspect_return(
            client,
            InspectionRequest(
                rma_id=rma.rma_id,
                lines=[InspectionLine(sku="MS-200", quantity=1, disposition=Disposition.REFURBISH)],
            ),
        )


async def connect_with_retry(settings: Settings, timeout: float = 60) -> Any:
    """A client once the (just started) server answers."""
    from workers.client import connect

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(settings)
        except RuntimeError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _wait_for_interrupt() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


def chaos_stack(settings: Settings, seed: int, count: int, seconds: float) -> Any:
    """`orderflow chaos`: start what is missing, run random schedules on a queue of their own."""
    from activities.db.engine import make_engine
    from starter.chaos import run_chaos

    seed_database(settings)
    settings = settings.model_copy(update={"task_queue": f"chaos-{seed}-{int(time.time())}"})
    engine = make_engine(settings.resolved_database_url, pool_size=4)

    async def go() -> Any:
        client = await connect_with_retry(settings)
        return await run_chaos(
            client,
            settings,
            engine,
            settings.resolved_temporal_address,
            seed=seed,
            count=count,
            duration=seconds,
            log=settings.home / "chaos-workers.log",
        )

    try:
        with embedded_unless_configured(settings, ui=False):
            return asyncio.run(go())
    finally:
        engine.dispose()
