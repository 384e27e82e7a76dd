"""ERP handoff test support: the simulated ERP on a free port, a database of the test's own,
orders placed in it."""

import contextlib
import json
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from activities.catalog import load_catalog
from activities.db.engine import make_engine, upgrade
from activities.db.models import ErpPosting
from activities.erp import WebhookErp
from domain.order import Order
from domain.policy import CustomerTerms
from domain.statuses import PaymentTerms
from starter.erp_sim import Behaviour, create_erp_sim
from tests.conftest import CATALOG, _postgres_database
from tests.e2e.conftest import free_port
from tests.factories import PREPAID, add_order, make_order

SECRET = b"erp-test-secret"

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
        add_order(session, order)
    return order


def postings(engine: Engine, order_id: str | None = None) -> list[ErpPosting]:
    query = select(ErpPosting).order_by(ErpPosting.id)
    if order_id is not None:
        query = query.where(ErpPosting.order_id == order_id)
    with Session(engine) as session:
        return list(session.scalars(query))
