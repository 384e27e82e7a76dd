"""Commands for returns: open an RMA, receive the parcel, inspect and refund."""

from typing import Annotated

import typer

from domain.returns import InspectionRequest, ReturnRequest
from starter import render
from starter.app import JsonFlag, app, run

PANEL = "Returns"


@app.command("return", rich_help_panel=PANEL)
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


@app.command("receive-return", rich_help_panel=PANEL)
def receive_return(rma_id: str) -> None:
    """The returned parcel arrived at the warehouse."""
    from starter.returns import receive_return as receive

    rma = run(lambda client: receive(client, rma_id))
    print(f"{rma.rma_id}: {rma.state}")


@app.command(rich_help_panel=PANEL)
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
            f"(refunded on the order so far: {refund.refunded_total} {refund.currency})"
        )
