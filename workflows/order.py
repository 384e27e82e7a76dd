"""OrderWorkflow: one durable workflow per order, from placement to invoice and returns."""

from datetime import datetime, timedelta
from decimal import Decimal

from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.intake import IntakeActivities
    from activities.inventory import InventoryActivities
    from activities.payments import PaymentActivities
    from activities.shipping import ShippingActivities
    from domain.commands import (
        CancelRequest,
        CommandRefused,
        OrderEdit,
        ShipmentNotice,
        apply_edit,
        check_cancellable,
    )
    from domain.fulfilment import Allocation, AllocationResult, Demand, wave_step
    from domain.geography import COUNTRY_CENTROIDS
    from domain.holds import ApprovalDecision, HoldType, RejectionDecision, Tier
    from domain.money import round_money
    from domain.order import Order
    from domain.returns import InspectionRequest, RefundResult, ReturnRequest, Rma
    from domain.state import OrderState
    from domain.statuses import FulfilmentPolicy, OrderStatus
    from domain.steps import (
        BookingRequest,
        CaptureRequest,
        EditedOrder,
        PaymentRequest,
        ReserveRequest,
        ValidatedOrder,
    )
    from domain.validation import address_problems
    from workflows.approval_gate import ApprovalGate, refused
    from workflows.journal import OrderCancelled, OrderJournal
    from workflows.parcels import Parcels
    from workflows.returns_desk import ReturnDesk
    from workflows.steps import INTAKE_FAILURES, BusinessFailure, run_step


