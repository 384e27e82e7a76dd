"""Client operations on returns: open an RMA, receive it, inspect it (and refund)."""

import re

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
from starter.orders import UserError, decide, state_of
from workflows.order import OrderWorkflow


def parse_lines(items: list[str], *, allow_zero: bool = False) -> dict[str, int]:
    """`SKU:QTY` items into {sku: qty}; a malformed item is a one-line error."""
    lines: dict[str, int] = {}
    for item in items:
        sku, _, qty = item.partition(":")
        if not sku or not re.fullmatch(r"[0-9]+", qty) or (int(qty) <= 0 and not allow_zero):
            kind = "whole" if allow_zero else "positive whole"
            raise UserError(f"--line {item!r}: use SKU:QTY with a {kind} quantity")
        lines[sku.upper()] = lines.get(sku.upper(), 0) + int(qty)
    return lines


def parse_inspection(items: list[str]) -> list[InspectionLine]:
    """`SKU:QTY:DISPOSITION` items (restock, refurbish, dispose)."""
    result = []
    choices = ", ".join(d.value for d in Disposition)
    for item in items:
        parts = item.split(":")
        try:
            disposition = Disposition(parts[2]) if len(parts) == 3 else None
        except ValueError:
            disposition = None
        if disposition is None or not parts[0] or not _positive_whole(parts[1]):
            raise UserError(f"--line {item!r}: use SKU:QTY:DISPOSITION ({choices})")
        result.append(
            InspectionLine(sku=parts[0].upper(), quantity=int(parts[1]), disposition=disposition)
        )
    return result


def _positive_whole(text: str) -> bool:
    return re.fullmatch(r"[0-9]+", text) is not None and int(text) > 0


def _order_of(rma_id: str) -> str:
    try:
        return order_id_of_rma(rma_id)
    except CommandRefused as error:
        raise UserError(str(error)) from None


async def request_return(client: Client, order_id: str, request: ReturnRequest) -> Rma:
    rma: Rma = await decide(client, order_id, OrderWorkflow.request_return, request)
    return rma


async def receive_return(client: Client, rma_id: str) -> Rma:
    order_id = _order_of(rma_id)
    state = await state_of(client, order_id)
    known = next((r for r in state.returns if r.rma_id == rma_id), None)
    if known is not None and known.state == "REFUNDED":
        # The parcel came back long ago: say what happened rather than "not OPEN".
        raise UserError(
            f"{rma_id} is already refunded ({known.refund_amount} {state.currency}); "
            "nothing left to receive"
        )
    rma: Rma = await decide(client, order_id, OrderWorkflow.receive_return, rma_id)
    return rma


async def inspect_return(client: Client, request: InspectionRequest) -> RefundResult:
    result: RefundResult = await decide(
        client, _order_of(request.rma_id), OrderWorkflow.inspect_return, request
    )
    return result
