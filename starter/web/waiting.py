"""What waits for an approver: orders on hold for a tier they may release, with the facts."""

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.credit import exposure
from activities.db.models import Customer, OrderRecord
from domain.holds import Hold
from domain.sla import format_duration
from domain.state import OrderState
from domain.statuses import OrderStatus, PaymentTerms
from starter.orders import state_of
from starter.web.accounts import ApproverView
from workers.settings import Settings
from workflows import search


@dataclass
class WaitingOrder:
    """One order as an approver needs to see it to decide."""

    state: OrderState
    customer_name: str
    credit_limit: Decimal | None
    exposure: Decimal
    """The customer's other open orders (at their gross estimates) and unpaid invoices (gross)
    less credit notes: what the credit check adds this order's gross estimate to."""
    waiting_since: datetime | None
    due: datetime | None
    gross_estimate: Decimal | None = None
    """Goods, the dearest shipping and tax, as validated (None: no estimate recorded)."""
    mine: list[Hold] = field(default_factory=list)
    others: list[Hold] = field(default_factory=list)

    @property
    def order_id(self) -> str:
        return self.state.order_id

    def time_left(self, now: datetime) -> str:
        """SLA time left before the next escalation (or expiry), as "3h 20m"; "overdue"."""
        if self.due is None:
            return "no SLA"
        left = self.due - now
        if left <= timedelta(0):
            return "overdue"
        return format_duration(timedelta(seconds=int(left.total_seconds())))


def facts(
    engine: Engine, settings: Settings, state: OrderState, who: ApproverView | None
) -> WaitingOrder:
    """The facts of one held order (customer, its gross estimate, the customer's credit
    exposure, holds split by who may release them, SLA due time from the order's audit trail
    and the configured durations)."""
    with Session(engine) as session:
        customer = session.get(Customer, state.customer_id)
        owed = exposure(session, state.customer_id, state.order_id)
        record = session.get(OrderRecord, state.order_id)
    since = next(
        (e.at for e in reversed(state.events) if e.status == OrderStatus.AWAITING_APPROVAL), None
    )
    limit = (
        settings.approval_escalate_after
        if state.escalation_level == 0
        else settings.approval_expire_after
    )
    open_holds = [h for h in state.holds if h.is_open]
    mine = [h for h in open_holds if who is not None and who.may_release(h.tier)]
    return WaitingOrder(
        state=state,
        customer_name=customer.name if customer is not None else state.customer_id,
        credit_limit=(
            customer.credit_limit
            if customer is not None and customer.payment_terms == PaymentTerms.NET_30.value
            else None  # prepaid: no credit line to compare with
        ),
        exposure=owed,
        gross_estimate=record.gross_estimate if record is not None else None,
        waiting_since=since,
        # The order's own SLA (snapshotted when it was validated); older workers' orders: the
        # configured one from when it started waiting.
        due=state.approval_due or (since + limit if since is not None else None),
        mine=mine,
        others=[h for h in open_holds if h not in mine],
    )


async def waiting_for(
    client: Client, engine: Engine, settings: Settings, who: ApproverView
) -> list[WaitingOrder]:
    """Orders of this deployment's task queue awaiting approval with at least one open hold
    `who` may release, oldest first. Visibility finds them; each order's own query gives
    its holds (an order whose worker does not answer in time is left out this time)."""
    query = (
        "WorkflowType = 'OrderWorkflow' AND ExecutionStatus = 'Running' "
        f"AND OrderStatus = 'AWAITING_APPROVAL' AND TaskQueue = '{settings.task_queue}'"
    )
    ids = [execution.id async for execution in client.list_workflows(query, limit=500)]
    answers = await asyncio.gather(
        *(asyncio.wait_for(_state(client, wid), ANSWER_WITHIN) for wid in ids),
        return_exceptions=True,
    )
    result = []
    for state in answers:
        if not isinstance(state, OrderState) or state.status != OrderStatus.AWAITING_APPROVAL:
            continue
        order = await asyncio.to_thread(facts, engine, settings, state, who)
        if order.mine:
            result.append(order)
    result.sort(key=lambda o: o.waiting_since or now())
    return result


ANSWER_WITHIN = 10.0
"""Seconds an order has to answer its query before the inbox page is shown without it."""


async def _state(client: Client, workflow_id: str) -> OrderState:
    return await state_of(client, workflow_id.removeprefix(search.ORDER_PREFIX))


def now() -> datetime:
    return datetime.now(UTC)
