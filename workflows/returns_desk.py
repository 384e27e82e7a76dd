"""After delivery: RMAs opened, received, inspected and refunded, inside the return window."""

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.refunds import RefundActivities
    from activities.returns import ReturnsActivities
    from domain.commands import CommandRefused
    from domain.fulfilment import Shipment
    from domain.order import Order
    from domain.policy import SlaPolicy
    from domain.returns import (
        InspectionRequest,
        RefundRequest,
        RefundResult,
        ReturnedLine,
        ReturnRequest,
        Rma,
        check_inspection,
        check_return,
        refund_amount,
        rma_id_for,
    )
    from domain.statuses import OrderStatus
    from workflows.approval_gate import refused
    from workflows.steps import run_step


class OrderRecorder(Protocol):
    """What the returns desk needs from the order workflow."""

    def note(self, status: OrderStatus, why: str, *, actor: str = "orderflow") -> None: ...
    async def escalate(self, why: str) -> None: ...


class ReturnDesk:
    """Keeps the order open for returns until the window closes and every RMA is refunded."""

    def __init__(self, order: Order, recorder: OrderRecorder) -> None:
        self._order = order
        self._recorder = recorder
        self.rmas: list[Rma] = []
        self._returned: dict[str, int] = {}
        self._received_at: dict[str, datetime] = {}
        self._escalated: set[str] = set()
        self._changes = 0
        self.delivered_at: datetime | None = None
        self.captured = False
        self.shipments: list[Shipment] = []
        self.delivered: dict[str, int] = {}
        self.window = timedelta(days=30)

    # --- validators (no I/O, no awaits) -------------------------------------------------

    def check_request(self, request: ReturnRequest) -> None:
        if not self.captured:
            raise refused(CommandRefused("returns open once the order is delivered and invoiced"))
        try:
            check_return(
                request,
                self.delivered,
                self._returned,
                self.delivered_at,
                workflow.now(),
                self.window,
            )
        except CommandRefused as error:
            raise refused(error) from None

    def check_receive(self, rma_id: str) -> None:
        if self._rma(rma_id).state != "OPEN":
            raise refused(CommandRefused(f"{rma_id} is {self._rma(rma_id).state}, not OPEN"))

    def check_inspect(self, request: InspectionRequest) -> None:
        rma = self._rma(request.rma_id)
        if rma.state != "RECEIVED":
            raise refused(CommandRefused(f"{rma.rma_id} is {rma.state}: inspect after receipt"))
        try:
            check_inspection({line.sku: line.quantity for line in rma.lines}, request.lines)
        except CommandRefused as error:
            raise refused(error) from None

    # --- handlers -----------------------------------------------------------------------

    async def open(self, request: ReturnRequest) -> Rma:
        """Open an RMA with a return label; quantities are claimed before any await."""
        self.check_request(request)  # again: a concurrent request may have claimed units
        for sku, quantity in request.lines.items():
            self._returned[sku] = self._returned.get(sku, 0) + quantity
        rma = Rma(
            rma_id=rma_id_for(self._order.order_id, len(self.rmas) + 1),
            order_id=self._order.order_id,
            reason=request.reason,
            lines=[self._line(sku, qty) for sku, qty in sorted(request.lines.items())],
        )
        self.rmas.append(rma)
        opened: Rma = await run_step(
            ReturnsActivities.open_rma, rma, summary=f"open {rma.rma_id} and book a return label"
        )
        self._replace(opened)
        self._recorder.note(
            OrderStatus.RETURN_REQUESTED, f"{rma.rma_id}: {request.reason}", actor=request.by
        )
        return opened

    async def receive(self, rma_id: str) -> Rma:
        self._received_at[rma_id] = workflow.now()
        received: Rma = await run_step(
            ReturnsActivities.receive_return, rma_id, summary=f"{rma_id} received"
        )
        self._replace(received)
        self._recorder.note(OrderStatus.RETURN_RECEIVED, f"{rma_id} received at the warehouse")
        return received

    async def inspect(self, request: InspectionRequest) -> RefundResult:
        """Record each unit's disposition, then refund what came back."""
        inspected: Rma = await run_step(
            ReturnsActivities.inspect_return, request, summary=f"inspect {request.rma_id}"
        )
        self._replace(inspected)
        result: RefundResult = await run_step(
            RefundActivities.refund,
            RefundRequest(
                order_id=self._order.order_id,
                rma_id=request.rma_id,
                amount=refund_amount(inspected.lines, self._order.currency),
                currency=self._order.currency,
                idempotency_key=f"{request.rma_id}/refund",
            ),
            summary=f"refund {request.rma_id}",
        )
        self._replace(
            inspected.model_copy(update={"state": "REFUNDED", "refund_amount": result.amount})
        )
        self._recorder.note(
            OrderStatus.REFUNDED,
            f"{request.rma_id}: refunded {result.amount} "
            f"{result.currency} (total refunded {result.refunded_total})",
            actor=request.by,
        )
        return result

    # --- the waiting ----------------------------------------------------------------------

    async def stay_open(self, sla: SlaPolicy) -> None:
        """Until the window has closed and nothing is left to refund; refunds have an SLA."""
        assert self.delivered_at is not None
        window_ends = self.delivered_at + self.window
        while True:
            now = workflow.now()
            pending = [r for r in self.rmas if r.state != "REFUNDED"]
            if now >= window_ends and not pending:
                return
            deadlines = [window_ends] if now < window_ends else []
            deadlines += [
                self._received_at[r.rma_id] + sla.refund_escalate_after
                for r in pending
                if r.rma_id in self._received_at and r.rma_id not in self._escalated
            ]
            try:
                await workflow.wait_condition(
                    self._changed_since(self._changes),
                    timeout=max(min(deadlines) - now, timedelta(seconds=1)) if deadlines else None,
                )
            except TimeoutError:
                await self._escalate_late_refunds(sla)

    async def _escalate_late_refunds(self, sla: SlaPolicy) -> None:
        now = workflow.now()
        for rma in self.rmas:
            received = self._received_at.get(rma.rma_id)
            if (
                rma.state != "REFUNDED"
                and received
                and rma.rma_id not in self._escalated
                and now >= received + sla.refund_escalate_after
            ):
                self._escalated.add(rma.rma_id)
                await self._recorder.escalate(
                    f"{rma.rma_id} not refunded within {sla.refund_escalate_after} of receipt"
                )

    def _changed_since(self, seen: int) -> Callable[[], bool]:
        return lambda: self._changes != seen

    def _rma(self, rma_id: str) -> Rma:
        for rma in self.rmas:
            if rma.rma_id == rma_id:
                return rma
        known = ", ".join(r.rma_id for r in self.rmas) or "none"
        raise refused(CommandRefused(f"no {rma_id} on this order (RMAs: {known})"))

    def _replace(self, rma: Rma) -> None:
        self.rmas = [rma if r.rma_id == rma.rma_id else r for r in self.rmas]
        self._changes += 1

    def _line(self, sku: str, quantity: int) -> ReturnedLine:
        price = next(line.unit_price for line in self._order.lines if line.sku == sku)
        held: dict[str, int] = {}
        for shipment in self.shipments:
            for line in shipment.lines:
                if line.sku == sku:
                    held[shipment.warehouse] = held.get(shipment.warehouse, 0) + line.quantity
        if not held:
            raise refused(CommandRefused(f"{sku} was not shipped from any warehouse"))
        warehouse = max(sorted(held.items()), key=lambda item: item[1])[0]
        return ReturnedLine(sku=sku, quantity=quantity, unit_price=price, warehouse=warehouse)