@workflow.defn
class OrderWorkflow(OrderJournal):
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

    # --- approval -----------------------------------------------------------------------

    async def _await_approval(self, v: ValidatedOrder, edits: int) -> None:
        """Wait for every hold to be released; escalate once, then auto-reject at expiry."""
        gate = self._gate
        reasons = "; ".join(f"{h.type.value} ({h.tier.value}): {h.reason}" for h in gate.holds)
        await self.move(OrderStatus.AWAITING_APPROVAL, reasons, step="holds")
        for tier in sorted({h.tier.value for h in gate.holds}):
            await gate.notify(
                "approval_needed",
                tier,
                0,
                f"order {self._order.order_id} "
                f"({v.total} {self._order.currency}) needs approval: {reasons}",
            )
        started = workflow.now()
        alerted = False
        while gate.is_open and gate.rejection is None:
            limit = v.sla.approval_expire_after if gate.escalated else v.sla.approval_escalate_after
            remaining = (
                None if alerted else max(started + limit - workflow.now(), timedelta(seconds=1))
            )
            if await self.wait(
                lambda: not gate.is_open or gate.rejection is not None or self._edits != edits,
                remaining,
            ):
                if self._edits != edits:
                    return  # the customer changed the order: it is validated and held again
                continue
            if not gate.escalated:
                await self.escalate(f"no approval within {v.sla.approval_escalate_after}")
                await gate.escalate(self._state.escalation_level)
                self._state.holds = gate.holds
                self.upsert_search()
                continue
            await self._approval_expired(v)
            alerted = True
        if gate.rejection is not None:
            raise BusinessFailure(
                "Rejected", f"rejected by {gate.rejection.by}: {gate.rejection.reason}"
            )
        self.note(OrderStatus.VALIDATED, "all holds released")

    async def _approval_expired(self, v: ValidatedOrder) -> None:
        """The configured action at expiry: reject, cancel, or alert and keep waiting."""
        action = v.sla.approval_expire_action
        why = f"no approval within {v.sla.approval_expire_after}"
        level = self._state.escalation_level
        if action == "alert":
            await self.escalate(f"{why}: still waiting")
            await self._gate.notify("sla_breach", Tier.DIRECTOR.value, level + 1, why)
            return
        who = self._order.submitted_by or "customer"
        if action == "cancel":
            await self._gate.notify("sla_breach", who, level, f"{why}: auto-cancelled")
            self._cancel = CancelRequest(reason=f"{why}: auto-cancelled", by="orderflow")
            raise OrderCancelled()
        await self._gate.notify("auto_rejected", who, level, "approval expired")
        raise BusinessFailure("ApprovalExpired", f"{why}: auto-rejected")

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

    async def _record_release(self, decision: ApprovalDecision, released: list[HoldType]) -> None:
        """Who released what, when and why: the same audit line for the Update and the signal."""
        self._state.holds = self._gate.holds
        what = ", ".join(t.value for t in released)
        await self.record(
            f"approval-{what}-{decision.by}",
            f"{what} released" + (f": {decision.note}" if decision.note else ""),
            actor=decision.by,
        )
        self.upsert_search()

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

    async def _ship_in_waves(self, v: ValidatedOrder) -> None:
        """Route, book and follow what is held; under ship-when-available, ship what is there
        now and the rest as it arrives (one wave per restock), until nothing is backordered."""
        partial = v.fulfilment_policy == FulfilmentPolicy.SHIP_WHEN_AVAILABLE
        expires = workflow.now() + v.sla.backorder_expire_after
        round_, wave, after_wave = 0, 0, False
        allocation = await self._reserve(v, round_)
        while True:
            while allocation.backordered and not (partial and allocation.reservations):
                if not await self._await_restock(v, allocation, expires, recheck=after_wave):
                    if wave == 0:
                        self._cancel = CancelRequest(
                            reason=f"backorder expired after {v.sla.backorder_expire_after}",
                            by="orderflow",
                        )
                        raise OrderCancelled()
                    await self.record(
                        f"dropped-{wave}",
                        "backorder expired: not shipped "
                        + ", ".join(f"{d.sku} x{d.quantity}" for d in allocation.backordered),
                    )
                    return
                after_wave = False
                round_ += 1
                requests = self._restock_requests
                allocation = await self._reserve(v, round_)
                self._restock_attempts = requests
            wave += 1
            summary = allocation.decision.summary if allocation.decision else "routed"
            await self.move(OrderStatus.ROUTED, summary, step=wave_step("routed", wave))
            booked = await self.unless_cancelled(
                run_step(
                    ShippingActivities.book_shipments,
                    BookingRequest(
                        order_id=self._order.order_id,
                        currency=self._order.currency,
                        destination=v.destination,
                        promised_date=v.promised_date,
                        allocations=_allocations(allocation),
                        wave=wave,
                    ),
                    summary="rate-shop and book carrier labels",
                    timeout=timedelta(minutes=2),
                    attempts=v.sla.booking_attempts,
                    cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            )
            self._parcels.booked(booked, wave)
            self._state.shipments = self._parcels.shipments
            self.note(OrderStatus.AWAITING_SHIPMENT, "labels booked")
            self.checkpoint()
            await self._parcels.follow(v.sla, v.promised_date)
            if not allocation.backordered:
                return
            allocation = allocation.model_copy(update={"reservations": []})
            after_wave = True

    async def _await_restock(
        self,
        v: ValidatedOrder,
        allocation: AllocationResult,
        expires: datetime,
        *,
        recheck: bool = False,
    ) -> bool:
        """BACKORDERED until a receipt offers stock (True) or the backorder expires (False).

        `recheck`: the last reservation attempt was made before a wave shipped, when the read
        model did not say BACKORDERED, so a receipt in between did not see this order: try
        once more at once instead of waiting.
        """
        self._backorder_waits += 1
        # Written to the read model too: that is where a goods receipt looks for backorders.
        await self.move(
            OrderStatus.BACKORDERED,
            "waiting for stock: "
            + ", ".join(f"{d.sku} x{d.quantity}" for d in allocation.backordered),
            step=f"backordered-{self._backorder_waits}",
        )
        if recheck:
            return True
        return await self.wait(
            lambda: self._restock_requests > self._restock_attempts,
            max(expires - workflow.now(), timedelta(seconds=1)),
        )

    async def _reserve(self, v: ValidatedOrder, round_: int) -> AllocationResult:
        days = max((v.promised_date - workflow.now().date()).days, 1)
        allocation: AllocationResult = await run_step(
            InventoryActivities.reserve_inventory,
            ReserveRequest(
                order=self._order,
                destination=v.destination,
                promised_days=days,
                policy=v.fulfilment_policy,
                round=round_,
            ),
            summary=f"route and hold stock (round {round_})",
        )
        self._state.allocation = allocation
        if not allocation.backordered:
            self.note(
                OrderStatus.RESERVED,
                "stock held at "
                + ", ".join(sorted({r.warehouse for r in allocation.reservations})),
            )
        self.checkpoint()
        return allocation

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


def _allocations(allocation: AllocationResult) -> list[Allocation]:
    """One allocation per warehouse from what is actually held (all backorder rounds merged)."""
    held: dict[str, dict[str, int]] = {}
    for r in allocation.reservations:
        skus = held.setdefault(r.warehouse, {})
        skus[r.sku] = skus.get(r.sku, 0) + r.quantity
    return [
        Allocation(warehouse=w, lines=[Demand(sku=k, quantity=q) for k, q in sorted(skus.items())])
        for w, skus in sorted(held.items())
    ]
