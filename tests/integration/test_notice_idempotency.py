"""A step retried (or raced by a second attempt) tells the customer once: one notification and
one e-mail per event, written in the step's own transaction."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from activities.customer_notices import CustomerMail, reach_customers
from activities.db.models import Notification, OutboxEmail, ShipmentRecord
from activities.intake import IntakeActivities
from activities.inventory import InventoryActivities
from activities.shipping import ShippingActivities
from domain.geography import locate
from domain.order import Order
from domain.policy import ApprovalThresholds
from domain.routing import DEFAULT_RULES
from domain.statuses import FulfilmentPolicy, OrderStatus
from domain.steps import ReserveRequest, ShipmentEvent, StatusChange
from starter.read_model import customer_notices
from tests.factories import make_order, new_customer, new_sku
from tests.integration.conftest import run_retried
from workers.mail_loop import mail_config
from workers.settings import Settings
from workers.worker import sla_policy


@pytest.fixture
def mail_on(engine: Engine) -> Iterator[None]:
    """This engine's customers are mailed (the worker says so when SMTP is configured)."""
    settings = Settings(smtp_host="127.0.0.1", web_secret="test")
    reach_customers(engine, CustomerMail(mail_config(settings), timedelta(days=14)))
    yield
    reach_customers(engine, CustomerMail())


def placed(engine: Engine, email: str | None) -> Order:
    """A validated order (its read-model row written) of a customer of its own."""
    order = make_order(
        {new_sku(engine, {"AMS": 10}): 2}, customer=new_customer(engine, email=email)
    )
    settings = Settings()
    intake = IntakeActivities(
        engine,
        sla_policy(settings),
        ApprovalThresholds(manager=settings.approval_manager_threshold, director=10**9),
        1000,
        timedelta(hours=24),
    )
    run_retried(intake.validate_order, order)
    return order


def told(engine: Engine, order_id: str) -> tuple[list[str], list[str]]:
    """(kinds of the order's notifications, addresses of its e-mails)."""
    with Session(engine) as session:
        kinds = session.scalars(
            select(Notification.kind)
            .where(Notification.order_id == order_id)
            .order_by(Notification.id)
        ).all()
        to = session.scalars(
            select(OutboxEmail.to_address)
            .where(OutboxEmail.order_id == order_id)
            .order_by(OutboxEmail.id)
        ).all()
    return list(kinds), list(to)


def booked_parcel(engine: Engine, order_id: str) -> str:
    shipment_id = f"{order_id}-AMS"
    with Session(engine) as session, session.begin():
        session.add(
            ShipmentRecord(
                shipment_id=shipment_id,
                order_id=order_id,
                warehouse="AMS",
                state="BOOKED",
                carrier="PARCELCO",
                service="standard",
                tracking_number="PC0000000042",
                detail={"lines": [{"sku": "KB-100", "quantity": 2}]},
            )
        )
    return shipment_id


@pytest.mark.usefixtures("mail_on")
def test_steps_run_twice_tell_the_customer_once(engine: Engine) -> None:
    order = placed(engine, "twice@example.com")
    location = locate("NL", "1016 GV")
    assert location is not None
    reserve = ReserveRequest(
        order=order,
        destination=location,
        promised_days=5,
        policy=FulfilmentPolicy.SHIP_WHEN_AVAILABLE,
    )
    inventory = InventoryActivities(engine, DEFAULT_RULES)
    run_retried(inventory.reserve_inventory, reserve)
    run_retried(inventory.reserve_inventory, reserve)
    assert told(engine, order.order_id) == (["order_confirmed"], ["twice@example.com"])

    shipping = ShippingActivities(engine, [])
    parcel = booked_parcel(engine, order.order_id)
    for state in ("SHIPPED", "SHIPPED", "DELIVERED", "DELIVERED", "SHIPPED"):
        event = ShipmentEvent(
            order_id=order.order_id, shipment_id=parcel, warehouse="AMS", state=state
        )
        run_retried(shipping.record_shipment_progress, event)
    kinds, to = told(engine, order.order_id)
    assert kinds == ["order_confirmed", "shipped", "delivered"]
    assert to == ["twice@example.com"] * 3
    assert [n["state"] for n in customer_notices(engine, order.order_id)] == ["queued"] * 3


@pytest.mark.usefixtures("mail_on")
def test_two_attempts_at_once_tell_the_customer_once(engine: Engine) -> None:
    order = placed(engine, "race@example.com")
    shipping = ShippingActivities(engine, [])
    parcel = booked_parcel(engine, order.order_id)
    event = ShipmentEvent(
        order_id=order.order_id, shipment_id=parcel, warehouse="AMS", state="SHIPPED"
    )
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: run_retried(shipping.record_shipment_progress, event), range(4)))
    assert told(engine, order.order_id) == (["shipped"], ["race@example.com"])


@pytest.mark.usefixtures("mail_on")
def test_a_customer_without_an_address_is_told_in_the_table_and_log(engine: Engine) -> None:
    order = placed(engine, None)
    intake = IntakeActivities(
        engine,
        sla_policy(Settings()),
        ApprovalThresholds(manager=10**9, director=10**9),
        1000,
        timedelta(hours=24),
    )
    closed = StatusChange(
        order_id=order.order_id,
        step="closed",
        status=OrderStatus.CANCELLED,
        actor="customer-service",
        reason="changed my mind",
    )
    assert run_retried(intake.record_status, closed) is True
    assert run_retried(intake.record_status, closed) is False
    assert told(engine, order.order_id) == (["cancelled"], [])
    [notice] = customer_notices(engine, order.order_id)
    assert (notice["event"], notice["to"], notice["state"]) == (
        "cancelled",
        None,
        "not mailed: no address",
    )
    assert notice["subject"] == f"Order {order.order_id} cancelled"
