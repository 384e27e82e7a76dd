"""The approval stage of an order: wait until every hold is released, escalate, expire."""

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.commands import CancelRequest
    from domain.details import approval_wanted
    from domain.holds import ApprovalDecision, HoldType, Tier
    from domain.sla import format_duration
    from domain.stages import Stage
    from domain.statuses import OrderStatus
    from domain.steps import ValidatedOrder
    from workflows.journal import OrderCancelled, OrderJournal
    from workflows.steps import BusinessFailure


class ApprovalStage(OrderJournal):
    """The part of OrderWorkflow between validation and payment, while holds are open."""

    _edits: int
    _releases: list[tuple[ApprovalDecision, list[HoldType], int]]
    _after_release: Stage = Stage.FULFILMENT
    """Where the order goes when its last hold is released (a PAYMENT hold: back to the
    stage it interrupted)."""

    async def _await_approval(self, v: ValidatedOrder, edits: int) -> None:
        """Wait until every hold is released or the order is edited (it is then assessed
        again); escalate once, then act on expiry. A rejection or cancel stops the wait."""
        gate = self._gate
        reasons = "; ".join(
            f"{h.type.value} ({h.tier.value}): {h.reason}" for h in gate.holds if h.is_open
        )
        limit = v.sla.approval_expire_after if gate.escalated else v.sla.approval_escalate_after
        self._state.approval_due = workflow.now() + limit  # set to the timer's below
        await self.move(OrderStatus.AWAITING_APPROVAL, reasons, step=f"holds-{edits}")
        for tier in sorted({h.tier.value for h in gate.holds}):
            await gate.notify(
                "approval_needed",
                tier,
                0,
                f"order {self._order.order_id} "
                f"(goods net {v.total} {self._order.currency}) needs approval: {reasons}",
            )
        started = workflow.now()
        alerted = False
        while gate.is_open:
            limit = v.sla.approval_expire_after if gate.escalated else v.sla.approval_escalate_after
            remaining = (
                None if alerted else max(started + limit - workflow.now(), timedelta(seconds=1))
            )
            self._state.approval_due = None if alerted else started + limit
            if await self.wait(
                lambda: not gate.is_open or self._edits != edits,
                remaining,
                summary=_sla_summary(v, escalated=gate.escalated),
                waiting_for=approval_wanted(gate.holds),
            ):
                await self.record_releases()
                if self._edits != edits:
                    self._state.approval_due = None
                    return  # the customer changed the order: it is validated and held again
                continue
            if not gate.escalated:
                await self.escalate(
                    f"no approval within {format_duration(v.sla.approval_escalate_after)}"
                )
                await gate.escalate(self._state.escalation_level)
                self._state.holds = gate.holds
                self.upsert_search()
                continue
            await self._approval_expired(v)
            alerted = True
        self._state.approval_due = None
        await self.record_releases()
        self.note(OrderStatus.VALIDATED, "all holds released")

    async def _approval_expired(self, v: ValidatedOrder) -> None:
        """The configured action at expiry: reject, cancel, or alert and keep waiting."""
        action = v.sla.approval_expire_action
        why = f"no approval within {format_duration(v.sla.approval_expire_after)}"
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

    def take_release(self, decision: ApprovalDecision) -> list[HoldType]:
        """Handlers (Update and signal alike): release now, audit at the next step boundary."""
        released = self._gate.approve(decision)
        self._state.holds = self._gate.holds
        self._releases.append((decision, released, self._edits))
        if not self._gate.is_open:
            # The last hold is released: from this moment the order is committed, so an edit
            # arriving after this decision is refused (one arriving before it was taken first
            # and sent the order back to intake, where this approval would have been refused).
            self._stage = self._after_release
        self.upsert_search()
        return released

    async def record_releases(self) -> None:
        """Who released what, when and why: one audit line per accepted decision."""
        while self._releases:
            decision, released, revision = self._releases.pop(0)
            what = ", ".join(t.value for t in released)
            again = sum(h.type == HoldType.PAYMENT for h in self._gate.holds)  # 2nd hold: new line
            await self.record(
                f"approval-{revision}-{what}-{decision.by}" + (f"-{again}" if again > 1 else ""),
                f"{what} released" + (f": {decision.note}" if decision.note else ""),
                actor=decision.by,
            )


EXPIRY_ACTIONS = {"reject": "auto-reject", "cancel": "auto-cancel", "alert": "alert the director"}


def _sla_summary(v: ValidatedOrder, *, escalated: bool) -> str:
    """The approval timer's name: what happens when it fires, after how long since the hold."""
    if not escalated:
        return f"approval SLA: escalate after {format_duration(v.sla.approval_escalate_after)}"
    action = EXPIRY_ACTIONS[v.sla.approval_expire_action]
    return f"approval SLA: {action} after {format_duration(v.sla.approval_expire_after)}"
