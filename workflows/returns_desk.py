"""After delivery: RMAs opened, received, inspected and refunded, inside the return window.

The Update handlers only check and queue a job (claiming the units at once, so two requests
cannot both take the same units); `stay_open`, the order's main loop in this stage, runs each
job's activities and hands the outcome back. A failed job is the sender's one-line error and
never the workflow task's.
"""

from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.refunds import RefundActivities
    from activities.returns import ReturnsActivities
    from domain.commands import CommandRefused
    from domain.details import returns_wanted
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
    from domain.sla import format_duration
    from domain.state import ReturnsLedger
    from domain.statuses import OrderStatus
    from workflows.messages import refused
    from workflows.steps import BusinessFailure, run_step, step_failure


class OrderRecorder(Protocol):
    """What the returns desk needs from the order workflow."""

    def note(self, status: OrderStatus, why: str, *, actor: str = "orderflow") -> None: ...
    async def escalate(self, why: str) -> None: ...
    def waiting(self, what: str | None, timer: str | None = None) -> None: ...


class ReturnDesk:
    """Keeps the order open for returns until the window closes and every RMA is settled."""

    def __init__(self, order: Order, recorder: OrderRecorder) -> None:
        self._order = order
        self._recorder = recorder
        self.rmas: list[Rma] = []
        self._returned: dict[str, int] = {}
        self._opened_at: dict[str, datetime] = {}
        self._received_at: dict[str, datetime] = {}
        self._escalated: set[str] = set()
        self._jobs: list[tuple[int, str, Any]] = []  # (ticket, kind, request)
        self._outcomes: dict[int, Any] = {}
        self._tickets = 0
        self.delivered_at: datetime | None = None
        self.captured = False
        self.shipments: list[Shipment] = []
        self.delivered: dict[str, int] = {}
        self.window = timedelta(days=30)

    # --- validators (no I/O, no awaits) -------------------------------------------------

    def check_request(self, request: ReturnRequest) -> None:
        if not self.captured:
            raise CommandRefused("returns open once the order is delivered and invoiced")
        check_return(
            request, self.delivered, self._returned, self.delivered_at, workflow.now(), self.window
        )
        for sku in request.lines:
            self._warehouse_of(sku)

    def check_receive(self, rma_id: str) -> None:
        rma = self._rma(rma_id)
        if rma.state == "REFUNDED":
            raise CommandRefused(
                f"{rma_id} is already refunded ({rma.refund_amount}); nothing left to receive"
            )
        if rma.state != "OPEN" or self._queued(rma_id, "receive"):
            raise CommandRefused(f"{rma_id} is {rma.state}, not OPEN")

    def check_inspect(self, request: InspectionRequest) -> None:
        rma = self._rma(request.rma_id)
        if rma.state == "REFUNDED":
            raise CommandRefused(f"{rma.rma_id} is already refunded ({rma.refund_amount})")
        if rma.state != "RECEIVED" or self._queued(request.rma_id, "inspect"):
            raise CommandRefused(f"{rma.rma_id} is {rma.state}: inspect after receipt")
        check_inspection({line.sku: line.quantity for line in rma.lines}, request.lines)

    # --- handlers: claim, queue, wait for the main loop's outcome ------------------------
    # Each is called right after its check, with no await in between (OrderWorkflow's
    # handlers), so no other message can claim the same units or RMA in the meantime.

    def open(self, request: ReturnRequest) -> int:
        """Claim the units and queue the RMA; returns the ticket to wait on."""
        for sku, quantity in request.lines.items():
            self._returned[sku] = self._returned.get(sku, 0) + quantity
        rma = Rma(
            rma_id=rma_id_for(self._order.order_id, len(self.rmas) + 1),
            order_id=self._order.order_id,
            reason=request.reason,
            lines=[self._line(sku, qty) for sku, qty in sorted(request.lines.items())],
        )
        self.rmas.append(rma)
        self._opened_at[rma.rma_id] = workflow.now()
        return self._queue("open", (rma, request.by))

    def receive(self, rma_id: str) -> int:
        self._received_at[rma_id] = workflow.now()
        return self._queue("receive", rma_id)

    def inspect(self, request: InspectionRequest) -> int:
        return self._queue("inspect", request)

    async def outcome(self, ticket: int) -> Any:
        """The job's result once the main loop ran it; its failure as a one-line refusal."""
        await workflow.wait_condition(lambda: ticket in self._outcomes)
        result = self._outcomes.pop(ticket)
        if isinstance(result, ApplicationError):
            raise result
        return result

    # --- carried across runs (continue-as-new) -------------------------------------------

    def ledger(self) -> ReturnsLedger:
        """Everything the stage knows, for a fresh run; only taken when no job is queued."""
        assert self.delivered_at is not None and not self._jobs
        return ReturnsLedger(
            rmas=self.rmas,
            returned=self._returned,
            opened_at=self._opened_at,
            received_at=self._received_at,
            escalated=sorted(self._escalated),
            delivered_at=self.delivered_at,
            shipments=self.shipments,
            delivered=self.delivered,
            window=self.window,
        )

    def restore(self, ledger: ReturnsLedger) -> None:
        """Pick up where the previous run left off (the order was captured before it ended)."""
        self.rmas, self._returned = list(ledger.rmas), dict(ledger.returned)
        self._opened_at, self._received_at = dict(ledger.opened_at), dict(ledger.received_at)
        self._escalated = set(ledger.escalated)
        self.delivered_at, self.captured = ledger.delivered_at, True
        self.shipments, self.delivered = list(ledger.shipments), dict(ledger.delivered)
        self.window = ledger.window

    @property
    def busy(self) -> bool:
        """A job is queued: the stage must run it before the run may end."""
        return bool(self._jobs)

    # --- the main loop of the stage ------------------------------------------------------

    async def stay_open(self, sla: SlaPolicy, fresh_run_wanted: Callable[[], bool]) -> bool:
        """Run queued jobs until the window has closed and every RMA is settled (True), or
        until `fresh_run_wanted()` with no job queued (False: the caller continues as new).

        Refunds have an SLA from receipt (escalated once); an RMA whose parcel never arrives
        expires `rma_expire_after` after it was opened, so no order stays open forever.
        """
        assert self.delivered_at is not None
        window_ends = self.delivered_at + self.window
        while True:
            while self._jobs:
                await self._run(self._jobs.pop(0))
            now = workflow.now()
            pending = [r for r in self.rmas if r.state not in ("REFUNDED", "EXPIRED")]
            if now >= window_ends and not pending:
                return True
            if fresh_run_wanted():
                return False
            deadlines = self._deadlines(window_ends, pending, sla, now)
            timer = min(deadlines) if deadlines else None
            summary = timer[1] if timer else None
            self._recorder.waiting(returns_wanted(window_ends, self.rmas, now), summary)
            try:
                await workflow.wait_condition(
                    lambda: bool(self._jobs) or fresh_run_wanted(),
                    timeout=max(timer[0] - now, timedelta(seconds=1)) if timer else None,
                    timeout_summary=summary,
                )
            except TimeoutError:
                await self._expire_abandoned(sla)
                await self._escalate_late_refunds(sla)

    def _deadlines(
        self, window_ends: datetime, pending: list[Rma], sla: SlaPolicy, now: datetime
    ) -> list[tuple[datetime, str]]:
        """What the stage's timer waits for: each deadline with the timer's name."""
        deadlines = [(window_ends, f"return window closes {window_ends.date().isoformat()}")]
        deadlines = deadlines if now < window_ends else []
        deadlines += [
            (
                self._received_at[r.rma_id] + sla.refund_escalate_after,
                f"refund SLA: escalate {r.rma_id} "
                f"{format_duration(sla.refund_escalate_after)} after receipt",
            )
            for r in pending
            if r.rma_id in self._received_at and r.rma_id not in self._escalated
        ]
        deadlines += [
            (
                self._opened_at[r.rma_id] + sla.rma_expire_after,
                f"{r.rma_id} expires "
                f"{(self._opened_at[r.rma_id] + sla.rma_expire_after).date().isoformat()} "
                "unless its parcel arrives",
            )
            for r in pending
            if r.state == "OPEN" and r.rma_id in self._opened_at
        ]
        return deadlines

    async def _run(self, job: tuple[int, str, Any]) -> None:
        ticket, kind, request = job
        try:
            if kind == "open":
                result: Any = await self._open(*request)
            elif kind == "receive":
                result = await self._receive(request)
            else:
                result = await self._inspect(request)
        except BusinessFailure as failure:
            result = refused(str(failure))
        except (ActivityError, ApplicationError) as error:
            cause = step_failure(error)
            result = refused(getattr(cause, "message", None) or str(error))
        self._outcomes[ticket] = result

    async def _open(self, rma: Rma, by: str) -> Rma:
        opened: Rma = await run_step(
            ReturnsActivities.open_rma, rma, summary=f"open {rma.rma_id} and book a return label"
        )
        self._replace(opened)
        self._recorder.note(OrderStatus.RETURN_REQUESTED, f"{rma.rma_id}: {rma.reason}", actor=by)
        return opened

    async def _receive(self, rma_id: str) -> Rma:
        received: Rma = await run_step(
            ReturnsActivities.receive_return, rma_id, summary=f"{rma_id} received"
        )
        self._replace(received)
        self._recorder.note(OrderStatus.RETURN_RECEIVED, f"{rma_id} received at the warehouse")
        return received

    async def _inspect(self, request: InspectionRequest) -> RefundResult:
        """Record each unit's disposition, then refund what came back (if it was worth any)."""
        inspected: Rma = await run_step(
            ReturnsActivities.inspect_return, request, summary=f"inspect {request.rma_id}"
        )
        self._replace(inspected)
        amount = refund_amount(inspected.lines, self._order.currency)
        if amount > 0:
            result: RefundResult = await run_step(
                RefundActivities.refund,
                RefundRequest(
                    order_id=self._order.order_id,
                    rma_id=request.rma_id,
                    amount=amount,
                    currency=self._order.currency,
                    idempotency_key=f"{request.rma_id}/refund",
                ),
                summary=f"refund {request.rma_id}",
            )
        else:  # lines given away at 0.00: nothing was paid, nothing to give back
            result = RefundResult(
                order_id=self._order.order_id,
                rma_id=request.rma_id,
                amount=amount,
                currency=self._order.currency,
                reference="none: nothing was paid for these units",
                refunded_total=sum((r.refund_amount or Decimal(0) for r in self.rmas), Decimal(0)),
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

    async def _expire_abandoned(self, sla: SlaPolicy) -> None:
        now = workflow.now()
        for rma in list(self.rmas):
            opened = self._opened_at.get(rma.rma_id)
            if rma.state == "OPEN" and opened and now >= opened + sla.rma_expire_after:
                expired: Rma = await run_step(
                    ReturnsActivities.expire_rma, rma.rma_id, summary=f"expire {rma.rma_id}"
                )
                self._replace(expired)

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
                    f"{rma.rma_id} not refunded within "
                    f"{format_duration(sla.refund_escalate_after)} of receipt"
                )

    def _queue(self, kind: str, request: Any) -> int:
        self._tickets += 1
        self._jobs.append((self._tickets, kind, request))
        return self._tickets

    def _queued(self, rma_id: str, kind: str) -> bool:
        def about(request: Any) -> str:
            return request if isinstance(request, str) else getattr(request, "rma_id", "")

        return any(k == kind and about(r) == rma_id for _, k, r in self._jobs)

    def _rma(self, rma_id: str) -> Rma:
        for rma in self.rmas:
            if rma.rma_id == rma_id:
                return rma
        known = ", ".join(r.rma_id for r in self.rmas) or "none"
        raise CommandRefused(f"no {rma_id} on this order (RMAs: {known})")

    def _replace(self, rma: Rma) -> None:
        self.rmas = [rma if r.rma_id == rma.rma_id else r for r in self.rmas]

    def _warehouse_of(self, sku: str) -> str:
        held: dict[str, int] = {}
        for shipment in self.shipments:
            for line in shipment.lines:
                if line.sku == sku:
                    held[shipment.warehouse] = held.get(shipment.warehouse, 0) + line.quantity
        if not held:
            raise CommandRefused(f"{sku} was not shipped from any warehouse")
        return max(sorted(held.items()), key=lambda item: item[1])[0]

    def _line(self, sku: str, quantity: int) -> ReturnedLine:
        price = next(line.unit_price for line in self._order.lines if line.sku == sku)
        return ReturnedLine(
            sku=sku, quantity=quantity, unit_price=price, warehouse=self._warehouse_of(sku)
        )
