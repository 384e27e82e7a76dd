"""Client operations on returns: open an RMA, receive it, inspect it (and refund)."""

from temporalio.client import Client

from domain.commands import CommandRefused
from domain.returns import (
    Disposition,
    InspectionLine,
    InspectionRequest,
    RefundResult,
    ReturnRequest,
    Rma,
    order_id_of_rma,
)
from starter.orders import UserError, decide
from workflows.order import OrderWorkflow


def parse_lines(items: list[str], *, allow_zero: bool = False) -> dict[str, int]:
    """`SKU:QTY` items into {sku: qty}; a malformed item is a one-line error."""
    lines: dict[str, int] = {}
    for item in items:
        sku, _, qty = item.partition(":")
        if not sku or not qty.isdigit() or (int(qty) <= 0 and not allow_zero):
            kind = "whole" if allow_zero else "positive whole"
            raise UserError(f"--line {item!r}: use SKU:QTY with a {kind} quantity")
        lines[sku.upper()] = lines.get(sku.upper(), 0) + int(qty)
    return lines


def parse_inspection(items: list[str]) -> list[InspectionLine]:
    """`SKU:QTY:DISPOSITION` items (restock, refurbish, dispose)."""
    result = []
    for item in items:
        parts = item.split(":")
        choices = ", ".join(d.value.lower() for d in Disposition)
        if (
            len(parts) != 3
            or not parts[1].isdigit()
            or int(parts[1]) <= 0
            or (parts[2].upper() not in Disposition.__members__)
        ):
            raise UserError(f"--line {item!r}: use SKU:QTY:DISPOSITION ({choices})")
        result.append(
            InspectionLine(
                sku=parts[0].upper(),
                quantity=int(parts[1]),
                disposition=Disposition[parts[2].upper()],
            )
        )
    return result


def _order_of(rma_id: str) -> str:
    try:
        return order_id_of_rma(rma_id)
    except CommandRefused as error:
        raise UserError(str(error)) from None


async def request_return(client: Client, order_id: str, request: ReturnRequest) -> Rma:
    rma: Rma = await decide(client, order_id, OrderWorkflow.request_return, request)
    return rma


async def receive_return(client: Client, rma_id: str) -> Rma:
    rma: Rma = await decide(client, _order_of(rma_id), OrderWorkflow.receive_return, rma_id)
    return rma


async def inspect_return(client: Client, request: InspectionRequest) -> RefundResult:
    result: RefundResult = await decide(
        client, _order_of(request.rma_id), OrderWorkflow.inspect_return, request
    )
    return result
