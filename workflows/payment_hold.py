"""Keeping an order's card authorisation alive while it ships in waves, and the PAYMENT hold.

A card authorisation lapses after about a week (`PaymentAuthorization.valid_until`); an order
on backorder, or one whose parcels are slow, outlives it. Before a later wave is booked and
before each capture, a lapsed authorisation is replaced by a new one for what is not billed
yet. When the issuer declines it, the order waits on a PAYMENT hold for finance, with the SLA
and escalation of every other hold: released, the card is tried again (finance had the
customer update it, or pay otherwise); rejected, nothing more ships and what was delivered is
billed from the authorisations that held.
"""

from datetime import timedelta
from decimal import Decimal

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from activities.payments import PaymentActivities
    from domain.details import approval_wanted
    from domain.holds import Hold, HoldType, Notice, RejectionDecision, Tier, release
    from domain.sla import format_duration
    from domain.stages import Stage
    from domain.statuses import OrderStatus
    from domain.steps import PaymentAuthorization, PaymentRequest, ValidatedOrder
    from workflows import metrics
    from workflows.approval_stage import EXPIRY_ACTIONS, ApprovalStage
    from workflows.steps import BusinessFailure, run_step


class PaymentRefused(Exception):
    """Finance rejected the PAYMENT hold (or its SLA expired): bill what was delivered only."""


class PaymentHold(ApprovalStage):
    """The part of OrderWorkflow that keeps the money authorised until the last capture."""

    _payment_refusal: RejectionDecision | None = None
    _reauthorizations: int = 0  # attempts, declined ones too: each needs a key of its own
    _payment_holds: int = 0

    async def keep_authorised(
        self, v: ValidatedOrder, unbilled: Decimal, *, delivered: bool = False
    ) -> None:
        """Replace a lapsed authorisation with one for what is not billed yet (`unbilled`:
        the goods at the order's prices; the gateway step adds their share of shipping and
        tax). A decline puts the order on a PAYMENT hold until finance decides (`delivered`:
        the goods to pay for have reached the customer, so the hold never expires into a
        refusal: writing them off is for a person).

        Raises:
            PaymentRefused: finance rejected the hold, or its SLA expired.
        """
        payment = self._state.payment
        assert payment is not None
        while payment.lapsed(workflow.now()):
            self.checkpoint()  # a cancel accepted meanwhile stops the order, not a renewal
            self._reauthorizations += 1
            try:
                renewed: PaymentAuthorization = await run_step(
                    PaymentActivities.authorize_payment,
                    self.payment_request(v, unbilled, reauthorization=self._reauthorizations),
                    summary=f"re-authorise: the authorisation lapsed at {payment.valid_until}",
                )
            except BusinessFailure as declined:
                if declined.kind != "PaymentDeclined":
                    raise
                self.checkpoint()
                await self._hold_for_payment(
                    v, f"re-authorisation declined: {declined}", delivered=delivered
                )
                continue
            await self.record(
                f"reauthorized-{self._reauthorizations}",
                f"authorisation renewed: {renewed.amount} {renewed.currency} "
                f"until {renewed.valid_until:%Y-%m-%d %H:%M:%S} UTC (the last one lapsed)",
            )
            self._state.payment = payment = renewed

    def payment_request(
        self, v: ValidatedOrder, amount: Decimal | None = None, *, reauthorization: int = 0
    ) -> PaymentRequest:
        """The authorisation step's input: the order's goods (`amount`: what is not billed
        yet, for the n-th renewal)."""
        return PaymentRequest(
            order_id=self._order.order_id,
            customer=v.customer,
            amount=v.total if amount is None else amount,
            currency=self._order.currency,
            reauthorization=reauthorization,
        )

    async def _hold_for_payment(
        self, v: ValidatedOrder, why: str, *, delivered: bool = False
    ) -> None:
        """Wait for finance: returns when the hold is released.

        Raises:
            PaymentRefused: the hold was rejected, or expired under the reject/cancel action.
        """
        self._payment_holds += 1
        n, resume, before = self._payment_holds, self._stage, self._state.status
        self._gate.approvers = await run_step(
            ApprovalActivities.load_approvers, summary="load approvers"
        )
        hold = Hold(type=HoldType.PAYMENT, tier=Tier.FINANCE, reason=why)
        self._gate.holds = [*self._gate.holds, hold]
        self._state.holds = self._gate.holds
        metrics.holds_placed([hold])
        self._payment_refusal = None
        self._after_release = resume
        self._stage = Stage.PAYMENT_HOLD
        limit = v.sla.approval_escalate_after
        self._state.approval_due = workflow.now() + limit
        await self.move(
            OrderStatus.AWAITING_APPROVAL,
            f"PAYMENT ({Tier.FINANCE.value}): {why}",
            step=f"payment-hold-{n}",
        )
        await run_step(
            ApprovalActivities.notify,
            Notice(
                order_id=self._order.order_id,
                recipient=Tier.FINANCE.value,
                kind="approval_needed",
                message=f"order {self._order.order_id} needs payment: {why}",
                key=f"{self._order.order_id}/notify/payment-hold/{n}",
            ),
            summary="notify finance: payment hold",
        )
        started, escalated, alerted = workflow.now(), False, False
        while self._gate.is_open and self._payment_refusal is None:
            limit = v.sla.approval_expire_after if escalated else v.sla.approval_escalate_after
            due = None if alerted else started + limit
            self._state.approval_due = due
            expire_action = "alert" if delivered else v.sla.approval_expire_action
            action = EXPIRY_ACTIONS[expire_action] if escalated else "escalate"
            if await self.wait(
                lambda: not self._gate.is_open or self._payment_refusal is not None,
                None if due is None else max(due - workflow.now(), timedelta(seconds=1)),
                summary=f"payment hold SLA: {action} after {format_duration(limit)}",
                waiting_for=approval_wanted(self._gate.holds),
            ):
                continue
            if not escalated:
                await self.escalate(f"no payment decision within {format_duration(limit)}")
                await self._gate.escalate(self._state.escalation_level)
                self._state.holds = self._gate.holds
                self.upsert_search()
                escalated = True
                continue
            if expire_action == "alert":
                await self.escalate(f"no payment decision within {format_duration(limit)}")
                alerted = True
                continue
            self._payment_refusal = RejectionDecision(
                by="orderflow", reason=f"no payment decision within {format_duration(limit)}"
            )
        self._state.approval_due = None
        self._stage = resume
        await self.record_releases()
        refusal = self._payment_refusal
        if refusal is not None:
            self._gate.holds = release(
                self._gate.holds,
                [HoldType.PAYMENT],
                refusal.by,
                workflow.now(),
                f"rejected: {refusal.reason}",
            )
            self._state.holds = self._gate.holds
            await self.move(
                before,
                f"payment refused by {refusal.by}: {refusal.reason}",
                step=f"payment-refused-{n}",
                actor=refusal.by,
            )
            raise PaymentRefused(f"payment refused by {refusal.by}: {refusal.reason}")
        await self.move(
            before, "payment hold released: trying the card again", step=f"payment-released-{n}"
        )

    def take_payment_refusal(self, decision: RejectionDecision) -> str:
        """The reject Update on a PAYMENT hold: recorded; the hold's loop acts on it."""
        self._payment_refusal = decision
        self._stage = self._after_release  # nothing else is taken while it winds down
        return f"payment refused by {decision.by}: nothing more ships"
