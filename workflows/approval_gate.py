"""The approval gate of an order: its holds, who may release them, and the decisions taken."""

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from domain.commands import CommandRefused
    from domain.holds import (
        ApprovalDecision,
        Hold,
        HoldRequest,
        HoldType,
        Notice,
        NoticeKind,
        RejectionDecision,
        Tier,
        awaiting_tier,
        carry_over,
        check_approval,
        check_rejection,
        escalate,
        open_holds,
        release,
    )
    from domain.order import Order
    from domain.steps import ValidatedOrder
    from workflows import metrics
    from workflows.messages import refused
    from workflows.steps import run_step


class ApprovalGate:
    """Holds are placed once after validation; the order passes when none is open."""

    def __init__(self, order: Order) -> None:
        self._order = order
        self.holds: list[Hold] = []
        self.approvers: dict[str, list[Tier]] = {}
        self.escalated = False

    @property
    def is_open(self) -> bool:
        """True while some hold still waits for a decision."""
        return bool(open_holds(self.holds))

    @property
    def awaiting(self) -> str | None:
        """The tier the order waits for (None when none), for the search attribute."""
        return awaiting_tier(self.holds)

    async def assess(self, validated: ValidatedOrder, earlier: list[Hold]) -> None:
        """Decide which holds the order needs (amount, credit, price, address, review).

        `earlier`: the holds before an edit; a release stays valid only for a hold that is
        exactly the same now (same type, tier and reason, which carries the amounts).
        """
        assessment = await run_step(
            ApprovalActivities.assess_holds,
            HoldRequest(order=self._order, validated=validated),
            summary="assess holds: amount, credit, price book, address, review",
        )
        self.holds = carry_over(earlier, assessment.holds)
        self.approvers = assessment.approvers

    def check_approve(self, decision: ApprovalDecision) -> list[HoldType]:
        """Validator: raise the refusal the approver sees; return what would be released."""
        if not self.holds:
            raise refused(CommandRefused("the order has no holds to approve"))
        if not self.is_open and decision.hold is None:
            done = ", ".join(f"{h.type.value} released by {h.released_by}" for h in self.holds)
            raise refused(CommandRefused(f"already decided: {done}"))
        try:
            return check_approval(self.holds, self.approvers, decision, self._order.submitted_by)
        except CommandRefused as error:
            raise refused(error) from None

    def approve(self, decision: ApprovalDecision) -> list[HoldType]:
        """Release the holds the decision covers."""
        types = self.check_approve(decision)
        self.holds = release(self.holds, types, decision.by, workflow.now(), decision.note)
        metrics.holds_released([h for h in self.holds if h.type in types])
        return types

    def check_reject(self, decision: RejectionDecision) -> None:
        """Validator for a rejection (a second one is refused by the stage: STOPPING)."""
        try:
            check_rejection(self.holds, self.approvers, decision, self._order.submitted_by)
        except CommandRefused as error:
            raise refused(error) from None

    async def escalate(self, level: int) -> None:
        """Move every open hold up to the director and tell them."""
        self.holds = escalate(self.holds)
        self.escalated = True
        self.approvers = await run_step(
            ApprovalActivities.load_approvers, summary="reload approvers"
        )
        await self.notify(
            "escalated",
            Tier.DIRECTOR.value,
            level,
            f"order {self._order.order_id} waited too long for approval",
        )

    async def notify(self, kind: NoticeKind, recipient: str, level: int, message: str) -> None:
        """Tell a person or a tier; once per (order, kind, level)."""
        await run_step(
            ApprovalActivities.notify,
            Notice(
                order_id=self._order.order_id,
                recipient=recipient,
                kind=kind,
                message=message,
                key=f"{self._order.order_id}/notify/{kind}/{level}",
            ),
            summary=f"notify {recipient}: {kind}",
        )
