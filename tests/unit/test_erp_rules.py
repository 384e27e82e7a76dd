"""ERP handoff rules without I/O: the webhook signature, backoff, reconciliation."""

from datetime import timedelta
from decimal import Decimal

from domain.erp import (
    Acknowledged,
    DeadLetter,
    DeliveryReport,
    Document,
    backoff,
    posting_key,
    reconcile,
    signature,
    signature_problem,
)
from workflows.erp_dispatcher import details

SECRET = b"s3cret"


def test_a_signature_covers_the_body_and_its_time() -> None:
    body = b'{"amount":"25.00"}'
    signed = signature(SECRET, 1_700_000_000, body)
    assert signed.startswith("sha256=") and len(signed) == 7 + 64
    now = 1_700_000_030.0
    assert signature_problem(SECRET, "1700000000", signed, body, now) is None
    assert signature_problem(SECRET, "1700000000", signed, b'{"amount":"2500"}', now) == (
        "wrong signature"
    )
    assert signature_problem(b"other", "1700000000", signed, body, now) == "wrong signature"
    assert signature_problem(SECRET, "1700000001", signed, body, now) == "wrong signature"
    stale = signature_problem(SECRET, "1700000000", signed, body, now + 600)
    assert stale is not None and "300 s off" in stale
    assert signature_problem(SECRET, None, signed, body, now) is not None


def test_backoff_doubles_from_the_first_wait_up_to_the_cap() -> None:
    first, cap = timedelta(seconds=1), timedelta(minutes=5)
    waits = [backoff(n, first, cap).total_seconds() for n in range(0, 12)]
    assert waits == [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff(10_000, first, cap) == cap


def doc(kind: str, document: str, amount: str, state: str | None = "delivered") -> Document:
    return Document(
        key=posting_key("o-1", kind, document),
        order_id="o-1",
        kind=kind,
        document=document,
        amount=Decimal(amount),
        currency="EUR",
        state=state,  # type: ignore[arg-type]
        last_error="422 refused: no such cost centre" if state == "dead" else None,
    )


def ack(kind: str, document: str, amount: str, currency: str = "EUR") -> Acknowledged:
    return Acknowledged(
        key=posting_key("o-1", kind, document),
        order_id="o-1",
        kind=kind,
        document=document,
        amount=Decimal(amount),
        currency=currency,
        ack="ERP-1",
    )


def test_reconcile_is_clean_when_the_erp_booked_every_document_as_issued() -> None:
    ours = [doc("invoice", "INV-o-1", "25.00"), doc("credit_note", "CN-000001", "12.50")]
    erp = [ack("invoice", "INV-o-1", "25.0"), ack("credit_note", "CN-000001", "12.50")]
    assert reconcile(ours, erp) == []


def test_reconcile_names_every_kind_of_difference() -> None:
    ours = [
        doc("invoice", "INV-o-1", "25.00"),
        doc("credit_note", "CN-000001", "12.50"),
        doc("credit_note", "CN-000002", "5.00", state="pending"),
        doc("refund", "RF-000003", "5.00", state="dead"),
        doc("cancellation", "VOID-o-1", "9.00", state=None),
        doc("credit_note", "CN-000004", "1.00"),
    ]
    erp = [
        ack("invoice", "INV-o-1", "25.01"),
        ack("credit_note", "CN-000001", "12.50", currency="USD"),
        ack("refund", "RF-000099", "3.00"),
    ]
    found = {(d.document, d.problem): d.detail for d in reconcile(ours, erp)}
    assert found == {
        ("INV-o-1", "amount_differs"): "orderflow 25.00 EUR, ERP 25.01",
        ("CN-000001", "currency_differs"): "orderflow EUR, ERP USD",
        ("CN-000002", "pending"): "not delivered yet",
        ("RF-000003", "dead"): "refused by the ERP: 422 refused: no such cost centre",
        ("VOID-o-1", "not_posted"): "no posting in the outbox (issued before the ERP handoff)",
        ("CN-000004", "missing_in_erp"): "delivered and acknowledged once, unknown to the ERP now",
        ("RF-000099", "unknown_to_orderflow"): "the ERP booked 3.00 EUR (ack ERP-1)",
    }


def test_the_dispatcher_shows_operators_each_dead_letter_and_how_to_retry_it() -> None:
    report = DeliveryReport(
        erp="http://erp:8090",
        pending=3,
        outage_failures=2,
        last_error="cannot reach http://erp:8090: [Errno 111] Connection refused",
        dead_letters=[
            DeadLetter(
                id=7,
                order_id="o-9",
                kind="invoice",
                document="INV-o-9",
                attempts=1,
                reason="422 refused: unknown customer",
            )
        ],
    )
    text = details(report)
    assert text.startswith("**ERP handoff** to http://erp:8090: 3 pending, 1 dead letter(s).")
    assert "unreachable (2 tries in a row): cannot reach" in text
    assert "`orderflow erp retry ID`" in text
    assert "- #7 order o-9 invoice INV-o-9 (1 try): 422 refused: unknown customer" in text
