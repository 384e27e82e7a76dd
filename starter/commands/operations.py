"""Operator commands: stock, KPIs, schema, database, the stack itself, benchmark, demo."""

import asyncio
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer

from domain.order import Order
from starter import render
from starter.app import JsonFlag, app, run
from starter.orders import UserError
from workers.settings import Settings, get_settings

PANEL = "Operating the stack"


@app.command(rich_help_panel=PANEL)
def stock(
    sku: Annotated[str | None, typer.Argument(help="one SKU; default: all")] = None,
    as_json: JsonFlag = False,
) -> None:
    """On hand, reserved, safety stock and available per warehouse."""
    from starter.inventory import stock_levels

    rows = stock_levels(get_settings(), sku)
    if as_json:
        render.print_json(rows)
    else:
        render.console.print(render.stock_table(rows))


@app.command(rich_help_panel=PANEL)
def warehouses(as_json: JsonFlag = False) -> None:
    """Each warehouse's daily capacity and orders served today (UTC), as routing sees them."""
    from starter.inventory import warehouse_loads

    rows = warehouse_loads(get_settings())
    if as_json:
        render.print_json(rows)
    else:
        render.console.print(render.warehouse_table(rows))


@app.command(rich_help_panel=PANEL)
def restock(
    sku: str,
    warehouse: str,
    quantity: Annotated[int, typer.Argument(min=1, help="units received")],
    receipt: Annotated[str | None, typer.Option(help="receipt id (idempotent)")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Receive stock; backordered orders are served, highest priority and oldest first."""
    from starter.inventory import restock as receive

    settings = get_settings()
    outcome = run(lambda client: receive(client, settings, sku, warehouse, quantity, receipt))
    if as_json:
        render.print_json(outcome.model_dump(mode="json"))
        return
    r = outcome.receipt
    print(
        f"receipt {r.receipt_id}: {r.quantity} x {r.sku} at {r.warehouse}"
        + ("" if outcome.booked else " (already booked)")
    )
    for order_id in outcome.offered:
        got = "reserved" if order_id in outcome.now_reserved else "still backordered"
        print(f"  backorder {order_id}: {got}")


@app.command(rich_help_panel=PANEL)
def report(
    chart: Annotated[
        Path | None, typer.Option(help="also draw the KPIs against their targets (a .png)")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """KPIs from the read model against the seeds' targets: cycle time, accuracy, on-time,
    RMA-to-refund; orders by status, escalations."""
    from activities.db.engine import make_engine
    from activities.reports import kpis

    engine = make_engine(get_settings().resolved_database_url, pool_size=1)
    try:
        numbers = kpis(engine)
    finally:
        engine.dispose()
    if chart is not None:
        from starter.chart import draw_kpis

        draw_kpis(numbers, chart)
    if as_json:
        render.print_json(numbers)
    else:
        render.console.print(render.kpi_report(numbers))
        if chart is not None:
            print(f"chart: {chart}")


@app.command(rich_help_panel=PANEL)
def check(
    as_json: JsonFlag = False,
    replay: Annotated[
        bool,
        typer.Option(
            "--replay",
            help="Also replay every order's history with this code, as a worker does after a "
            "restart (run it before deploying a new version, and after an upgrade).",
        ),
    ] = False,
) -> None:
    """Audit every order: stock, money, labels, approvals, workflows (exit 1 on a violation).

    Works with the stack running or not: with no ORDERFLOW_TEMPORAL_ADDRESS and nothing on
    the embedded port it starts the embedded server (its file keeps every order) for the audit.
    With --replay, an order this code cannot replay is a violation ("replays"): a worker would
    fail its workflow task once it had to replay it.
    """
    import contextlib

    from activities.db.engine import make_engine
    from starter.check import check_orders
    from starter.stack import embedded_unless_configured, port_open

    settings = get_settings()
    engine = make_engine(settings.resolved_database_url, pool_size=2)
    idle = not settings.temporal_address and not port_open(settings.temporal_port)
    try:
        with embedded_unless_configured(settings, ui=False) if idle else contextlib.nullcontext():
            result = run(lambda client: check_orders(client, settings, engine, replay=replay))
    finally:
        engine.dispose()
    if as_json:
        render.print_json(result)
    else:
        render.console.print(render.check_report(result))
    if not result["ok"]:
        raise typer.Exit(1)


@app.command(rich_help_panel=PANEL)
def redrive(
    order_id: str,
    reason: Annotated[str, typer.Option(help="what was fixed, for the audit")],
) -> None:
    """Run a failed order's failed step again, once its cause is fixed (a workflow reset)."""
    from starter.recovery import redrive as reset

    print(f"{order_id}: {run(lambda client: reset(client, order_id, reason))}")


@app.command(rich_help_panel=PANEL)
def schema() -> None:
    """Print the JSON Schema of the canonical order."""
    render.print_json(Order.model_json_schema())


@app.command(rich_help_panel=PANEL)
def migrate() -> None:
    """Create or upgrade the domain database schema (Alembic)."""
    from activities.db.engine import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    print(f"database at head: {_safe_url(settings)}")


@app.command(rich_help_panel=PANEL)
def setup() -> None:
    """Prepare an existing deployment: migrate the database, register search attributes."""
    from activities.db.engine import upgrade
    from starter.stack import register_search_attributes

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    print(f"database at head: {_safe_url(settings)}")
    added = run(lambda client: register_search_attributes(client, settings.namespace))
    print("search attributes: " + (f"added {', '.join(added)}" if added else "all present"))


@app.command(rich_help_panel=PANEL)
def seed(
    file: Annotated[
        Path | None, typer.Argument(help="catalog JSON; default: the demo catalog")
    ] = None,
) -> None:
    """Load warehouses, products, stock and customers (idempotent)."""
    from starter.demo import seed_database, seed_summary

    print(seed_summary(seed_database(get_settings(), file)))


@app.command(rich_help_panel=PANEL)
def dev() -> None:
    """Run the embedded Temporal server (UI on 8233) with migrations applied; Ctrl-C stops."""
    from starter.demo import serve_forever

    serve_forever(get_settings())


@app.command(rich_help_panel=PANEL)
def worker() -> None:
    """Run one worker process (start several to scale out)."""
    from activities.db.engine import upgrade
    from starter.logs import setup_logging
    from workers.telemetry import metrics_address, metrics_runtime
    from workers.worker import run_worker

    settings = get_settings()
    # standard error: a business failure is one INFO line, faults keep tracebacks; every line
    # of an order carries its order id, workflow id and run id (ORDERFLOW_LOG_FORMAT)
    setup_logging(log_format=settings.log_format)
    upgrade(settings.resolved_database_url)
    try:
        runtime = metrics_runtime(settings)
    except ValueError as error:  # Core could not bind the port
        raise UserError(f"ORDERFLOW_METRICS_PORT: {error}") from None
    print(
        f"worker on task queue {settings.task_queue!r} at {settings.resolved_temporal_address}",
        flush=True,
    )
    if runtime is not None:
        print(f"metrics on http://{metrics_address(settings)}/metrics", flush=True)
    run(lambda client: run_worker(client, settings, until_signalled()), runtime=runtime)


def until_signalled() -> asyncio.Event:
    """An event SIGTERM or SIGINT sets, so the worker shuts down gracefully (finishes its
    workflow tasks, cancels its polls) instead of being interrupted wherever it is."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


@app.command(rich_help_panel=PANEL)
def bench(
    count: Annotated[
        int, typer.Option("--orders", min=3, help="workflows of each kind, over all rounds")
    ] = 60,
    concurrency: Annotated[int, typer.Option(min=1, help="at most this many at once")] = 10,
    workers: Annotated[int, typer.Option(min=1, help="`orderflow worker` processes")] = 1,
    rounds: Annotated[int, typer.Option(min=1, help="interleaved rounds (drift shows)")] = 3,
    open_orders: Annotated[
        int, typer.Option("--open", min=0, help="then place this many orders left open: RSS")
    ] = 0,
    readme: Annotated[
        Path | None, typer.Option(help="write this run's row into the file's bench table")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Orders vs two fair baselines (6 plain / 6 local no-op activities) in the same workers.

    Starts the embedded server unless ORDERFLOW_TEMPORAL_ADDRESS is set, and `--workers`
    worker processes; this process only places and follows. See README, "Speed".
    """
    from starter.bench_run import run_bench

    if readme is not None and not readme.is_file():
        raise UserError(f"--readme {readme}: no such file")
    result = run_bench(get_settings(), count, concurrency, workers, rounds, open_orders)
    if as_json:
        render.print_json(result)
    else:
        render.console.print(render.bench_report(result))
    if readme is not None:
        from starter import bench_readme

        defaults = {
            k: str(Settings.model_fields[k].default)
            for k in ("carrier_latency_ms", "gateway_latency_ms")
        }
        try:
            print(bench_readme.write(readme, result, defaults), file=sys.stderr)
        except ValueError as error:
            raise UserError(str(error)) from None


@app.command(rich_help_panel=PANEL)
def chaos(
    count: Annotated[int, typer.Option("--orders", min=1, help="orders to torment")] = 20,
    seed: Annotated[int | None, typer.Option(help="repeat a run's schedules")] = None,
    seconds: Annotated[float, typer.Option(min=5, help="how long commands are sent")] = 120,
    as_json: JsonFlag = False,
) -> None:
    """Random schedules of every command, with worker SIGKILLs; then `check --replay` (exit 1
    if not ok).

    Starts the embedded server unless ORDERFLOW_TEMPORAL_ADDRESS is set; workers are
    `orderflow worker` processes on a task queue of their own.
    """
    import random

    from starter.demo import chaos_stack

    chosen = seed if seed is not None else random.randrange(10**6)
    report = chaos_stack(get_settings(), chosen, count, seconds)
    if as_json:
        render.print_json(report.model_dump(mode="json"))
    else:
        print(
            f"seed {report.seed}: {report.orders} orders, {sum(report.commands.values())} "
            f"commands {report.commands}, answers {report.answers}, {report.kills} worker kills"
        )
        print(f"final statuses {report.final}; still busy {report.busy or 'none'}")
        for v in report.violations:
            print(f"VIOLATION {v['order_id']} {v['rule']}: {v['detail']}")
        for v in report.exceptions:
            print(f"exception {v['order_id']} {v['rule']}: {v['detail']}")
    if not report.ok:
        raise typer.Exit(1)


@app.command(rich_help_panel=PANEL)
def demo(
    exit_after: Annotated[bool, typer.Option("--exit", help="stop after printing")] = False,
) -> None:
    """Server + worker + seed + demo orders in one command; keeps running until Ctrl-C."""
    from starter.demo import run_demo

    run_demo(get_settings(), exit_after=exit_after)


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)
