"""Approval activities on SQLite and PostgreSQL: hold assessment, approvers, notifications."""

import random
import uuid
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from activities.approvals import ApprovalActivities
from activities.db.models import Notification
from activities.intake import IntakeActivities
from activities.payments import PaymentActivities, SimulatedGateway
from domain.holds import HoldAssessment, HoldRequest, HoldType, Notice, Tier
from domain.order import Order
from domain.policy import ApprovalThresholds, SlaPolicy
from domain.steps import PaymentRequest
from tests.factories import ADDRESSES, make_order, net30_customer, new_sku

THRESHOLDS = ApprovalThresholds(manager=Decimal("5000"), director=Decimal("50000"))
HOUR = timedelta(hours=1)
SLA = SlaPolicy(
    approval_escalate_after=HOUR,
    approval_expire_after=HOUR,
    backorder_expire_after=HOUR,
    ship_escalate_after=HOUR,
    delivery_grace=HOUR,
    return_window=HOUR,
    refund_escalate_after=HOUR,
)


def assess(engine: Engine, order: Order) -> HoldAssessment:
    """Validate the order (as the workflow does first), then assess its holds."""
    env = ActivityEnvironment()
    intake = IntakeActivities(engine, SLA, THRESHOLDS, 1000, timedelta(minutes=10))
    validated = env.run(intake.validate_order, order)
    request = HoldRequest(order=order, validated=validated)
    return env.run(ApprovalActivities(engine).assess_holds, request)


def holds_of(assessment: HoldAssessment) -> dict[HoldType, Tier]:
    return {hold.type: hold.tier for hold in assessment.holds}


def test_small_order_at_list_price_has_no_holds(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 10})
    assessment = assess(engine, make_order({sku: 2}))
    assert assessment.holds == []
    assert assessment.approvers["dirk.director"] == [Tier.DIRECTOR]
    assert assessment.approvers["mia.manager"] == [Tier.MANAGER]


def test_high_total_needs_a_manager(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 10})
    assessment = assess(engine, make_order({sku: 600}))  # 6000.00 > 5000
    assert holds_of(assessment) == {HoldType.AMOUNT: Tier.MANAGER}


def test_net30_over_its_credit_limit_is_a_credit_hold(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 10})
    assessment = assess(engine, make_order({sku: 250}, customer="C-SMALL"))  # 2500 > 2000
    assert holds_of(assessment) == {HoldType.CREDIT: Tier.FINANCE}
    assert "credit limit 2000" in assessment.holds[0].reason


def test_exposure_counts_the_customers_other_open_orders(engine: Engine) -> None:
    customer = net30_customer(engine, "2000")
    sku = new_sku(engine, {"AMS": 10})
    first = assess(engine, make_order({sku: 150}, customer=customer))  # 1500
    assert first.holds == []
    assert first.exposure == 0
    second = assess(engine, make_order({sku: 100}, customer=customer))  # 1500 + 1000
    assert holds_of(second) == {HoldType.CREDIT: Tier.FINANCE}
    assert second.exposure == Decimal("1500")


def test_price_below_list_is_a_price_hold(engine: Engine) -> None:
    assessment = assess(engine, make_order({"KB-100": 1}, price="40.00"))  # list 49.90
    assert holds_of(assessment) == {HoldType.PRICE: Tier.MANAGER}
    assert assessment.holds[0].reason == "KB-100: 40.00 below the list price 49.90"


def test_price_above_list_without_a_price_book_is_fine(engine: Engine) -> None:
    assert assess(engine, make_order({"MS-200": 1}, price="25.00")).holds == []


def test_price_book_is_respected(engine: Engine) -> None:
    at_book = assess(engine, make_order({"MN-27": 2}, customer="C-ACME", price="229.00"))
    assert at_book.holds == []
    off_book = assess(engine, make_order({"MN-27": 2}, customer="C-ACME", price="249.00"))
    assert holds_of(off_book) == {HoldType.PRICE: Tier.MANAGER}
    assert off_book.holds[0].reason == "MN-27: 249.00 differs from the price book 229.00"


def test_address_without_house_number_and_manual_review_are_holds(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 10})
    order = make_order(
        {sku: 1},
        ship_to={**ADDRESSES["NL"], "street": "Prinsengracht"},
        manual_review=True,
    )
    assert holds_of(assess(engine, order)) == {
        HoldType.ADDRESS: Tier.REVIEW,
        HoldType.MANUAL_REVIEW: Tier.REVIEW,
    }


def test_load_approvers_lists_active_approvers(engine: Engine) -> None:
    approvers = ActivityEnvironment().run(ApprovalActivities(engine).load_approvers)
    assert approvers["fiona.finance"] == [Tier.FINANCE]
    assert approvers["rob.review"] == [Tier.REVIEW]
    assert "nobody" not in approvers


def test_notify_writes_once_per_key(engine: Engine) -> None:
    order_id = f"t-{uuid.uuid4().hex[:10]}"
    notice = Notice(
        order_id=order_id,
        recipient="manager",
        kind="approval_needed",
        message=f"order {order_id} needs a manager",
        key=f"{order_id}/notify/approval_needed",
    )
    activities = ApprovalActivities(engine)
    env = ActivityEnvironment()
    env.run(activities.notify, notice)
    env.run(activities.notify, notice)
    with Session(engine) as session:
        rows = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.order_id == order_id)
        )
    assert rows == 1


def test_net30_authorisation_over_the_limit_no_longer_fails(engine: Engine) -> None:
    sku = new_sku(engine, {"AMS": 10})
    order = make_order({sku: 300}, customer="C-SMALL")  # 3000 > 2000: released as a CREDIT hold
    validated = ActivityEnvironment().run(
        IntakeActivities(engine, SLA, THRESHOLDS, 1000, timedelta(minutes=10)).validate_order,
        order,
    )
    payments = PaymentActivities(engine, SimulatedGateway(latency_ms=(0, 0), rng=random.Random(1)))
    request = PaymentRequest(
        order_id=order.order_id,
        customer=validated.customer,
        amount=order.total,
        currency=order.currency,
    )
    authorization = ActivityEnvironment().run(payments.authorize_payment, request)
    assert authorization.reference == f"credit_{order.order_id}"
