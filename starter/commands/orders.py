"""Commands on one order: place, follow, ship/deliver notices, cancel, edit, approve."""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from domain.commands import OrderEdit
from domain.holds import ApprovalDecision, HoldType, RejectionDecision
from domain.order import Address, Order, parse_order
from domain.statuses import OrderStatus
from starter import orders, read_model, render
from starter.app import JsonFlag, app, run
from starter.orders import UserError
from workers.settings import get_settings

PANEL = "Orders and approvals"


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
    if not items:
        raise UserError(f"{path} holds an empty list: no order to place")
    result = []
    for index, item in enumerate(items):
        try:
            result.append(parse_order(item))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "order"
            label = f"order #{index + 1}" if len(items) > 1 else "order"
            message = first["msg"].removeprefix("Value error, ")
            raise UserError(f"invalid {label}: {where}: {message}") from None
    return result


def wait_failure(
    order_id: str, status: OrderStatus, wanted: OrderStatus, reason: str | None
) -> str | None:
    """Why `place --wait` failed for an order that stopped short of the stage it waited for.

    An order that ended REJECTED, CANCELLED or FAILED never reaches a later stage; None when
    it did reach `wanted` (or `wanted` is the very status it ended in).
    """
    if not status.is_final or status == wanted:
        return None
    return f"order {order_id} ended {status.value}, not {wanted.value}" + (
        f": {reason}" if reason else ""
    )


@app.command(rich_help_panel=PANEL)
def place(
    file: Annotated[str, typer.Argument(help="order JSON file (one order or a list); - for stdin")],
    wait: Annotated[OrderStatus | None, typer.Option(help="wait until this stage")] = None,
    timeout: Annotated[float, typer.Option(help="seconds to wait with --wait")] = 60,
    as_json: JsonFlag = False,
) -> None:
    """Place orders; prints each order id (and its status with --wait)."""
    settings = get_settings()
    new_orders = read_orders(file)

    failures: list[str] = []

    async def go(client: Any) -> list[dict[str, str]]:
        await read_model.refuse_known(settings, [order.order_id for order in new_orders])
        placed = []
        for order in new_orders:
            await orders.place(client, settings, order)
            placed.append({"order_id": order.order_id})
        if wait is not None:
            for row in placed:
                state = await orders.wait_for(client, row["order_id"], wait, timeout)
                row["status"] = state.status.value
                failure = wait_failure(row["order_id"], state.status, wait, state.reason)
                if failure:
                    row["reason"] = state.reason or ""
                    failures.append(failure)
        return placed

    placed = run(go)
    if as_json:
        render.print_json(placed)
    else:
        for row in placed:
            print(" ".join(v for k, v in row.items() if k != "reason"))
    if failures:
        # Every order is placed and shown above; the exit status says not all got there.
        for failure in failures:
            print(f"error: {failure}", file=sys.stderr)
        raise typer.Exit(1)


def _notice(kind: str, order_id: str, shipment: str | None, by: str) -> None:
    chosen = run(lambda client: orders.notify_shipment(client, order_id, kind, shipment, by))
    print(f"{order_id}: {kind} notice sent for {chosen}")


@app.command(rich_help_panel=PANEL)
def ship(
    order_id: str,
    shipment: Annotated[str | None, typer.Option(help="shipment id (split orders)")] = None,
    by: Annotated[str, typer.Option("--as", help="who reports it")] = "wms",
) -> None:
    """Report that a parcel left the warehouse (stands in for the WMS)."""
    _notice("ship", order_id, shipment, by)


@app.command(rich_help_panel=PANEL)
def deliver(
    order_id: str,
    shipment: Annotated[str | None, typer.Option(help="shipment id (split orders)")] = None,
    by: Annotated[str, typer.Option("--as", help="who reports it")] = "carrier",
) -> None:
    """Report that a parcel was delivered (stands in for the carrier)."""
    _notice("deliver", order_id, shipment, by)


@app.command(rich_help_panel=PANEL)
def lost(
    order_id: str,
    shipment: Annotated[str | None, typer.Option(help="shipment id (split orders)")] = None,
    by: Annotated[str, typer.Option("--as", help="who declares it lost")] = "customer-service",
) -> None:
    """Declare a shipped parcel lost by the carrier: it is not billed, the order can close."""
    _notice("lost", order_id, shipment, by)


@app.command(rich_help_panel=PANEL)
def cancel(
    order_id: str,
    reason: Annotated[str, typer.Option(help="why the order is cancelled")],
    by: Annotated[str, typer.Option("--as", help="who cancels")] = "customer-service",
) -> None:
    """Cancel an order before it ships; every hold it took is released."""
    print(f"{order_id}: {run(lambda client: orders.cancel(client, order_id, reason, by))}")


@app.command(rich_help_panel=PANEL)
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


@app.command(rich_help_panel=PANEL)
def approve(
    order_id: str,
    by: Annotated[str, typer.Option("--as", help="the approver's user id")],
    hold: Annotated[HoldType | None, typer.Option(help="one hold; default: all you may")] = None,
    note: Annotated[str | None, typer.Option(help="why, for the audit trail")] = None,
) -> None:
    """Release an order's hold(s); refused at once if you may not."""
    decision = ApprovalDecision(by=by, hold=hold, note=note)
    print(f"{order_id}: {run(lambda client: orders.approve(client, order_id, decision))}")


@app.command(rich_help_panel=PANEL)
def reject(
    order_id: str,
    by: Annotated[str, typer.Option("--as", help="the approver's user id")],
    reason: Annotated[str, typer.Option(help="why the order is rejected")],
) -> None:
    """Reject an order waiting for approval; every hold it took is released."""
    decision = RejectionDecision(by=by, reason=reason)
    print(f"{order_id}: {run(lambda client: orders.reject(client, order_id, decision))}")


@app.command(rich_help_panel=PANEL)
def status(order_id: str, as_json: JsonFlag = False) -> None:
    """Where one order is, its shipments, routing decision, what its customer was told, and
    its history.

    Asks the order's workflow; an order Temporal no longer has (closed and past the
    namespace's retention) comes from the read model, which says so.
    """
    settings = get_settings()

    async def go(client: Any) -> tuple[Any, str, Any, Any, str | None]:
        state, source = await read_model.find_order(client, settings, order_id)
        told = await read_model.told_customer(settings, order_id)
        billed = await read_model.billing_of(settings, order_id)
        return state, source, told, billed, await read_model.gross_estimate_of(settings, order_id)

    state, source, told, billed, estimate = run(go)
    if as_json:
        shown = render.state_json(state, source, told, estimate)
        render.print_json({**shown, "billing": billed})
    else:
        render.show_state(state, source, told, billed, estimate)


@app.command("list", rich_help_panel=PANEL)
def list_(
    status: Annotated[OrderStatus | None, typer.Option(help="only orders in this status")] = None,
    limit: Annotated[int, typer.Option(help="at most this many")] = 100,
    all_: Annotated[
        bool,
        typer.Option("--all", help="also closed orders Temporal no longer has (read model)"),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Orders, oldest first, one row each, from Temporal visibility (search attributes), with
    their goods' net and gross (estimated, or invoiced) from the read model."""
    settings = get_settings()

    async def go(client: Any) -> list[dict[str, Any]]:
        if all_:
            rows = await read_model.all_orders(client, settings, status, limit)
        else:
            rows = await orders.list_orders(client, status, limit)
        return await read_model.with_amounts(settings, rows)  # the gross, from the read model

    rows = run(go)
    if as_json:
        render.print_json(rows)
    else:
        render.console.print(render.order_table(rows))
