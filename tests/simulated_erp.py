"""ERP handoff test support: the simulated ERP on a free port, a database of the test's own,
invoiced orders written through the real capture activity."""

import contextlib
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from temporalio.testing import ActivityEnvironment

from activities.catalog import load_catalog
from activities.db.engine import make_engine, upgrade
from activities.db.models import ErpPosting, OrderLineRecord, OrderRecord
from activities.erp import WebhookErp
from activities.payments import PaymentActivities, SimulatedGateway
from domain.order import Order
from domain.policy import CustomerTerms
from domain.statuses import FulfilmentPolicy, PaymentTerms
from domain.steps import CaptureRequest, PaymentAuthorization, PaymentRequest
from starter.erp_sim import Behaviour, create_erp_sim
from tests.conftest import CATALOG, _postgres_database
from tests.e2e.conftest import free_port
from tests.factories import make_order

SECRET = b"erp-test-secret"

PREPAID = CustomerTerms(
    customer_id="C-WEB-001",
    name="Web shop customer",
    payment_terms=PaymentTerms.PREPAID,
    credit_limit=Decimal(0),
    fulfilment_policy=FulfilmentPolicy.SHIP_WHEN_AVAILABLE,
    priority=0,
)
NET30 = PREPAID.model_copy(
    update={
        "customer_id": "C-ACME",
        "name": "ACME Industrial BV",
        "payment_terms": PaymentTerms.NET_30,
    }
)


class SimulatedErp:
    """`orderflow erp-sim`'s app served over HTTP from a thread; switched through /control."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.app = create_erp_sim(SECRET, behaviour)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> "SimulatedErp":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "the simulated ERP did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def control(self, **change: Any) -> dict[str, Any]:
        """POST /control, as the demo and operators switch it."""
        request = urllib.request.Request(
            f"{self.url}/control",
            data=json.dumps(change).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            status: dict[str, Any] = json.loads(answer.read())
        return status

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/health", timeout=5) as answer:
            status: dict[str, Any] = json.loads(answer.read())
        return status

    def adapter(self, timeout: float = 5) -> WebhookErp:
        return WebhookErp(self.url, SECRET, timeout)

    def wait_booked(self, count: int, timeout: float = 10) -> None:
        """Until it has booked `count` postings (a condition, not a pause)."""
        deadline = time.monotonic() + timeout
        while len(self.booked) < count:
            assert time.monotonic() < deadline, f"booked {len(self.booked)} of {count}"
            time.sleep(0.01)

    @property
    def booked(self) -> dict[str, dict[str, Any]]:
        """What it acknowledged, by idempotency key, in the order it booked them."""
        postings: dict[str, dict[str, Any]] = self.app.state.ledger.postings
        return postings


@contextlib.contextmanager
def own_database(kind_of: str, tmp: Path) -> Iterator[Engine]:
    """A migrated, seeded database of the same kind as `kind_of`, for this test alone (the
    outbox and reconcile look at every document in it)."""
    if kind_of.startswith("sqlite"):
        urls: Iterator[str] = iter([f"sqlite:///{tmp / f'erp-{uuid.uuid4().hex[:6]}.db'}"])
    else:
        urls = _postgres_database()
    for url in urls:
        upgrade(url)
        engine = make_engine(url, pool_size=12)
        load_catalog(engine, json.loads(CATALOG.read_text()))
        try:
            yield engine
        finally:
            engine.dispose()


def placed(engine: Engine, terms: CustomerTerms = PREPAID, **lines: int) -> Order:
    """An order in the read model as intake writes it (record and lines)."""
    order = make_order(lines or {"KB-100": 2}, customer=terms.customer_id, price="12.50")
    with Session(engine) as session, session.begin():
        session.add(
            OrderRecord(
                order_id=order.order_id,
                customer_id=order.customer_id,
                channel=order.channel.value,
                status="DELIVERED",
                currency=order.currency,
                total=order.total,
                fingerprint=order.order_id,
                promised_date=None,
                order=order.model_dump(mode="json"),
                routing=None,
            )
        )
        session.flush()  # the lines refer to it
        for line in order.lines:
            session.add(
                OrderLineRecord(
                    order_id=order.order_id,
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                )
            )
    return order


def payments(engine: Engine) -> PaymentActivities:
    return PaymentActivities(engine, SimulatedGateway(latency_ms=(0, 0)))


def authorize(engine: Engine, order: Order, terms: CustomerTerms = PREPAID) -> PaymentAuthorization:
    request = PaymentRequest(
        order_id=order.order_id, customer=terms, amount=order.total, currency=order.currency
    )
    result: PaymentAuthorization = ActivityEnvironment().run(
        payments(engine).authorize_payment, request
    )
    return result


def capture(
    engine: Engine, order: Order, auth: PaymentAuthorization, terms: CustomerTerms = PREPAID
) -> None:
    """The real capture activity: takes the money and issues the invoice (and its posting)."""
    request = CaptureRequest(
        order_id=order.order_id, authorization=auth, amount=order.total, customer=terms
    )
    ActivityEnvironment().run(payments(engine).capture_payment, request)


def postings(engine: Engine, order_id: str | None = None) -> list[ErpPosting]:
    query = select(ErpPosting).order_by(ErpPosting.id)
    if order_id is not None:
        query = query.where(ErpPosting.order_id == order_id)
    with Session(engine) as session:
        return list(session.scalars(query))
