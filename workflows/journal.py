"""The order's journal: status, audit trail, search attributes, SLA waits, compensation log,
and the details an operator reads on the order's page in the Temporal UI."""

import asyncio
import contextlib
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.approvals import ApprovalActivities
    from activities.intake import IntakeActivities
    from activities.inventory import InventoryActivities
    from activities.payments import PaymentActivities
    from activities.shipping import ShippingActivities
    from domain.commands import CancelRequest
    from domain.details import current_details
    from domain.holds import Notice, NoticeKind, RejectionDecision
    from domain.order import Order
    from domain.stages import Stage
    from domain.state import AuditEntry, OrderState
    from domain.statuses import OrderStatus
    from domain.steps import StatusChange
    from workflows import metrics, search
    from workflows.approval_gate import ApprovalGate
    from workflows.parcels import Parcels
    from workflows.steps import BusinessFailure, run_step


T = TypeVar("T")


class OrderCancelled(Exception):
    """Raised inside the workflow when a cancel request is honoured between steps."""


class OrderJournal:
    """What every part of the order workflow shares; OrderWorkflow fills these in."""

    _order: Order
    _state: OrderState
    _cancel: CancelRequest | None
    _rejection: RejectionDecision | None
    _compensations: list[str]
    _gate: ApprovalGate
    _parcels: Parcels
    _where: Stage
    _waiting_for: str | None = None
    _timer: str | None = None
    _since: datetime | None = None
    _entered: datetime | None = None
    """When the current status was entered in this run (None: before this run)."""

    @property
    def order_id(self) -> str:
        return self._order.order_id

    @property
    def _stage(self) -> Stage:
        """Where the workflow is (`domain.stages`); every change shows in the UI's details."""
        return self._where

    @_stage.setter
    def _stage(self, stage: Stage) -> None:
        self._where = stage
        self.show()

    @property
    def stopping(self) -> bool:
        """A cancel or a rejection was accepted: the order stops at the next step boundary."""
        return self._cancel is not None or self._rejection is not None

    async def wait(
        self, condition: Any, timeout: timedelta | None, *, summary: str, waiting_for: str
    ) -> bool:
        """Wait for `condition` or a stop; False when the SLA timer fired first.

        `summary` names the SLA timer (what happens when it fires); `waiting_for` says what
        and whom the order waits for. Both are metadata for the UI: no command changes.
        """
        self.waiting(waiting_for, summary if timeout is not None else None)
        try:
            await workflow.wait_condition(
                lambda: condition() or self.stopping,
                timeout=timeout,
                timeout_summary=summary if timeout is not None else None,
            )
        except TimeoutError:
            return False
        self.checkpoint()
        return True

    def waiting(self, what: str | None, timer: str | None = None) -> None:
        """What the order waits for now, and its SLA timer; None: nobody, orderflow works."""
        if what != self._waiting_for or self._since is None:
            self._since = workflow.now()
        self._waiting_for, self._timer = what, timer
        self.show()

    def show(self) -> None:
        """Keep the UI's current details in step with the order (text: domain.details)."""
        workflow.set_current_details(
            current_details(
                self._state.status,
                self._where.value,
                self._waiting_for,
                self._since or workflow.now(),
                timer=self._timer,
                escalation_level=self._state.escalation_level,
                reason=self._state.reason,
            )
        )

    async def unless_cancelled(self, step: Coroutine[Any, Any, T]) -> T:
        """Run a step that may retry for long (carrier booking) but give way to a cancel.

        The activity must be started with WAIT_CANCELLATION_COMPLETED, so that whatever its
        last attempt did is finished before the compensations (which undo it) run.
        """
        task = asyncio.ensure_future(step)
        await workflow.wait_condition(lambda: task.done() or self.stopping)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ActivityError):
                await task
            self.checkpoint()
        return task.result()

    def checkpoint(self) -> None:
        """Honour an accepted cancel or rejection between steps.

        Both are accepted only before anything ships (the stage table), so once accepted
        they always stop the order: there is no state in which a stop is recorded but ignored.
        """
        if self._cancel is not None:
            raise OrderCancelled()
        if self._rejection is not None:
            raise BusinessFailure(
                "Rejected", f"rejected by {self._rejection.by}: {self._rejection.reason}"
            )

    def register(self, compensation: str) -> None:
        """Record the undo of a step before the step runs: a crash mid-step is still undone."""
        self._compensations.append(compensation)

    async def compensate(self) -> None:
        """Undo what the order holds, in reverse order, each step once.

        Parcels reported shipped after the stop was accepted are booked as goods out first
        (before their stock could be released), and again after each step for late arrivals.
        """
        order_id = self._order.order_id
        for name in reversed(self._compensations):
            await self._parcels.book_late_notices()
            if name == "void_labels":
                await run_step(ShippingActivities.void_labels, order_id, summary="void labels")
                self._parcels.labels_voided = True
            elif name == "release_inventory":
                await run_step(
                    InventoryActivities.release_inventory, order_id, summary="release held stock"
                )
            elif name == "void_authorization" and self._state.payment is not None:
                await run_step(
                    PaymentActivities.void_authorization,
                    self._state.payment,
                    summary="void payment authorisation",
                )
            self._state.events.append(self._entry(f"compensated: {name}"))
            metrics.compensated(name)
        self._compensations.clear()
        await self._parcels.book_late_notices()

    async def exception(self, step: str, why: str, *, actor: str = "orderflow") -> None:
        """Something only a person can settle: audit it and tell operations, once per step."""
        await self.record(step, why, actor=actor)
        await self.tell_operations(step, why)

    async def tell_operations(self, step: str, why: str, kind: NoticeKind = "exception") -> None:
        """Notify operations (the table, and e-mail where configured), once per step."""
        await run_step(
            ApprovalActivities.notify,
            Notice(
                order_id=self._order.order_id,
                recipient="operations",
                kind=kind,
                message=f"order {self._order.order_id}: {why}",
                key=f"{self._order.order_id}/notify/{step}",
            ),
            summary=f"tell operations: {step}",
        )

    async def escalate(self, why: str) -> None:
        """An SLA timer fired: raise the escalation level and record the breach."""
        self._state.escalation_level += 1
        metrics.escalated(self._where.value)
        await self.record(f"escalation-{self._state.escalation_level}", f"SLA breached: {why}")
        self.upsert_search()
        self.show()

    async def move(
        self, status: OrderStatus, why: str, *, step: str, actor: str = "orderflow"
    ) -> None:
        """Change status and write it to the read model (idempotent by step)."""
        self.note(status, why, actor=actor)
        await self.record(step, why, actor=actor, append=False)

    async def record(
        self, step: str, why: str, *, actor: str = "orderflow", append: bool = True
    ) -> None:
        """Write the current status with an audit line to the read model, once per step."""
        if append:
            self._state.events.append(self._entry(why, actor=actor))
        await run_step(
            IntakeActivities.record_status,
            StatusChange(
                order_id=self._order.order_id,
                step=step,
                status=self._state.status,
                actor=actor,
                reason=why,
                escalation_level=self._state.escalation_level,
            ),
            summary=f"record {self._state.status.value}: {step}",
        )

    def note(self, status: OrderStatus, why: str, *, actor: str = "orderflow") -> None:
        """Change status in the workflow (the read model is written by the step itself)."""
        self._measure(status)
        self._state.status = status
        if status.is_final:
            self._state.reason = why
        self._state.events.append(self._entry(why, actor=actor))
        self.upsert_search()
        self._since = None  # a new status: nothing waited for yet, since now
        self.waiting(None)

    def _measure(self, status: OrderStatus) -> None:
        """Metrics of a status change (workflows.metrics): no command, skipped on replay."""
        now, info = workflow.now(), workflow.info()
        first_run = info.continued_run_id is None
        reached_before = any(e.status == status for e in self._state.events)
        metrics.status_changed(
            self._state.status,
            status,
            waited=now - self._entered if self._entered is not None else None,
            since_placed=(
                now - info.workflow_start_time if first_run and not reached_before else None
            ),
        )
        self._entered = now

    def _entry(self, what: str, *, actor: str = "orderflow") -> AuditEntry:
        return AuditEntry(at=workflow.now(), status=self._state.status, actor=actor, what=what)

    def upsert_search(self) -> None:
        awaiting = self._state.status == OrderStatus.AWAITING_APPROVAL
        workflow.upsert_search_attributes(
            search.order_updates(
                self._state.status.value,
                self._state.escalation_level,
                self._gate.awaiting if awaiting else None,
                self._state.total,
            )
        )
