"""OrderWorkflow: one durable workflow per order, from placement to invoice and returns.

Message handlers never do the work: each one asks the stage table (`domain.stages`) whether
its command is taken now, validates the payload, records the decision and returns. The main
loop (`run`) applies what they recorded at its step boundaries. Handlers raise nothing but
`ApplicationError` (Updates) or nothing at all (signals, which log and drop what makes no
sense), so no message can fail a workflow task.
"""

from temporalio import workflow
from temporalio.common import RawValue
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
    )
    from domain.geography import COUNTRY_CENTROIDS
    from domain.holds import ApprovalDecision, Hold, HoldType, RejectionDecision
    from domain.order import Order
    from domain.policy import SlaPolicy
    from domain.returns import InspectionRequest, RefundResult, ReturnRequest, Rma
    from domain.stages import Command, Stage, accepts, check
    from domain.state import ContinuedOrder, OrderState
    from domain.statuses import OrderStatus
    from domain.steps import EditedOrder, ValidatedOrder
    from domain.validation import address_problems
    from workflows import metrics, versions
    from workflows.approval_gate import ApprovalGate
    from workflows.journal import OrderCancelled
    from workflows.messages import NO_PAYLOAD, parse, parse_text, refusals
    from workflows.parcels import Parcels
    from workflows.returns_desk import ReturnDesk
    from workflows.steps import INTAKE_FAILURES, BusinessFailure, run_step
    from workflows.stock_waves import StockWaves
    from workflows.versions import (
        AUDIT_IN_MAIN_LOOP,
        RETURNS_IN_A_FRESH_RUN,
        TELL_OPERATIONS_ON_FAILURE,
    )


STOCK_ARRIVED_DESCRIPTION = (
    "internal: sent by goods-in (StockReceiptWorkflow, via its offer_stock activity) to a "
    "backordered order, which tries to reserve again; not for people: receive goods with "
    "`orderflow restock SKU WAREHOUSE QTY` instead."
)
"""The stock_arrived Update keeps its name (running orders and the replay goldens use it)."""


