"""The `orderflow` command: run the stack, place orders, send decisions, inspect."""

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError

from domain.commands import OrderEdit
from domain.holds import ApprovalDecision, HoldType, RejectionDecision
from domain.order import Address, Order
from domain.returns import InspectionRequest, ReturnRequest
from domain.statuses import OrderStatus
from starter import orders, render
from starter.orders import UserError
from workers.settings import Settings, get_settings

app = typer.Typer(
    help="orderflow: every order a durable Temporal workflow.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
T = TypeVar("T")
JsonFlag = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def run(coroutine_factory: Callable[[Any], Awaitable[T]]) -> T:
    """Connect to Temporal and run one client coroutine."""
    from workers.client import connect

    settings = get_settings()

    async def go() -> T:
        try:
            client = await connect(settings)
        except RuntimeError as error:
            raise UserError(
                f"cannot reach Temporal at {settings.resolved_temporal_address} "
                f"(start it with `orderflow dev`): {str(error).splitlines()[0]}"
            ) from None
        return await coroutine_factory(client)

    return asyncio.run(go())


def read_orders(path: str) -> list[Order]:
    """Orders from a JSON file (one order or a list); `-` reads standard input."""
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text()
    except OSError as error:
        raise UserError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path} is not JSON: {error.msg} at line {error.lineno}") from None
    items = data if isinstance(data, list) else [data]
    result = []
    for index, item in enumerate(items):
        try:
            result.append(Order.model_validate(item))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "order"
            label = f"order #{index + 1}" if len(items) > 1 else "order"
            raise UserError(f"invalid {label}: {where}: {first['msg']}") from None
    return result


