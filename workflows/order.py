"""OrderWorkflow: one durable workflow per order, from placement to invoice and returns."""

from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.intake import IntakeActivities
    from activities.payments import PaymentActivities
    from domain.commands import (
        CancelRequest,
        CommandRefused,
        OrderEdit,
        ShipmentNotice,
        apply_edit,
        check_cancellable,
    )
    from domain.geography import COUNTRY_CENTROIDS
    from domain.holds import ApprovalDecision, RejectionDecision
    from domain.money import round_money
    from domain.order import Order
    from domain.returns import InspectionRequest, RefundResult, ReturnRequest, Rma
    from domain.state import OrderState
    from domain.statuses import OrderStatus
    from domain.steps import CaptureRequest, EditedOrder, PaymentRequest, ValidatedOrder
    from domain.validation import address_problems
    from workflows.approval_gate import ApprovalGate, refused
    from workflows.approval_stage import ApprovalStage
    from workflows.journal import OrderCancelled
    from workflows.parcels import Parcels
    from workflows.returns_desk import ReturnDesk
    from workflows.steps import INTAKE_FAILURES, BusinessFailure, run_step
    from workflows.stock_waves import StockWaves


@workflow.defn
class OrderWorkflow(ApprovalStage, StockWaves):
    """Validate, hold for approval, authorise, reserve + route, book, ship, deliver, capture."""

    @workflow.init
    def __init__(self, order: Order) -> None:
        self._order = order
        self._state = OrderState(
            order_id=order.order_id,
            status=OrderStatus.RECEIVED,
            customer_id=order.customer_id,
            channel=order.channel.value,
            currency=order.currency,
            lines=[line.model_dump(mode="json") for line in order.lines],
            promised_date=order.promised_date,
        )
        self._gate = ApprovalGate(order)
        self._parcels = Parcels(self)
        self._returns = ReturnDesk(order, self)
        self._compensations: list[str] = []
        self._cancel: CancelRequest | None = None
        self._restock_requests = 0
        self._edits = 0
        self._backorder_waits = 0
        self._restock_attempts = 0

    @workflow.run
    async def run(self, order: Order) -> OrderState:
        try:
            await self._fulfil()
        except BusinessFailure as failure:
            await self.compensate()
            final = OrderStatus.REJECTED if failure.kind in INTAKE_FAILURES else OrderStatus.FAILED
            await self.move(final, f"{failure.kind}: {failure}", step="closed")
        except OrderCancelled:
            assert self._cancel is not None
            await self.compensate()
            await self.move(
                OrderStatus.CANCELLED, self._cancel.reason, step="closed", actor=self._cancel.by
            )
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    async def _accept(self) -> ValidatedOrder:
        """Validate and clear the holds; start over when the customer edits meanwhile."""
        while True:
            edits = self._edits
            v: ValidatedOrder = await run_step(
                IntakeActivities.validate_order,
                self._order,
                summary="validate against catalog and account",
            )
            self._state.total, self._state.promised_date = v.total, v.promised_date
            self.note(
                OrderStatus.VALIDATED, "validated" if not edits else f"edit {edits} validated"
            )
            self.checkpoint()
            if self._edits != edits:
                continue
            self._gate = ApprovalGate(self._order)
            await self._gate.assess(v)
            self._state.holds = self._gate.holds
            if self._gate.is_open:
                await self._await_approval(v, edits)
            if self._edits == edits:
                return v

    async def _fulfil(self) -> None:
        v = await self._accept()
        order = self._order  # after any edit

        self.register("void_authorization")
        self._state.payment = await run_step(
            PaymentActivities.authorize_payment,
            PaymentRequest(
                order_id=order.order_id,
                customer=v.customer,
                amount=v.total,
                currency=order.currency,
            ),
            summary=f"authorise {v.total} {order.currency} ({v.customer.payment_terms.value})",
        )
        self.checkpoint()

        self.register("release_inventory")
        self.register("void_labels")
        await self._ship_in_waves(v)
        shipped: dict[str, int] = {}
        for shipment in self._state.shipments:
            for line in shipment.lines:
                shipped[line.sku] = shipped.get(line.sku, 0) + line.quantity
        amount = round_money(
            sum((line.unit_price * shipped.get(line.sku, 0) for line in order.lines), Decimal(0)),
            order.currency,
        )
        self._returns.delivered = shipped
        self._state.capture = await run_step(
            PaymentActivities.capture_payment,
            CaptureRequest(
                order_id=order.order_id,
                authorization=self._state.payment,
                amount=amount,
                customer=v.customer,
            ),
            summary="capture payment and issue invoice",
        )
        self._compensations.clear()  # money taken and goods delivered: nothing left to undo
        self.note(OrderStatus.COMPLETED, f"invoice {self._state.capture.invoice_no}")

        desk = self._returns
        desk.captured, desk.delivered_at = True, self._parcels.delivered_at
        desk.shipments, desk.window = self._state.shipments, v.sla.return_window
        await desk.stay_open(v.sla)

    @workflow.update
    async def approve(self, decision: ApprovalDecision) -> str:
        """An approver releases one hold (or every hold they may release)."""
        released = self._gate.approve(decision)
        await self._record_release(decision, released)
        left = [h.type.value for h in self._gate.holds if h.is_open]
        what = ", ".join(t.value for t in released)
        return f"released {what}" + (f"; still on hold: {', '.join(left)}" if left else "")

    @approve.validator
    def _validate_approve(self, decision: ApprovalDecision) -> None:
        self._gate.check_approve(decision)

    @workflow.update
    async def reject(self, decision: RejectionDecision) -> str:
        """An approver rejects the order; it ends REJECTED and nothing stays held."""
        self._gate.rejection = decision
        return f"rejected by {decision.by}"

    @reject.validator
    def _validate_reject(self, decision: RejectionDecision) -> None:
        self._gate.check_reject(decision)

    @workflow.signal
    async def approve_signal(self, decision: ApprovalDecision) -> None:
        """Fire-and-forget approval; a decision that makes no sense now is logged and dropped."""
        try:
            released = self._gate.approve(decision)
        except ApplicationError as error:
            workflow.logger.warning("approval ignored: %s", error)
            return
        await self._record_release(decision, released)

    @workflow.update
    async def edit(self, edit: OrderEdit) -> str:
        """Change quantities, remove lines or change the address, until stock is held."""
        self._order = apply_edit(self._order, edit, self._state.status)
        self._edits += 1
        self._state.lines = [line.model_dump(mode="json") for line in self._order.lines]
        summary = ", ".join(f"{sku} x{qty}" for sku, qty in sorted(edit.lines.items()))
        summary = "; ".join(filter(None, [summary, "new address" if edit.ship_to else ""]))
        self._state.events.append(self._entry(f"edited: {summary}", actor=edit.by))
        await run_step(
            IntakeActivities.record_edit,
            EditedOrder(order=self._order, revision=self._edits, by=edit.by, summary=summary),
            summary=f"record edit {self._edits}",
        )
        return f"edited ({summary}); the order is validated again"

    @edit.validator
    def _validate_edit(self, edit: OrderEdit) -> None:
        try:
            edited = apply_edit(self._order, edit, self._state.status)
            problems = address_problems(edited.ship_to, set(COUNTRY_CENTROIDS))
            if problems:
                raise CommandRefused(problems[0])
        except CommandRefused as error:
            raise refused(error) from None

    # --- stock --------------------------------------------------------------------------

    @workflow.update
    async def stock_arrived(self) -> str:
        """Stock was received: a backordered order tries to reserve again; returns its status.

        Completes only after the attempt, so the receipt can serve backorders one by one.
        """
        if self._state.status != OrderStatus.BACKORDERED:
            return self._state.status.value
        self._restock_requests += 1
        ticket = self._restock_requests
        await workflow.wait_condition(
            lambda: (
                self._restock_attempts >= ticket or self._state.status != OrderStatus.BACKORDERED
            )
        )
        return self._state.status.value

    # --- returns ------------------------------------------------------------------------

    @workflow.update
    async def request_return(self, request: ReturnRequest) -> Rma:
        """Open an RMA (with a return label) inside the return window."""
        return await self._returns.open(request)

    @request_return.validator
    def _validate_return(self, request: ReturnRequest) -> None:
        self._returns.check_request(request)

    @workflow.update
    async def receive_return(self, rma_id: str) -> Rma:
        """The returned parcel arrived at the warehouse; the refund SLA starts."""
        return await self._returns.receive(rma_id)

    @receive_return.validator
    def _validate_receive(self, rma_id: str) -> None:
        self._returns.check_receive(rma_id)

    @workflow.update
    async def inspect_return(self, request: InspectionRequest) -> RefundResult:
        """Each unit restocked, refurbished or disposed; then the refund."""
        return await self._returns.inspect(request)

    @inspect_return.validator
    def _validate_inspect(self, request: InspectionRequest) -> None:
        self._returns.check_inspect(request)

    # --- shipments, cancellation, status ------------------------------------------------

    @workflow.signal
    def ship(self, notice: ShipmentNotice) -> None:
        """The WMS reports a parcel left the warehouse (ignored if it makes no sense now)."""
        self._parcels.accept("ship", notice)

    @workflow.signal
    def deliver(self, notice: ShipmentNotice) -> None:
        """The carrier reports a parcel was delivered (ignored if it makes no sense now)."""
        self._parcels.accept("deliver", notice)

    @workflow.update
    async def cancel(self, request: CancelRequest) -> str:
        """Cancel before shipment; every hold is released, in reverse order."""
        self._cancel = request
        return f"cancelling: {request.reason}"

    @cancel.validator
    def _validate_cancel(self, request: CancelRequest) -> None:
        try:
            check_cancellable(self._state.status, self._parcels.any_shipped)
        except CommandRefused as error:
            raise refused(error) from None
        if self._cancel is not None:
            raise refused(CommandRefused("a cancellation is already under way"))

    @workflow.query
    def status(self) -> OrderState:
        """The typed current state of the order."""
        self._state.compensations = list(self._compensations)
        self._state.returns = self._returns.rmas
        return self._state
