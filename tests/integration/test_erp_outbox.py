"""The ERP outbox on SQLite and PostgreSQL: postings commit with their documents, once each;
the dispatcher's rounds against the simulated ERP over HTTP: outages, refusals, backoff,
lost answers, order per order; reconcile."""

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from temporalio.testing import ActivityEnvironment

from activities.db.models import utcnow
from activities.erp import ErpUnavailable, WebhookErp
from activities.erp_delivery import DeliveryPolicy, Round, deliver_round
from activities.erp_outbox import documents, retry_dead
from activities.payments import SimulatedGateway
from activities.refunds import RefundActivities
from activities.reports import erp_outbox
from domain.erp import reconcile
from domain.order import Order
from domain.returns import RefundRequest
from starter.erp_sim import Behaviour
from tests.e2e.conftest import free_port
from tests.factories import authorize, capture, invoice_no, payments
from tests.simulated_erp import NET30, SimulatedErp, own_database, placed, postings

POLICY = DeliveryPolicy(
    poll_interval=timedelta(milliseconds=50),
    first_retry=timedelta(seconds=10),
    max_backoff=timedelta(minutes=1),
    concurrency=4,
)


@pytest.fixture
def db(database_url: str, tmp_path: Path) -> Iterator[Engine]:
    with own_database(database_url, tmp_path) as engine:
        yield engine


def refund(engine: Engine, order: Order, key: str, amount: str) -> None:
    request = RefundRequest(
        order_id=order.order_id,
        rma_id=None,
        amount=Decimal(amount),
        currency="EUR",
        idempotency_key=f"{order.order_id}/{key}",
    )
    ledger = RefundActivities(engine, SimulatedGateway(latency_ms=(0, 0)))
    ActivityEnvironment().run(ledger.refund, request)


def deliver_all(engine: Engine, erp: WebhookErp, rounds: int = 10) -> list[Round]:
    """Rounds until one finds nothing due (an order's next posting is due the round after)."""
    done = []
    for _ in range(rounds):
        done.append(deliver_round(engine, erp, POLICY))
        if not done[-1].delivered:
            return done
    raise AssertionError(f"still delivering after {rounds} rounds: {done}")