@app.command()
def place(
    file: Annotated[str, typer.Argument(help="order JSON file (one order or a list); - for stdin")],
    wait: Annotated[OrderStatus | None, typer.Option(help="wait until this stage")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Place orders; prints each order id (and its status with --wait)."""
    settings = get_settings()
    new_orders = read_orders(file)

    async def go(client: Any) -> list[dict[str, str]]:
        placed = []
        for order in new_orders:
            await orders.place(client, settings, order)
            placed.append({"order_id": order.order_id})
        if wait is not None:
            for row in placed:
                state = await orders.wait_for(client, row["order_id"], wait, timeout)
                row["status"] = state.status.value
        return placed

    placed = run(go)
    if as_json:
        render.print_json(placed)
    else:
        for row in placed:
            print(" ".join(row.values()))


def _notice(kind: str, order_id: str, shipment: str | None, by: str) -> None:
    chosen = run(lambda client: orders.notify_shipment(client, order_id, kind, shipment, by))
    print(f"{order_id}: {kind} notice sent for {chosen}")


@app.command()
def ship(
    order_id: str,
    shipment: Annotated[str | None, typer.Option(help="shipment id (split orders)")] = None,
    by: Annotated[str, typer.Option("--as", help="who reports it")] = "wms",
) -> None:
    """Report that a parcel left the warehouse (stands in for the WMS)."""
    _notice("ship", order_id, shipment, by)


@app.command()
def deliver(
    order_id: str,
    shipment: Annotated[str | None, typer.Option(help="shipment id (split orders)")] = None,
    by: Annotated[str, typer.Option("--as", help="who reports it")] = "carrier",
) -> None:
    """Report that a parcel was delivered (stands in for the carrier)."""
    _notice("deliver", order_id, shipment, by)


@app.command()
def cancel(
    order_id: str,
    reason: Annotated[str, typer.Option(help="why the order is cancelled")],
    by: Annotated[str, typer.Option("--as", help="who cancels")] = "customer-service",
) -> None:
    """Cancel an order before it ships; every hold it took is released."""
    print(f"{order_id}: {run(lambda client: orders.cancel(client, order_id, reason, by))}")


@app.command()
def edit(
    order_id: str,
    line: Annotated[list[str] | None, typer.Option(help="SKU:QTY new quantity, 0 removes")] = None,
    ship_to: Annotated[Path | None, typer.Option(help="JSON file with the new address")] = None,
    by: Annotated[str, typer.Option("--as", help="who asks")] = "customer",
) -> None:
    """Change quantities, remove lines or change the address, until stock is held."""
    from starter.returns import parse_lines

    address = None
    if ship_to is not None:
        try:
            address = Address.model_validate_json(ship_to.read_text())
        except (OSError, ValidationError) as error:
            raise UserError(f"--ship-to {ship_to}: {str(error).splitlines()[0]}") from None
    quantities = parse_lines(line or [], allow_zero=True)
    change = OrderEdit(lines=quantities, ship_to=address, by=by)
    print(f"{order_id}: {run(lambda client: orders.edit(client, order_id, change))}")


@app.command()
def approve(
    order_id: str,
    by: Annotated[str, typer.Option("--as", help="the approver's user id")],
    hold: Annotated[HoldType | None, typer.Option(help="one hold; default: all you may")] = None,
    note: Annotated[str | None, typer.Option(help="why, for the audit trail")] = None,
) -> None:
    """Release an order's hold(s); refused at once if you may not."""
    decision = ApprovalDecision(by=by, hold=hold, note=note)
    print(f"{order_id}: {run(lambda client: orders.approve(client, order_id, decision))}")


@app.command()
def reject(
    order_id: str,
    by: Annotated[str, typer.Option("--as", help="the approver's user id")],
    reason: Annotated[str, typer.Option(help="why the order is rejected")],
) -> None:
    """Reject an order waiting for approval; every hold it took is released."""
    decision = RejectionDecision(by=by, reason=reason)
    print(f"{order_id}: {run(lambda client: orders.reject(client, order_id, decision))}")


@app.command("return")
def return_(
    order_id: str,
    line: Annotated[list[str], typer.Option(help="SKU:QTY to send back (repeat)")],
    reason: Annotated[str, typer.Option(help="why the goods come back")],
    by: Annotated[str, typer.Option("--as", help="who asks")] = "customer",
    as_json: JsonFlag = False,
) -> None:
    """Open a return (RMA) with a return label, inside the return window."""
    from starter.returns import parse_lines, request_return

    request = ReturnRequest(lines=parse_lines(line), reason=reason, by=by)
    rma = run(lambda client: request_return(client, order_id, request))
    if as_json:
        render.print_json(rma.model_dump(mode="json"))
    else:
        print(f"{rma.rma_id}: return label {rma.carrier} {rma.tracking_number}")


@app.command("receive-return")
def receive_return(rma_id: str) -> None:
    """The returned parcel arrived at the warehouse."""
    from starter.returns import receive_return as receive

    rma = run(lambda client: receive(client, rma_id))
    print(f"{rma.rma_id}: {rma.state}")


@app.command()
def inspect(
    rma_id: str,
    line: Annotated[list[str], typer.Option(help="SKU:QTY:DISPOSITION (repeat)")],
    by: Annotated[str, typer.Option("--as", help="who inspected")] = "returns-desk",
    as_json: JsonFlag = False,
) -> None:
    """Record what happens to each returned unit (restock, refurbish, dispose); refund."""
    from starter.returns import inspect_return, parse_inspection

    request = InspectionRequest(rma_id=rma_id, lines=parse_inspection(line), by=by)
    refund = run(lambda client: inspect_return(client, request))
    if as_json:
        render.print_json(refund.model_dump(mode="json"))
    else:
        print(
            f"{rma_id}: refunded {refund.amount} {refund.currency} "
            f"(order total refunded {refund.refunded_total})"
        )


@app.command()
def status(order_id: str, as_json: JsonFlag = False) -> None:
    """Where one order is, its shipments, routing decision and history."""
    state = run(lambda client: orders.state_of(client, order_id))
    if as_json:
        render.print_json(state.model_dump(mode="json"))
    else:
        render.show_state(state)


@app.command("list")
def list_(
    status: Annotated[OrderStatus | None, typer.Option(help="only orders in this status")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """Orders, oldest first, from Temporal visibility (search attributes)."""
    rows = run(lambda client: orders.list_orders(client, status, limit))
    if as_json:
        render.print_json(rows)
    else:
        render.console.print(render.order_table(rows))


@app.command()
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


@app.command()
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


@app.command()
def report(as_json: JsonFlag = False) -> None:
    """KPIs from the read model: cycle time, on-time delivery, RMA-to-refund, escalations."""
    from activities.db.engine import make_engine
    from activities.reports import kpis

    engine = make_engine(get_settings().resolved_database_url, pool_size=1)
    try:
        numbers = kpis(engine)
    finally:
        engine.dispose()
    if as_json:
        render.print_json(numbers)
        return
    targets = numbers.pop("targets")
    for key, value in numbers.items():
        target = f"   (target {targets[key]})" if key in targets else ""
        print(f"{key:28} {value}{target}")


@app.command()
def schema() -> None:
    """Print the JSON Schema of the canonical order."""
    render.print_json(Order.model_json_schema())


@app.command()
def migrate() -> None:
    """Create or upgrade the domain database schema (Alembic)."""
    from activities.db.engine import upgrade

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    print(f"database at head: {_safe_url(settings)}")


@app.command()
def setup() -> None:
    """Prepare an existing deployment: migrate the database, register search attributes."""
    from activities.db.engine import upgrade
    from starter.stack import register_search_attributes

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    print(f"database at head: {_safe_url(settings)}")
    added = run(lambda client: register_search_attributes(client, settings.namespace))
    print("search attributes: " + (f"added {', '.join(added)}" if added else "all present"))


@app.command()
def seed(
    file: Annotated[
        Path | None, typer.Argument(help="catalog JSON; default: the demo catalog")
    ] = None,
) -> None:
    """Load warehouses, products, stock and customers (idempotent)."""
    from starter.demo import seed_database

    counts = seed_database(get_settings(), file)
    print("seeded " + ", ".join(f"{n} {what}" for what, n in counts.items()))


@app.command()
def dev() -> None:
    """Run the embedded Temporal server (UI on 8233) with migrations applied; Ctrl-C stops."""
    from starter.demo import serve_forever

    serve_forever(get_settings())


@app.command()
def worker() -> None:
    """Run one worker process (start several to scale out)."""
    from activities.db.engine import upgrade
    from workers.worker import run_worker

    settings = get_settings()
    upgrade(settings.resolved_database_url)
    print(f"worker on task queue {settings.task_queue!r} at {settings.resolved_temporal_address}")
    run(lambda client: run_worker(client, settings))


@app.command()
def bench(
    count: Annotated[
        int, typer.Option("--orders", min=1, help="orders (and baselines) to run")
    ] = 40,
    concurrency: Annotated[int, typer.Option(min=1, help="at most this many at once")] = 10,
    as_json: JsonFlag = False,
) -> None:
    """Throughput of orders to AWAITING_SHIPMENT as a ratio to a bare 6-activity workflow.

    Starts the embedded server unless ORDERFLOW_TEMPORAL_ADDRESS is set, and its own worker.
    """
    from starter.demo import bench_stack

    result = bench_stack(get_settings(), count, concurrency)
    if as_json:
        render.print_json(result)
    else:
        print(" ".join(f"{k}={v}" for k, v in result.items()))


@app.command()
def demo(
    exit_after: Annotated[bool, typer.Option("--exit", help="stop after printing")] = False,
) -> None:
    """Server + worker + seed + demo orders in one command; keeps running until Ctrl-C."""
    from starter.demo import run_demo

    run_demo(get_settings(), exit_after=exit_after)


def _safe_url(settings: Settings) -> str:
    from sqlalchemy.engine import make_url

    return make_url(settings.resolved_database_url).render_as_string(hide_password=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: one-line errors, and the true exit status even if the SDK aborts at exit."""
    code = 0
    try:
        result = app(args=argv, standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as done:
        code = done.exit_code
    except typer.Abort:
        code = 130
    except typer.TyperException as error:  # usage errors: bad option, missing argument
        message = error.format_message() if hasattr(error, "format_message") else str(error)
        print(f"error: {message} (see orderflow --help)", file=sys.stderr)
        code = getattr(error, "exit_code", 2)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        code = 130
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        print(f"error: {first}", file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    # temporalio can abort while the interpreter shuts down (sdk-python #300); skip that.
    os._exit(code)
