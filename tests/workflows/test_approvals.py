"""Approval holds and SLA escalation on the real dev server: approvers decide, timers escalate."""

import asyncio

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import Notification, OrderEvent
from domain.holds import ApprovalDecision, HoldType, RejectionDecision
from domain.state import OrderState
from domain.statuses import OrderStatus
from starter import orders
from starter.orders import UserError
from tests.factories import make_order, new_sku, payments_of, stock_of
from workers.settings import Settings
from workflows import search


def big_order(engine: Engine, **extra: object) -> tuple[str, object]:
    sku = new_sku(engine, {"AMS": 20}, price="1000.00")
    return sku, make_order({sku: 6}, price="1000.00", **extra)  # 6000 > manager threshold


async def test_the_right_approver_releases_the_hold(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku, order = big_order(engine)
    await orders.place(client, worker, order)
    waiting = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    assert [(h.type, h.tier.value) for h in waiting.holds] == [(HoldType.AMOUNT, "manager")]
    assert stock_of(engine, sku) == {"AMS": (20, 0)}  # nothing is held before approval

    answer = await orders.approve(
        client, order.order_id, ApprovalDecision(by="mia.manager", note="known customer")
    )
    assert answer == "released AMOUNT"
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.status == OrderStatus.AWAITING_SHIPMENT
    assert state.holds[0].released_by == "mia.manager"
    with Session(engine) as session:
        event = session.scalars(
            select(OrderEvent).where(
                OrderEvent.order_id == order.order_id, OrderEvent.actor == "mia.manager"
            )
        ).one()
        assert event.reason == "AMOUNT released: known customer"


async def test_a_signalled_approval_is_audited_like_the_update(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """Fire-and-forget senders (an approval e-mail link, a bot) use the signal."""
    _, order = big_order(engine, submitted_by="j.buyer")
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    handle = client.get_workflow_handle(search.workflow_id(order.order_id))
    # nonsense first: the submitter, then a stranger; both are dropped and change nothing
    await handle.signal("approve_signal", ApprovalDecision(by="j.buyer"))
    await handle.signal("approve_signal", ApprovalDecision(by="someone"))
    await handle.signal("approve_signal", ApprovalDecision(by="mia.manager", note="via e-mail"))
    # a late duplicate is harmless
    await handle.signal("approve_signal", ApprovalDecision(by="mia.manager", note="via e-mail"))
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.holds[0].released_by == "mia.manager"
    with Session(engine) as session:
        actors = session.scalars(
            select(OrderEvent.actor).where(
                OrderEvent.order_id == order.order_id,
                OrderEvent.actor.in_(["j.buyer", "someone", "mia.manager"]),
            )
        ).all()
        reason = session.scalars(
            select(OrderEvent.reason).where(
                OrderEvent.order_id == order.order_id, OrderEvent.actor == "mia.manager"
            )
        ).one()
    assert actors == ["mia.manager"]
    assert reason == "AMOUNT released: via e-mail"


async def test_wrong_approver_and_self_approval_are_refused_and_change_nothing(
    client: Client, worker: Settings, engine: Engine
) -> None:
    _, order = big_order(engine, submitted_by="j.buyer")
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    refusals = {
        "rob.review": "rob.review is not an approver for this tier (needs manager)",
        "someone": "someone is not an approver",
        "j.buyer": "the submitter cannot approve their own order",
    }
    for who, message in refusals.items():
        with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
            await orders.approve(client, order.order_id, ApprovalDecision(by=who))
    with pytest.raises(UserError, match="no such hold: PRICE"):
        await orders.approve(
            client, order.order_id, ApprovalDecision(by="mia.manager", hold=HoldType.PRICE)
        )
    state = await orders.state_of(client, order.order_id)
    assert state.status == OrderStatus.AWAITING_APPROVAL and state.holds[0].is_open

    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    with pytest.raises(UserError, match=r"already decided: AMOUNT released by mia\.manager"):
        await orders.approve(client, order.order_id, ApprovalDecision(by="dirk.director"))


async def test_an_order_with_two_holds_waits_for_both(
    client: Client, worker: Settings, engine: Engine
) -> None:
    _, order = big_order(engine, manual_review=True)
    await orders.place(client, worker, order)
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    assert {h.type for h in state.holds} == {HoldType.AMOUNT, HoldType.MANUAL_REVIEW}

    answer = await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    assert answer == "released AMOUNT; still on hold: MANUAL_REVIEW"
    assert (await orders.state_of(client, order.order_id)).status == OrderStatus.AWAITING_APPROVAL
    await orders.approve(client, order.order_id, ApprovalDecision(by="rob.review"))
    state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert state.status == OrderStatus.AWAITING_SHIPMENT


async def test_rejection_ends_the_order_without_taking_money(
    client: Client, worker: Settings, engine: Engine
) -> None:
    _, order = big_order(engine)
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    await orders.reject(
        client,
        order.order_id,
        RejectionDecision(by="dirk.director", reason="no budget this quarter"),
    )
    state = await orders.wait_for(client, order.order_id, OrderStatus.REJECTED, 30)
    assert "rejected by dirk.director: no budget this quarter" in (state.reason or "")
    assert payments_of(engine, order.order_id) == {}
    # the rejection's audit line names the approver, in the workflow and in the read model
    assert [e.actor for e in state.events if e.status == OrderStatus.REJECTED] == ["dirk.director"]
    with Session(engine) as session:
        actors = session.scalars(
            select(OrderEvent.actor).where(
                OrderEvent.order_id == order.order_id, OrderEvent.status == "REJECTED"
            )
        ).all()
    assert actors == ["dirk.director"]


@pytest.mark.settings(approval_escalate_after="1s", approval_expire_after="3s")
async def test_unanswered_approval_escalates_once_then_auto_rejects(
    client: Client, worker: Settings, engine: Engine
) -> None:
    _, order = big_order(engine)
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    mine: dict[str, object] = {}
    for _ in range(50):  # visibility is updated asynchronously: give it a moment
        rows = await orders.list_orders(client, OrderStatus.AWAITING_APPROVAL, limit=10**6)
        mine = next((r for r in rows if r["order_id"] == order.order_id), {})
        if mine:
            break
        await asyncio.sleep(0.1)
    assert mine["awaiting_tier"] == "manager" and mine["escalation_level"] == 0

    state = await client.get_workflow_handle(
        search.workflow_id(order.order_id), result_type=OrderState
    ).result()
    assert state.status == OrderStatus.REJECTED
    assert state.escalation_level == 1
    assert "ApprovalExpired" in (state.reason or "")
    assert [h.tier.value for h in state.holds] == ["director"]
    with Session(engine) as session:
        steps = list(
            session.scalars(
                select(OrderEvent.step)
                .where(OrderEvent.order_id == order.order_id)
                .order_by(OrderEvent.id)
            )
        )
        kinds = list(
            session.scalars(
                select(Notification.kind)
                .where(Notification.order_id == order.order_id)
                .order_by(Notification.id)
            )
        )
    assert steps[-3:] == ["holds-0", "escalation-1", "closed"]
    assert kinds == ["approval_needed", "escalated", "auto_rejected"]


async def test_cancel_while_waiting_for_approval_leaves_nothing_held(
    client: Client, worker: Settings, engine: Engine
) -> None:
    sku, order = big_order(engine)
    await orders.place(client, worker, order)
    await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    await orders.cancel(client, order.order_id, "customer changed their mind", "cs-agent")
    state = await orders.wait_for(client, order.order_id, OrderStatus.CANCELLED, 30)
    assert state.status == OrderStatus.CANCELLED
    assert stock_of(engine, sku) == {"AMS": (20, 0)} and payments_of(engine, order.order_id) == {}


async def test_the_inbox_counts_down_the_orders_own_sla_not_todays_setting(
    client: Client, worker: Settings, engine: Engine
) -> None:
    """An order keeps the SLA it was validated with: changing the setting later (a new
    release, another inbox process) must not move the deadline the approver is shown."""
    from datetime import timedelta

    from starter.web.waiting import facts

    _, order = big_order(engine)
    await orders.place(client, worker, order)
    held = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_APPROVAL, 30)
    assert held.approval_due is not None
    since = next(e.at for e in held.events if e.status == OrderStatus.AWAITING_APPROVAL)
    assert held.approval_due - since <= worker.approval_escalate_after + timedelta(seconds=2)
    later = worker.model_copy(update={"approval_escalate_after": timedelta(hours=99)})
    assert facts(engine, later, held, None).due == held.approval_due

    await orders.approve(client, order.order_id, ApprovalDecision(by="mia.manager"))
    released = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
    assert released.approval_due is None