def test_a_posting_commits_with_its_invoice_or_not_at_all(
    db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    order = placed(db)
    auth = authorize(db, order)

    def connection_lost(*args: object) -> None:
        raise ConnectionResetError("the database went away mid-transaction")

    with monkeypatch.context() as patch:  # after the invoice and its posting, before commit
        patch.setattr("activities.payments.record", connection_lost)
        with pytest.raises(ConnectionResetError):
            capture(db, order, auth)
    assert postings(db) == []
    capture(db, order, auth)  # Temporal retries the activity
    capture(db, order, auth)

    def overlapping(_: int) -> Exception | None:
        try:
            capture(db, order, auth)
        except IntegrityError as lost:  # the loser of a race fails; Temporal retries it
            return lost
        return None

    with ThreadPoolExecutor(4) as pool:  # and attempts that overlap
        list(pool.map(overlapping, range(4)))
    [invoice] = postings(db)
    assert (invoice.kind, invoice.document, invoice.seq, invoice.state) == (
        "invoice",
        invoice_no(db, order.order_id),
        1,
        "pending",
    )
    assert invoice.idempotency_key == f"{order.order_id}:invoice:{invoice_no(db, order.order_id)}"
    data = invoice.payload
    assert (data["customer_id"], data["customer_name"], data["amount"]) == (
        "C-WEB-001",
        "Web shop customer",
        "25.00",
    )
    assert data["lines"] == [
        {"sku": "KB-100", "quantity": 2, "unit_price": "12.50", "amount": "25.00"}
    ]


def test_credit_notes_refunds_and_cancellations_are_posted_once_each_in_order(db: Engine) -> None:
    account = placed(db, NET30, **{"KB-100": 4})
    capture(db, account, authorize(db, account, NET30), NET30)
    refund(db, account, "r1", "12.50")
    refund(db, account, "r1", "12.50")  # retried: the same credit note, no second posting
    refund(db, account, "r2", "25.00")
    card = placed(db)
    capture(db, card, authorize(db, card))
    refund(db, card, "r1", "5.00")
    cancelled = placed(db)
    auth = authorize(db, cancelled)
    void = payments(db).void_authorization
    for _ in range(2):
        ActivityEnvironment().run(void, auth)
    never_authorised = auth.model_copy(update={"order_id": placed(db).order_id})
    ActivityEnvironment().run(void, never_authorised)  # nothing was held: nothing to post

    def chain(order: Order) -> list[tuple[int, str, str]]:
        return [(p.seq, p.kind, str(p.amount)) for p in postings(db, order.order_id)]

    assert chain(account) == [
        (1, "invoice", "50.00"),
        (2, "credit_note", "12.50"),
        (3, "credit_note", "25.00"),
    ]
    assert chain(card) == [(1, "invoice", "25.00"), (2, "refund", "5.00")]
    assert chain(cancelled) == [(1, "cancellation", "25.00")]
    assert postings(db, never_authorised.order_id) == []
    notes = postings(db, account.order_id)[1:]
    assert [p.document[:3] for p in notes] == ["CN-", "CN-"]
    assert notes[0].payload["invoice_no"] == invoice_no(db, account.order_id)
    assert postings(db, card.order_id)[1].document.startswith("RF-")
    assert {d.state for d in documents(db)} == {"pending"}  # every document has its posting


def test_an_erp_down_while_50_orders_are_invoiced_books_each_posting_once_in_order(
    db: Engine,
) -> None:
    with SimulatedErp(Behaviour(down=True)) as sim:
        erp = sim.adapter()
        orders = [placed(db, **{"KB-100": 1 + i % 3}) for i in range(50)]
        auths = [authorize(db, order) for order in orders]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda pair: capture(db, *pair), zip(orders, auths, strict=True)))
        for order in orders[::5]:  # ten of them get money back: a second posting each
            refund(db, order, "r1", "1.00")

        down = deliver_round(db, erp, POLICY)  # up to one try per order at once
        assert down.outage and "503" in down.outage and down.delivered == 0
        assert 1 <= down.failed <= POLICY.concurrency
        probe = deliver_round(db, erp, POLICY, probe=True)  # the dispatcher, once it knows
        assert (probe.failed, probe.delivered) == (1, 0)
        assert sim.status()["unavailable"] == down.failed + 1 and sim.booked == {}
        assert {p.state for p in postings(db)} == {"pending"}
        waiting = reconcile(documents(db), erp.acknowledged())
        assert len(waiting) == 60 and {d.problem for d in waiting} == {"pending"}

        sim.control(down=False)
        rounds = deliver_all(db, erp)
        assert sum(r.delivered for r in rounds) == 60  # 32 a round, an order's next one after
        assert not any(r.failed or r.refused for r in rounds)

        status = sim.status()
        assert (status["booked"], status["replays"], status["out_of_order"]) == (60, 0, 0)
        sent = postings(db)
        assert {p.state for p in sent} == {"delivered"}
        assert {p.idempotency_key: p.erp_reference for p in sent} == {
            key: booked["ack"] for key, booked in sim.booked.items()
        }
        for order in orders[::5]:
            keys = [p.idempotency_key for p in postings(db, order.order_id)]
            booked_in = [k for k in sim.booked if k in keys]
            assert booked_in == keys  # the ERP received the order's postings in seq order
        assert reconcile(documents(db), erp.acknowledged()) == []
        summary = erp_outbox(db)
        assert (summary["pending"], summary["delivered"], summary["dead"]) == (0, 60, 0)


