"""Customers told by e-mail through a real SMTP server (aiosmtpd): one message per event with
its facts, and still one per event after a worker is SIGKILLed in the middle of a send."""

import asyncio
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from temporalio.client import Client

from activities.db.models import Notification, OrderRecord, OutboxEmail
from domain.returns import Disposition, InspectionLine, InspectionRequest, ReturnRequest
from domain.statuses import OrderStatus
from starter import orders
from starter.read_model import customer_notices
from starter.returns import inspect_return, receive_return, request_return
from tests.factories import make_order, new_customer, new_sku
from tests.web.conftest import Mailbox, free_port
from tests.worker_process import kill, start_worker, worker_env
from tests.workflows.test_order_lifecycle import ship_and_deliver
from workers.mail_loop import mail_delivery
from workers.settings import Settings
from workers.worker import build_worker


def with_mail(settings: Settings, smtp: Mailbox) -> Settings:
    return settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port})


def mailed_customer(engine: Engine, policy: str = "ship_when_available") -> tuple[str, str]:
    """A customer of the test's own, with an address no other test writes to."""
    address = f"buyer-{uuid.uuid4().hex[:8]}@example.com"
    return new_customer(engine, email=address, fulfilment_policy=policy), address


def mails_to(smtp: Mailbox, address: str) -> list[EmailMessage]:
    return [m for m in smtp.messages if m["To"] == address]


def outbox_of(engine: Engine, order_id: str) -> list[OutboxEmail]:
    with Session(engine) as session:
        return list(
            session.scalars(
                select(OutboxEmail).where(OutboxEmail.order_id == order_id).order_by(OutboxEmail.id)
            )
        )


async def test_an_order_tells_its_customer_each_step_once(
    client: Client, web_settings: Settings, engine: Engine, smtp: Mailbox
) -> None:
    settings = with_mail(web_settings, smtp)
    customer_id, address = mailed_customer(engine)
    sku = new_sku(engine, {"AMS": 10}, price="24.50")
    order = make_order({sku: 2}, customer=customer_id, price="24.50")
    oid = order.order_id
    async with build_worker(client, settings, engine), mail_delivery(settings, engine, 0.1):
        await orders.place(client, settings, order)
        confirmed = await smtp.wait_for(address, f"Order {oid} confirmed")
        await ship_and_deliver(client, oid)
        shipped = await smtp.wait_for(address, f"Order {oid} shipped")
        delivered = await smtp.wait_for(address, f"Order {oid} delivered")
        state = await orders.wait_for(client, oid, OrderStatus.COMPLETED, 30)
        rma = await request_return(client, oid, ReturnRequest(lines={sku: 1}, reason="too loud"))
        label = await smtp.wait_for(address, f"Return {rma.rma_id} for order {oid}")
        await receive_return(client, rma.rma_id)
        back = InspectionLine(sku=sku, quantity=1, disposition=Disposition.RESTOCK)
        refund = await inspect_return(client, InspectionRequest(rma_id=rma.rma_id, lines=[back]))
        refunded = await smtp.wait_for(address, f"Order {oid}: refund of {refund.amount} EUR")

    body = confirmed.get_content()
    assert f"2 x test item ({sku}) at 24.50 EUR = 49.00 EUR" in body
    assert "Goods: 49.00 EUR (before shipping and tax)" in body
    with Session(engine) as session:
        record = session.get(OrderRecord, oid)
        assert record is not None and record.gross_estimate is not None
    assert f"At most {record.gross_estimate} EUR with shipping and tax" in body
    assert f"Promised delivery: by {state.promised_date}" in body
    parcel = state.shipments[0]
    assert parcel.tracking_number and parcel.carrier
    assert parcel.tracking_number in shipped["Subject"]
    text = shipped.get_content()
    assert f"Tracking number: {parcel.tracking_number}" in text
    assert "Track it: https://" in text and parcel.tracking_number in text.split("Track it:")[1]
    assert parcel.tracking_number in delivered.get_content()
    assert rma.tracking_number and rma.tracking_number in label.get_content()
    assert f"refunded {refund.amount} EUR for return {rma.rma_id}" in refunded.get_content()

    subjects = [m["Subject"] for m in mails_to(smtp, address)]
    assert subjects == [
        f"Order {oid} confirmed",
        shipped["Subject"],
        f"Order {oid} delivered",
        label["Subject"],
        refunded["Subject"],
    ]
    ids = {m["Message-ID"] for m in mails_to(smtp, address)}
    assert len(ids) == 5
    told = customer_notices(engine, oid)
    assert [(n["event"], n["to"], n["state"]) for n in told] == [
        (event, address, "sent")
        for event in ("order_confirmed", "shipped", "delivered", "rma_opened", "refund_issued")
    ]


