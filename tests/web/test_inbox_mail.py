"""E-mail through a real SMTP server (aiosmtpd): a hold mails its approvers a signed one-time
link; the link approves once, as that approver; an expired, forged or reused link is refused."""

import re
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import OutboxEmail
from domain.links import claim_for, sign
from domain.statuses import OrderStatus
from starter import orders
from starter.web.accounts import issue_token
from starter.web.waiting import now
from tests.factories import make_order, new_sku
from tests.web.conftest import Mailbox, held_order
from workers.mail_loop import mail_delivery
from workers.settings import Settings
from workers.worker import build_worker

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def with_mail(settings: Settings, smtp: Mailbox, **extra: object) -> Settings:
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, **extra})


def link_in(body: str, base: str) -> str:
    found = re.search(rf"{re.escape(base)}(/link/\S+)", body)
    assert found, body
    return found.group(1)


async def test_a_held_order_mails_a_link_that_approves_once(
    client: Client, web_settings: Settings, engine: Engine, inbox: str, smtp: Mailbox
) -> None:
    settings = with_mail(web_settings, smtp)
    issue_token(engine, "mia.manager", "mia@example.com")
    order = held_order(engine)
    async with build_worker(client, settings, engine), mail_delivery(settings, engine, 0.1):
        await orders.place(client, settings, order)
        mail = await smtp.wait_for("mia@example.com", f"Order {order.order_id} needs")
        body = mail.get_content()
        assert "AMOUNT" in body and "6000.00" in body
        link = link_in(body, inbox)

        async with httpx.AsyncClient(base_url=inbox) as http:
            shown = await http.get(link)
            assert shown.status_code == 200 and 'id="approve"' in shown.text
            unreasoned = await http.post(link, data={"decision": "reject", "text": " "})
            assert unreasoned.status_code == 400  # nothing sent, the link still works
            done = await http.post(link, data={"decision": "approve", "text": "by e-mail"})
            assert done.status_code == 200
            assert f"{order.order_id}: released AMOUNT" in done.text
            state = await orders.wait_for(client, order.order_id, OrderStatus.AWAITING_SHIPMENT, 30)
            assert state.holds[0].released_by == "mia.manager"
            assert state.holds[0].note == "by e-mail"

            again = await http.get(link)
            assert again.status_code == 410 and "already used" in again.text
            replay = await http.post(link, data={"decision": "reject", "text": "changed my mind"})
            assert replay.status_code == 410 and "already used" in replay.text

            secret = settings.signing_secret()
            old = claim_for(
                "link",
                "mia.manager",
                now() - timedelta(days=3),
                timedelta(days=2),
                order=order.order_id,
            )
            expired = await http.get(f"/link/{sign(secret, old)}")
            assert expired.status_code == 410 and "expired" in expired.text
            token = link.removeprefix("/link/")
            forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
            refused = await http.get(f"/link/{forged}")
            assert refused.status_code == 410 and "not issued by this orderflow" in refused.text
            signin = await http.post(f"/link/{token}", data={"decision": "approve"})
            assert signin.status_code == 410
    with Session(engine) as session:
        sent = session.scalar(
            select(func.count()).where(
                OutboxEmail.order_id == order.order_id,
                OutboxEmail.sent_at.is_not(None),
                OutboxEmail.notification_key.not_like("%:customer:%"),  # the buyer's are theirs
            )
        )
    assert sent == 1  # one approver with an address, one e-mail


@pytest.mark.settings(approval_escalate_after="2s")
async def test_an_escalation_mails_the_director(
    client: Client, web_settings: Settings, engine: Engine, inbox: str, smtp: Mailbox
) -> None:
    settings = with_mail(web_settings, smtp, operations_email="ops@example.com")
    issue_token(engine, "mia.manager", "mia@example.com")
    issue_token(engine, "dirk.director", "dirk@example.com")
    order = held_order(engine)
    async with build_worker(client, settings, engine), mail_delivery(settings, engine, 0.1):
        await orders.place(client, settings, order)
        await smtp.wait_for("mia@example.com", f"Order {order.order_id} needs")
        mail = await smtp.wait_for("dirk@example.com", f"Escalated: order {order.order_id}")
        link = link_in(mail.get_content(), inbox)
        async with httpx.AsyncClient(base_url=inbox) as http:
            done = await http.post(link, data={"decision": "reject", "text": "too risky"})
            assert "rejected" in done.text.lower(), done.text
        state = await orders.wait_for(client, order.order_id, OrderStatus.REJECTED, 30)
        assert state.status == OrderStatus.REJECTED


@pytest.mark.settings(carriers_down="PARCELCO,SWIFTPOST,GLOBEX", booking_attempts=2)
async def test_a_failed_order_mails_operations(
    client: Client, web_settings: Settings, engine: Engine, smtp: Mailbox
) -> None:
    settings = with_mail(web_settings, smtp, operations_email="ops@example.com")
    order = make_order({new_sku(engine, {"AMS": 5}): 2})
    async with build_worker(client, settings, engine), mail_delivery(settings, engine, 0.1):
        await orders.place(client, settings, order)
        mail = await smtp.wait_for("ops@example.com", f"Order {order.order_id} failed")
        state = await orders.state_of(client, order.order_id)
    assert state.status == OrderStatus.FAILED
    assert "FAILED: NoCarrierAvailable" in mail.get_content()
    assert f"/orders/{order.order_id}" in mail.get_content()


async def test_an_address_the_server_refuses_does_not_hold_up_the_others(
    client: Client, web_settings: Settings, engine: Engine, smtp: Mailbox
) -> None:
    settings = with_mail(web_settings, smtp)
    smtp.unknown.add("left.the.company@example.com")
    issue_token(engine, "j.buyer", "left.the.company@example.com")  # mailed first (by user id)
    issue_token(engine, "mia.manager", "mia@example.com")
    order = held_order(engine)
    async with build_worker(client, settings, engine), mail_delivery(settings, engine, 0.1):
        await orders.place(client, settings, order)
        await smtp.wait_for("mia@example.com", f"Order {order.order_id} needs")
    with Session(engine) as session:
        bounced = session.scalars(
            select(OutboxEmail).where(
                OutboxEmail.order_id == order.order_id,
                OutboxEmail.to_address == "left.the.company@example.com",
            )
        ).one()
    assert bounced.sent_at is None and bounced.claimed_until is None
    assert bounced.refused == "550 5.1.1 no such mailbox"