def test_a_refused_posting_goes_dead_holds_its_order_back_until_retried(db: Engine) -> None:
    account = placed(db, NET30)
    capture(db, account, authorize(db, account, NET30), NET30)
    refund(db, account, "r1", "10.00")
    other = placed(db)
    capture(db, other, authorize(db, other))
    number = invoice_no(db, account.order_id)
    with SimulatedErp(Behaviour(refuse=[number])) as sim:
        erp = sim.adapter()
        first = deliver_all(db, erp)
        assert (first[0].delivered, first[0].refused) == (1, 1)  # the other order goes on
        dead, note = postings(db, account.order_id)
        assert (dead.state, dead.attempts) == ("dead", 1)
        assert dead.last_error == f"422 refused: the posting contains '{number}'"
        assert note.state == "pending" and note.attempts == 0  # held back behind its invoice
        summary = erp_outbox(db)
        assert summary["dead"] == 1 and summary["pending"] == 1
        assert summary["dead_letters"][0]["reason"] == dead.last_error
        assert summary["dead_letters"][0]["document"] == number
        problems = {d.document: d.problem for d in reconcile(documents(db), erp.acknowledged())}
        assert problems == {number: "dead", note.document: "pending"}

        sim.control(refuse=[])  # the ERP's people fixed the master data
        [(again, was)] = retry_dead(db, order_id=account.order_id)
        assert (again.id, was, again.state) == (dead.id, "dead", "pending")
        assert [r.delivered for r in deliver_all(db, erp)] == [1, 1, 0]
        assert [k for k in sim.booked if account.order_id in k] == [
            dead.idempotency_key,
            note.idempotency_key,
        ]
        assert reconcile(documents(db), erp.acknowledged()) == []


def test_a_failing_posting_backs_off_alone_and_a_lost_answer_is_deduplicated(db: Engine) -> None:
    order = placed(db)
    capture(db, order, authorize(db, order))
    with SimulatedErp(Behaviour(fail_rate=1.0)) as sim:
        now = utcnow()
        failed = deliver_round(db, sim.adapter(), POLICY, now)
        assert (failed.failed, failed.outage) == (1, None)  # a 500: this posting's problem
        [posting] = postings(db)
        assert posting.attempts == 1 and posting.last_error == "500 simulated failure"
        assert deliver_round(db, sim.adapter(), POLICY, now + timedelta(seconds=9)).failed == 0
        assert deliver_round(db, sim.adapter(), POLICY, now + timedelta(seconds=10)).failed == 1
        assert postings(db)[0].attempts == 2  # next try 20 s after that one
        assert deliver_round(db, sim.adapter(), POLICY, now + timedelta(seconds=29)).failed == 0

        # The ERP books it, but its answer comes after we stopped waiting.
        sim.control(fail_rate=0.0, latency_ms=400)
        lost = deliver_round(db, sim.adapter(timeout=0.1), POLICY, now + timedelta(seconds=30))
        assert lost.outage and "did not answer within 0.1 s" in lost.outage
        sim.wait_booked(1)  # it did book it
        sim.control(latency_ms=0)
        again = deliver_round(db, sim.adapter(), POLICY, now + timedelta(seconds=30))
        assert again.delivered == 1
    [posting] = postings(db)
    [booked] = sim.booked.values()
    assert (booked["replays"], posting.state, posting.erp_reference) == (
        1,
        "delivered",
        booked["ack"],
    )
    assert posting.attempts == 4


def test_credentials_and_connections_are_outages_not_refusals(db: Engine) -> None:
    order = placed(db)
    capture(db, order, authorize(db, order))
    nowhere = WebhookErp(f"http://127.0.0.1:{free_port()}", b"x", 2)
    refused = deliver_round(db, nowhere, POLICY)
    assert refused.outage and "Connection refused" in refused.outage
    with SimulatedErp() as sim:
        wrong_key = WebhookErp(sim.url, b"not the ERP's secret", 2)
        unsigned = deliver_round(db, wrong_key, POLICY)
        assert unsigned.outage == "the ERP refuses our credentials: 401 wrong signature"
        with pytest.raises(ErpUnavailable, match="401 wrong signature"):
            wrong_key.acknowledged()
        assert sim.booked == {}
        [posting] = postings(db)
        assert (posting.state, posting.attempts) == ("pending", 2)  # nothing dead meanwhile
        assert deliver_round(db, sim.adapter(), POLICY).delivered == 1