@pytest.mark.settings(backorder_expire_after="10d")
async def test_a_backorder_says_when_and_a_cancel_is_told(
    client: Client, web_settings: Settings, engine: Engine, smtp: Mailbox
) -> None:
    settings = with_mail(web_settings, smtp)
    customer_id, address = mailed_customer(engine, policy="ship_complete")
    sku = new_sku(engine, {"AMS": 1})
    order = make_order({sku: 3}, customer=customer_id)
    oid = order.order_id
    async with build_worker(client, settings, engine), mail_delivery(settings, engine, 0.1):
        await orders.place(client, settings, order)
        await smtp.wait_for(address, f"Order {oid} confirmed")
        backordered = await smtp.wait_for(address, f"Order {oid}: some items are backordered")
        await orders.wait_for(client, oid, OrderStatus.BACKORDERED, 30)
        await orders.cancel(client, oid, "found it cheaper", "customer-service")
        cancelled = await smtp.wait_for(address, f"Order {oid} cancelled")
    expected = (datetime.now(UTC) + timedelta(days=10)).date()
    text = backordered.get_content()
    assert f"3 x test item ({sku})" in text
    assert f"Expected by: {expected.isoformat()}" in text, text
    assert "ship your order complete" in text
    assert "Reason: found it cheaper" in cancelled.get_content()
    assert "Nothing has been charged" in cancelled.get_content()
    assert len(mails_to(smtp, address)) == 3


# --- a worker killed in the middle of a send ------------------------------------------------


@dataclass
class Hold:
    """Stop the next SMTP `stage` (RCPT, or DATA of a message whose subject has `subject`)
    for `address` until the test says go."""

    stage: str
    address: str
    subject: str = ""
    reached: threading.Event = field(default_factory=threading.Event)
    go: threading.Event = field(default_factory=threading.Event)


@dataclass
class HeldMailbox(Mailbox):
    holds: list[Hold] = field(default_factory=list)  # armed, not reached yet
    made: list[Hold] = field(default_factory=list)

    def hold(self, stage: str, address: str, subject: str = "") -> Hold:
        hold = Hold(stage, address, subject)
        self.made.append(hold)
        self.holds.append(hold)
        return hold

    def _hold(self, stage: str, addresses: list[str], subject: str = "") -> Hold | None:
        for hold in self.holds:
            if hold.stage == stage and hold.address in addresses and hold.subject in subject:
                self.holds.remove(hold)
                return hold
        return None

    async def _wait(self, hold: Hold) -> None:
        hold.reached.set()
        await asyncio.to_thread(hold.go.wait, 60)

    async def handle_RCPT(
        self, server: object, session: object, envelope: Envelope, address: str, options: object
    ) -> str:
        hold = self._hold("RCPT", [address])
        if hold is not None:  # mid-dialogue: the message is not ours yet
            await self._wait(hold)
            return "451 4.3.0 try again later"
        return await super().handle_RCPT(server, session, envelope, address, options)

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        answer = await super().handle_DATA(server, session, envelope)  # taken: delivered
        hold = self._hold("DATA", list(envelope.rcpt_tos), self.messages[-1]["Subject"])
        if hold is not None:  # the worker dies before it can write down that it was sent
            await self._wait(hold)
        return answer