@workflow.defn
class OrderWorkflow(StockWaves):  # StockWaves < PaymentHold < ApprovalStage < OrderJournal
    """Validate, hold for approval, authorise, reserve + route, book, ship, deliver, capture."""

    @workflow.init
    def __init__(self, placed: Order | ContinuedOrder) -> None:
        carried = placed if isinstance(placed, ContinuedOrder) else None
        order = carried.order if carried else placed
        assert isinstance(order, Order)
        self._order = order
        self._state = (
            carried.state.model_copy()
            if carried
            else OrderState(
                order_id=order.order_id,
                status=OrderStatus.RECEIVED,
                customer_id=order.customer_id,
                channel=order.channel.value,
                currency=order.currency,
                lines=[line.model_dump(mode="json") for line in order.lines],
                promised_date=order.promised_date,
            )
        )
        self._stage = Stage.RETURNS if carried else Stage.INTAKE
        self._entered = None if carried else workflow.info().workflow_start_time  # RECEIVED
        self._gate = ApprovalGate(order)
        self._parcels = Parcels(self)
        self._returns = ReturnDesk(order, self)
        self._compensations: list[str] = list(carried.state.compensations) if carried else []
        if carried:
            self._gate.holds = list(carried.state.holds)
            self._returns.restore(carried.returns)
        self._cancel: CancelRequest | None = None
        self._rejection: RejectionDecision | None = None
        self._releases = []
        self._unrecorded_edits: list[EditedOrder] = []
        self._restock_requests = 0
        self._edits = 0
        self._backorder_waits = 0
        self._restock_attempts = 0

    @workflow.run
    async def run(self, placed: Order | ContinuedOrder) -> OrderState:
        """An order from placement, or (ContinuedOrder) an invoiced one in its return window."""
        versions.decide_at_start()
        try:
            if isinstance(placed, ContinuedOrder):
                await self._stay_open_for_returns(placed.sla, fresh_run_now=False)
            else:
                metrics.placed(self._order.channel.value)
                await self._fulfil(await self._accept())
        except BusinessFailure as failure:
            await self._stop()
            final = OrderStatus.REJECTED if failure.kind in INTAKE_FAILURES else OrderStatus.FAILED
            actor = self._rejection.by if failure.kind == "Rejected" and self._rejection else None
            await self.move(
                final, f"{failure.kind}: {failure}", step="closed", actor=actor or "orderflow"
            )
            if final == OrderStatus.FAILED and versions.patched(TELL_OPERATIONS_ON_FAILURE):
                await self.tell_operations(
                    "failed", f"FAILED: {failure.kind}: {failure}", "order_failed"
                )
        except OrderCancelled:
            assert self._cancel is not None
            await self._stop()
            await self.move(
                OrderStatus.CANCELLED, self._cancel.reason, step="closed", actor=self._cancel.by
            )
        self._stage = Stage.CLOSED
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._snapshot()

    async def _stop(self) -> None:
        """Take nothing new, audit the decisions already taken, undo what the order holds."""
        self._stage = Stage.STOPPING
        await self.record_releases()
        await self.compensate()

    async def _accept(self) -> ValidatedOrder:
        """Validate and clear the holds; start over whenever the customer edits meanwhile.

        Leaves with the stage FULFILMENT, set in the same breath as the last look at the
        edits: from then on the stage table refuses edits, so none can slip past the gate.
        """
        while True:
            revision = self._edits
            await self._record_edits()
            v: ValidatedOrder = await run_step(
                IntakeActivities.validate_order,
                self._order,
                summary="validate against catalog and account",
            )
            self._state.total, self._state.promised_date = v.total, v.promised_date
            self.note(
                OrderStatus.VALIDATED, "validated" if not revision else f"edit {revision} validated"
            )
            self.checkpoint()
            if self._edits != revision:
                continue
            earlier: list[Hold] = self._gate.holds
            gate = ApprovalGate(self._order)
            await gate.assess(v, earlier)
            self.checkpoint()
            if self._edits != revision:
                continue
            self._gate = gate
            self._state.holds = gate.holds
            metrics.holds_placed(gate.holds)
            if gate.is_open:
                self._stage = Stage.APPROVAL
                await self._await_approval(v, revision)
                self.checkpoint()
            elif revision:  # the audit says why an edited order needed no new approval
                await self.record(f"cleared-{revision}", "no hold is open after the edit")
                self.checkpoint()
            if self._edits == revision:
                self._stage = Stage.FULFILMENT
                return v

    async def _record_edits(self) -> None:
        while self._unrecorded_edits:
            edited = self._unrecorded_edits.pop(0)
            await run_step(
                IntakeActivities.record_edit, edited, summary=f"record edit {edited.revision}"
            )

    async def _fulfil(self, v: ValidatedOrder) -> None:
        order = self._order  # final: edits are refused from FULFILMENT on
        self.register("void_authorization")
        self._state.payment = await run_step(
            PaymentActivities.authorize_payment,
            self.payment_request(v),
            summary=f"authorise {v.total} {order.currency} ({v.customer.payment_terms.value})",
        )
        self.checkpoint()

        self.register("release_inventory")
        self.register("void_labels")
        try:
            await self._ship_in_waves(v)
        except BusinessFailure as failure:
            if not self._parcels.any_shipped:
                raise
            await self.drop_the_rest(failure)  # bill what shipped; undo only the rest
        await self.capture(v)

        desk = self._returns
        desk.captured = self._state.capture is not None  # returns credit what was billed
        desk.delivered_at = self._parcels.delivered_at
        desk.shipments, desk.window = self._state.shipments, v.sla.return_window
        desk.delivered = self.billed_units()
        self._stage = Stage.RETURNS
        await self._open_returns(v.sla)

    async def _open_returns(self, sla: SlaPolicy) -> None:
        """Versioned: orders invoiced before the patch keep their window in the same run."""
        if versions.patched(RETURNS_IN_A_FRESH_RUN):
            await self._stay_open_for_returns(sla, fresh_run_now=True)
        else:
            await self._returns.stay_open(sla, lambda: False)

    async def _stay_open_for_returns(self, sla: SlaPolicy, *, fresh_run_now: bool) -> None:
        """The return window in runs of its own: a fresh run right after invoicing, and again
        whenever Temporal suggests one, so an order's history stays small however many RMAs
        it sees. A run ends only when no job is queued and no handler is still answering."""
        desk = self._returns

        def fresh_run_wanted() -> bool:
            return fresh_run_now or workflow.info().is_continue_as_new_suggested()

        while not await desk.stay_open(sla, fresh_run_wanted):
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() or desk.busy)
            if not desk.busy:
                workflow.continue_as_new(
                    ContinuedOrder(
                        order=self._order, state=self._snapshot(), returns=desk.ledger(), sla=sla
                    )
                )

    def _snapshot(self) -> OrderState:
        """The state as callers see it; built fresh, never written back (queries read only)."""
        return self._state.model_copy(
            update={
                "compensations": list(self._compensations),
                "returns": list(self._returns.rmas),
                "stage": self._stage.value,
            }
        )

    def _check(self, command: Command) -> None:
        why = ""
        if self._cancel is not None:
            why = f"cancelled by {self._cancel.by}: {self._cancel.reason}"
        elif self._rejection is not None:
            why = f"rejected by {self._rejection.by}"
        check(self._stage, command, stopping_because=why)

    # --- approvals ---------------------------------------------------------------------

    @workflow.update(
        description="An approver releases a hold: {by, hold?, note?}; no hold: every hold they "
        "may release. Refused, with the reason, when they may not (orderflow approve)."
    )
    async def approve(self, raw: RawValue = NO_PAYLOAD) -> str:
        """An approver releases one hold (or every hold they may release)."""
        with refusals():
            decision = self._check_approve(raw)
        released = await self._release(decision)
        left = [h.type.value for h in self._gate.holds if h.is_open]
        what = ", ".join(t.value for t in released)
        return f"released {what}" + (f"; still on hold: {', '.join(left)}" if left else "")

    async def _release(self, decision: ApprovalDecision) -> list[HoldType]:
        """Release now; the audit line is written by the main loop at its next boundary.

        Versioned: orders started before this change audited the release in the handler
        itself, and replay that way (patch "approval-audited-by-main-loop").
        """
        if versions.patched(AUDIT_IN_MAIN_LOOP):
            with refusals():
                return self.take_release(decision)
        with refusals():
            released = self._gate.approve(decision)
            self._state.holds = self._gate.holds
        what = ", ".join(t.value for t in released)
        await self.record(
            f"approval-{what}-{decision.by}",
            f"{what} released" + (f": {decision.note}" if decision.note else ""),
            actor=decision.by,
        )
        self.upsert_search()
        return released

    @approve.validator
    def _validate_approve(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_approve(raw)

    def _check_approve(self, raw: RawValue) -> ApprovalDecision:
        decision = parse(raw, ApprovalDecision, "approval")
        if self._gate.holds and not self._gate.is_open and self._stage != Stage.INTAKE:
            self._gate.check_approve(decision)  # "already decided: ..."
        self._check(Command.APPROVE)
        self._gate.check_approve(decision)
        return decision

    @workflow.signal(
        description="Fire-and-forget approval (an e-mail link, a bot): the approve Update's "
        "payload; a decision that makes no sense now is logged and dropped."
    )
    async def approve_signal(self, raw: RawValue = NO_PAYLOAD) -> None:
        """Fire-and-forget approval; a decision that makes no sense now is logged and dropped."""
        try:
            with refusals():
                decision = self._check_approve(raw)
            await self._release(decision)
        except ApplicationError as error:
            workflow.logger.info("approval ignored: %s", error)

    @workflow.update(
        description="An approver rejects an order on hold: {by, reason}; it ends REJECTED "
        "and nothing stays held; on a PAYMENT hold, what was delivered is billed and nothing "
        "more ships (orderflow reject)."
    )
    def reject(self, raw: RawValue = NO_PAYLOAD) -> str:
        """An approver rejects the order; it ends REJECTED and nothing stays held."""
        with refusals():
            decision = self._check_reject(raw)
            if self._stage == Stage.PAYMENT_HOLD:
                return self.take_payment_refusal(decision)
            self._rejection = decision
            self._stage = Stage.STOPPING
            return f"rejected by {decision.by}"

    @reject.validator
    def _validate_reject(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_reject(raw)

    def _check_reject(self, raw: RawValue) -> RejectionDecision:
        decision = parse(raw, RejectionDecision, "rejection")
        self._check(Command.REJECT)
        self._gate.check_reject(decision)
        return decision

    # --- edits and cancellation -----------------------------------------------------------

    @workflow.update(
        description="Change quantities or the address until the order is approved: "
        "{lines: {SKU: qty}, ship_to?, by}; validated and assessed again (orderflow edit)."
    )
    def edit(self, raw: RawValue = NO_PAYLOAD) -> str:
        """Change quantities, remove lines or change the address, until the order is approved.

        The order goes back to intake at once: approvals are refused until its holds are
        assessed again (a release stays valid only for a hold that did not change).
        """
        with refusals():
            edit, edited = self._check_edit(raw)
            self._order = edited
            self._edits += 1
            self._stage = Stage.INTAKE
            self._state.lines = [line.model_dump(mode="json") for line in edited.lines]
            summary = ", ".join(f"{sku} x{qty}" for sku, qty in sorted(edit.lines.items()))
            summary = "; ".join(filter(None, [summary, "new address" if edit.ship_to else ""]))
            # RECEIVED again: it is validated and assessed anew before anything else happens.
            self.note(OrderStatus.RECEIVED, f"edited: {summary}", actor=edit.by)
            self._unrecorded_edits.append(
                EditedOrder(order=edited, revision=self._edits, by=edit.by, summary=summary)
            )
            return f"edited ({summary}); the order is validated again"

    @edit.validator
    def _validate_edit(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_edit(raw)

    def _check_edit(self, raw: RawValue) -> tuple[OrderEdit, Order]:
        edit = parse(raw, OrderEdit, "edit")
        self._check(Command.EDIT)
        edited = apply_edit(self._order, edit)
        problems = address_problems(edited.ship_to, set(COUNTRY_CENTROIDS))
        if problems:
            raise CommandRefused(problems[0])
        return edit, edited

    @workflow.update(
        description="Cancel before the first parcel ships: {reason, by}; what the order "
        "holds is released in reverse order (orderflow cancel)."
    )
    def cancel(self, raw: RawValue = NO_PAYLOAD) -> str:
        """Cancel before shipment; every hold is released, in reverse order."""
        with refusals():
            request = self._check_cancel(raw)
            self._cancel = request
            self._stage = Stage.STOPPING
            return f"cancelling: {request.reason}"

    @cancel.validator
    def _validate_cancel(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_cancel(raw)

    def _check_cancel(self, raw: RawValue) -> CancelRequest:
        request = parse(raw, CancelRequest, "cancel request")
        self._check(Command.CANCEL)
        return request

    # --- returns ------------------------------------------------------------------------

    @workflow.update(
        description="Open an RMA with a return label inside the return window: "
        "{lines: {SKU: qty}, reason, by} (orderflow return)."
    )
    async def request_return(self, raw: RawValue = NO_PAYLOAD) -> Rma:
        """Open an RMA (with a return label) inside the return window."""
        with refusals():
            ticket = self._returns.open(self._check_return(raw))
        result: Rma = await self._returns.outcome(ticket)
        return result

    @request_return.validator
    def _validate_return(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_return(raw)

    def _check_return(self, raw: RawValue) -> ReturnRequest:
        request = parse(raw, ReturnRequest, "return request")
        self._check(Command.RETURN)
        self._returns.check_request(request)
        return request

    @workflow.update(
        description="An RMA's parcel arrived at the warehouse (payload: the RMA id); the "
        "refund SLA starts (orderflow receive-return)."
    )
    async def receive_return(self, raw: RawValue = NO_PAYLOAD) -> Rma:
        """The returned parcel arrived at the warehouse; the refund SLA starts."""
        with refusals():
            ticket = self._returns.receive(self._check_receive(raw))
        result: Rma = await self._returns.outcome(ticket)
        return result

    @receive_return.validator
    def _validate_receive(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_receive(raw)

    def _check_receive(self, raw: RawValue) -> str:
        rma_id = parse_text(raw, "RMA id")
        self._check(Command.RECEIVE_RETURN)
        self._returns.check_receive(rma_id)
        return rma_id

    @workflow.update(
        description="Each returned unit restocked, refurbished or disposed: {rma_id, lines}; "
        "then the refund (orderflow inspect)."
    )
    async def inspect_return(self, raw: RawValue = NO_PAYLOAD) -> RefundResult:
        """Each unit restocked, refurbished or disposed; then the refund."""
        with refusals():
            ticket = self._returns.inspect(self._check_inspect(raw))
        result: RefundResult = await self._returns.outcome(ticket)
        return result

    @inspect_return.validator
    def _validate_inspect(self, raw: RawValue = NO_PAYLOAD) -> None:
        with refusals():
            self._check_inspect(raw)

    def _check_inspect(self, raw: RawValue) -> InspectionRequest:
        request = parse(raw, InspectionRequest, "inspection")
        self._check(Command.INSPECT_RETURN)
        self._returns.check_inspect(request)
        return request

    # --- the warehouse, the carriers, goods in ------------------------------------------------

    @workflow.signal(
        description="The warehouse reports a parcel left: {shipment_id?, by}; one that makes "
        "no sense is logged and dropped (orderflow ship)."
    )
    def ship(self, raw: RawValue = NO_PAYLOAD) -> None:
        """The WMS reports a parcel left the warehouse (logged and dropped if it makes no sense)."""
        self._take_notice(Command.SHIP, raw)

    @workflow.signal(
        description="The carrier reports a parcel delivered: {shipment_id?, by}; before its "
        "ship notice is fine too (orderflow deliver)."
    )
    def deliver(self, raw: RawValue = NO_PAYLOAD) -> None:
        """The carrier reports a parcel was delivered (before its ship notice is fine too)."""
        self._take_notice(Command.DELIVER, raw)

    @workflow.signal(
        description="A person declares a shipped parcel lost by the carrier: "
        "{shipment_id?, by}; it is not billed (orderflow lost)."
    )
    def lost(self, raw: RawValue = NO_PAYLOAD) -> None:
        """A person declares a shipped parcel lost by the carrier: it is not billed."""
        self._take_notice(Command.LOST, raw)

    def _take_notice(self, command: Command, raw: RawValue) -> None:
        try:
            with refusals():
                notice = parse(raw, ShipmentNotice, f"{command.value} notice")
                self._check(command)
                self._stage = self._parcels.accept(command, notice, self._stage)
        except ApplicationError as error:
            workflow.logger.info("%s notice ignored: %s", command.value, error)

    @workflow.update(description=STOCK_ARRIVED_DESCRIPTION)
    async def stock_arrived(self) -> str:
        """Internal (sent by goods-in): a backordered order tries to reserve again.

        Returns the order's status after the attempt, so a receipt serves backorders one by
        one in priority order; an order not waiting for stock answers at once.
        """
        if self._state.status != OrderStatus.BACKORDERED or not self._takes_stock():
            return self._state.status.value  # not an error: the receipt offers to the next
        self._restock_requests += 1
        ticket = self._restock_requests
        await workflow.wait_condition(
            lambda: (
                self._restock_attempts >= ticket
                or self._state.status != OrderStatus.BACKORDERED
                or not self._takes_stock()
            )
        )
        return self._state.status.value

    def _takes_stock(self) -> bool:
        return accepts(self._stage, Command.STOCK_ARRIVED)  # the stage table decides

    @workflow.query(
        description="The order's typed current state: status, stage, lines, holds, shipments, "
        "payment, returns and its audit trail (orderflow status)."
    )
    def status(self) -> OrderState:
        """The typed current state of the order."""
        return self._snapshot()