@pytest.fixture
def held_smtp() -> Iterator[HeldMailbox]:
    box = HeldMailbox(port=free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    for hold in box.made:  # a test that failed half-way leaves no handler waiting
        hold.go.set()
    controller.stop()


async def until(event: threading.Event, what: str, timeout: float = 30) -> None:
    assert await asyncio.to_thread(event.wait, timeout), f"timed out waiting for {what}"


async def copies(smtp: Mailbox, address: str, subject: str, n: int, timeout: float = 30) -> None:
    """Until `n` messages to `address` have `subject` in theirs."""
    for _ in range(int(timeout / 0.1)):
        if sum(subject in m["Subject"] for m in mails_to(smtp, address)) >= n:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not {n} copies of {subject!r}: {smtp.messages}")


async def test_one_email_per_event_after_a_worker_is_killed_mid_send(
    client: Client, settings: Settings, engine: Engine, held_smtp: HeldMailbox, tmp_path: Path
) -> None:
    smtp = held_smtp
    customer_id, address = mailed_customer(engine)
    order = make_order({new_sku(engine, {"AMS": 5}): 1}, customer=customer_id)
    oid = order.order_id
    env = worker_env(
        client,
        settings,
        tmp_path / "home",
        ORDERFLOW_SMTP_HOST="127.0.0.1",
        ORDERFLOW_SMTP_PORT=str(smtp.port),
        ORDERFLOW_MAIL_CLAIM="1s",  # a dead worker's e-mail is free again after a second
        ORDERFLOW_WORKFLOW_CACHE_SIZE="0",  # no sticky queue left behind by a dead worker
    )
    log = tmp_path / "workers.log"

    workers = []
    try:
        # 1. Killed while the server holds the confirmation at RCPT: not delivered, claimed.
        confirmation = smtp.hold("RCPT", address)
        workers.append(await start_worker(env, log))
        await orders.place(client, settings, order)
        await until(confirmation.reached, "the confirmation's RCPT")
        await orders.wait_for(client, oid, OrderStatus.AWAITING_SHIPMENT, 30)  # workflow idle
        await kill(workers[-1])
        confirmation.go.set()
        [claimed] = outbox_of(engine, oid)
        assert claimed.sent_at is None and claimed.claimed_until is not None

        # 2. The next worker sends it once; it is killed after the server accepted "shipped"
        # and before `sent_at` was written.
        workers.append(await start_worker(env, log))
        await smtp.wait_for(address, f"Order {oid} confirmed")
        shipped = smtp.hold("DATA", address, f"Order {oid} shipped")
        await orders.notify_shipment(client, oid, "ship", None, "wms")
        await until(shipped.reached, "the shipped e-mail's DATA")
        await orders.wait_for(client, oid, OrderStatus.SHIPPED, 30)
        await kill(workers[-1])
        shipped.go.set()

        # 3. A third worker: the shipped e-mail again (same Message-ID), then delivered once.
        workers.append(await start_worker(env, log))
        await copies(smtp, address, f"Order {oid} shipped", 2)
        await orders.notify_shipment(client, oid, "deliver", None, "carrier")
        await smtp.wait_for(address, f"Order {oid} delivered")
        await orders.wait_for(client, oid, OrderStatus.COMPLETED, 30)
    except BaseException:
        print(log.read_text(errors="replace")[-4000:])
        raise
    finally:
        for worker in workers:
            if worker.returncode is None:
                await kill(worker)

    got = [(m["Subject"].split(":")[0], m["Message-ID"]) for m in mails_to(smtp, address)]
    subjects = [subject for subject, _ in got]
    assert subjects == [
        f"Order {oid} confirmed",  # once: the killed attempt never got past RCPT
        f"Order {oid} shipped",
        f"Order {oid} shipped",  # accepted, then the worker died: sent again, the same message
        f"Order {oid} delivered",
    ]
    assert got[1][1] == got[2][1] and len({mid for _, mid in got}) == 3
    rows = outbox_of(engine, oid)
    assert len(rows) == 3 and all(row.sent_at is not None for row in rows)
    with Session(engine) as session:
        notices = session.scalar(
            select(func.count()).select_from(Notification).where(Notification.order_id == oid)
        )
    assert notices == 3
