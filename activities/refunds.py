"""The refund ledger: money back once per key, never more than was captured.

An order captured per wave of parcels has several captures and invoices: the refund is
bounded by their sum (`order_balances.captured_minor`), a credit note refers to the (first)
invoice its credit names, and a card refund goes back through that invoice's capture.
"""

from decimal import Decimal

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import credits
from activities.audit import record
from activities.billing import MoneyRules
from activities.db.models import (
    CreditNote,
    Invoice,
    OrderBalance,
    Payment,
    Refund,
    ReturnAuthorization,
    utcnow,
)
from activities.erp_outbox import post_credit_note, post_refund, refund_document
from activities.errors import refused
from activities.invoices import invoices_of
from activities.metrics import refund_booked
from activities.numbering import document_no, next_number
from activities.payments import PaymentGateway, RefundRefused
from domain import credit_notes
from domain.money import from_minor, to_minor
from domain.returns import RefundRequest, RefundResult
from domain.statuses import OrderStatus, PaymentTerms
from domain.steps import StatusChange

PENDING = "pending"  # the reference of a ledger row whose gateway call has not answered yet


class RefundActivities:
    """Refunds booked in `refunds` and `order_balances` first; then the gateway pays out
    (card) or a credit note credits the invoice (account terms)."""

    def __init__(
        self, engine: Engine, gateway: PaymentGateway, rules: MoneyRules | None = None
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._rules = rules

    def _priced(
        self, request: RefundRequest
    ) -> tuple[RefundRequest, credit_notes.CreditNote | None]:
        """The amount to give back as finance prices it (see `activities.credits`)."""
        if self._rules is None:
            return request, None
        with Session(self._engine) as session:
            try:
                return credits.price(session, self._rules, request, utcnow().date())
            except credit_notes.CreditRefused as why:
                raise refused(f"{request.rma_id}: {why}", "RefundExceedsCapture") from None

    @activity.defn
    def refund(self, request: RefundRequest) -> RefundResult:
        """Give money back once per idempotency key, never more than was captured.

        Ledger first: one transaction writes the `refunds` row (reference "pending") and raises
        `order_balances.refunded_minor`, whose CHECK refunds_within_capture refuses anything
        above the capture; only then is the gateway called (it deduplicates by key), and the
        reference is stored. A crash in between is finished by the retry with the same key, so
        money never leaves without its ledger row, even under concurrent attempts.

        On account terms (Net-30) no card was charged: the same transaction issues a credit
        note against the invoice instead, and the gateway is never called.

        Raises:
            ApplicationError: "RefundExceedsCapture", "NothingCaptured", "CurrencyMismatch",
                "UnknownRma" or "IdempotencyKeyReused" (all non-retryable).
        """
        request, note = self._priced(request)
        done = self._existing_refund(request)
        if done is not None and done.reference != PENDING:
            return done
        self._book_ledger(request, note)
        done = self._existing_refund(request)
        if done is not None and done.reference == PENDING:  # card: the money leaves now
            with Session(self._engine) as session:
                parts = refund_parts(session, request.order_id, request.idempotency_key)
            try:
                references = [
                    self._gateway.refund(
                        part_key(request.idempotency_key, i),
                        capture,
                        from_minor(minor, request.currency),
                    )
                    for i, (capture, minor) in enumerate(parts)
                ]
            except RefundRefused as why:
                raise refused(str(why), "RefundExceedsCapture") from why
            reference = references[0]  # the others: part_key(key, 1), ... at the gateway
            with Session(self._engine) as session, session.begin():
                session.execute(
                    update(Refund)
                    .where(Refund.idempotency_key == request.idempotency_key)
                    .values(reference=reference)
                    .execution_options(synchronize_session=False)
                )
            done = self._existing_refund(request)
        assert done is not None
        return done

    def _book_ledger(self, request: RefundRequest, note: credit_notes.CreditNote | None) -> None:
        """The ledger row and the balance, once per key."""
        minor = to_minor(request.amount, request.currency)
        try:
            with Session(self._engine) as session, session.begin():
                if session.get_bind().dialect.name == "postgresql":
                    session.execute(  # concurrent refunds of one order take turns
                        select(OrderBalance.order_id)
                        .where(OrderBalance.order_id == request.order_id)
                        .with_for_update()
                    )
                self._check_refund(session, request, minor)
                booked = None
                if not _refund_row(session, request.idempotency_key):
                    booked = _book_refund(session, request, minor, note)
            if booked is not None:  # committed by this attempt: counted once per key
                refund_booked(minor, request.currency, booked)
        except IntegrityError as error:
            # A concurrent attempt with this key may have won meanwhile: its row is the answer.
            if self._existing_refund(request) is not None:
                return
            if "refunds_within_capture" in str(error):
                raise _exceeds(request, "the captured amount") from error
            raise

    def _check_refund(self, session: Session, request: RefundRequest, minor: int) -> None:
        """Refuse early what cannot succeed (the CHECK still decides)."""
        balance = session.get(OrderBalance, request.order_id)
        captured = session.scalar(
            select(Payment.id).where(
                Payment.order_id == request.order_id, Payment.kind == "CAPTURE"
            )
        )
        if balance is None or captured is None:
            raise refused(f"nothing was captured on order {request.order_id}", "NothingCaptured")
        if balance.currency != request.currency:
            raise refused(
                f"order {request.order_id} was captured in {balance.currency}, "
                f"not {request.currency}",
                "CurrencyMismatch",
            )
        if request.rma_id is not None:
            rma = session.get(ReturnAuthorization, request.rma_id)
            if rma is None or rma.order_id != request.order_id:
                raise refused(f"no RMA {request.rma_id} on order {request.order_id}", "UnknownRma")
        if _refund_row(session, request.idempotency_key) is not None:
            return  # already booked by an earlier attempt: finish it
        if balance.refunded_minor + minor > balance.captured_minor:
            left = from_minor(balance.captured_minor - balance.refunded_minor, balance.currency)
            raise _exceeds(request, f"the {left} {balance.currency} still refundable")

    def _existing_refund(self, request: RefundRequest) -> RefundResult | None:
        with Session(self._engine) as session:
            row = _refund_row(session, request.idempotency_key)
            if row is None:
                return None
            if row.order_id != request.order_id or row.amount_minor != to_minor(
                request.amount, request.currency
            ):
                raise refused(
                    f"refund key {request.idempotency_key!r} was used for {row.order_id} "
                    f"{from_minor(row.amount_minor, row.currency)} {row.currency}",
                    "IdempotencyKeyReused",
                )
            refunded = session.scalar(
                select(OrderBalance.refunded_minor).where(OrderBalance.order_id == row.order_id)
            )
            return RefundResult(
                order_id=row.order_id,
                rma_id=row.rma_id,
                amount=from_minor(row.amount_minor, row.currency),
                currency=row.currency,
                reference=row.reference,
                refunded_total=from_minor(refunded or 0, row.currency),
            )


def _book_refund(
    session: Session, request: RefundRequest, minor: int, note: credit_notes.CreditNote | None
) -> str:
    """Book the ledger row; returns how the money goes back: "card" or "credit_note"."""
    keys = {"idempotency_key", "order_id", "rma_id", "currency"}
    refund = Refund(**request.model_dump(include=keys), amount_minor=minor, reference=PENDING)
    session.add(refund)
    session.flush()
    if note is not None:
        note = note.model_copy(update={"credit_note_no": refund_document(refund.id)})
    session.execute(  # the CHECK refunds_within_capture is the guard
        update(OrderBalance)
        .where(OrderBalance.order_id == request.order_id)
        .values(refunded_minor=OrderBalance.refunded_minor + minor)
        .execution_options(synchronize_session=False)
    )
    if request.rma_id is not None:
        session.execute(
            update(ReturnAuthorization)
            .where(ReturnAuthorization.rma_id == request.rma_id)
            .values(state="REFUNDED")
            .execution_options(synchronize_session=False)
        )
    what = f"{request.rma_id or 'no RMA'}: refunded {request.amount} {request.currency}"
    invoice = _credited_invoice(session, request.order_id, note)
    named = (note.credits if note is not None else []) or (
        [invoice.invoice_no] if invoice is not None else []
    )
    kind = "card"
    if invoice is not None and invoice.terms != PaymentTerms.PREPAID.value:
        credit = _credit_note(session, refund, invoice, request.amount, note)
        refund.reference = credit.credit_note_no
        what += f" as credit note {refund.reference} on {' + '.join(named)}"
        kind = "credit_note"
        note = note.model_copy(update={"credit_note_no": credit.credit_note_no}) if note else None
        # the ERP learns it with the ledger, or never
        post_credit_note(session, credit, refund, named)
    else:
        post_refund(
            session,
            refund,
            invoice.invoice_no if invoice else None,
            named,
            note.model_dump(mode="json") if note is not None else None,
        )
    if note is not None:
        refund.document = note.model_dump(mode="json")
        fee = sum((line.restocking_fee for line in note.lines), Decimal(0))
        if fee:
            what += f" (restocking fee {fee} net kept)"
    step = f"refund/{request.idempotency_key}"
    record(
        session,
        StatusChange(
            order_id=request.order_id, step=step, status=OrderStatus.REFUNDED, reason=what
        ),
    )
    return kind


def _credit_note(
    session: Session,
    refund: Refund,
    invoice: Invoice,
    amount: Decimal,
    priced: credit_notes.CreditNote | None,
) -> CreditNote:
    """Credit the invoice: the customer owes that much less (or has it on account if paid).
    Numbered without gaps per year (CN-2026-000007)."""
    year = utcnow().year
    note = CreditNote(
        credit_note_no=document_no("CN", year, next_number(session, "CN", year)),
        refund_id=refund.id,
        invoice_no=invoice.invoice_no,
        amount=amount,
        currency=refund.currency,
    )
    if priced is not None:
        note.net, note.tax = priced.totals.net, priced.totals.tax
        note.restocking_fee = sum((line.restocking_fee for line in priced.lines), Decimal(0))
        priced = priced.model_copy(update={"credit_note_no": note.credit_note_no})
        note.document = priced.model_dump(mode="json")
    session.add(note)
    return note


def _credited_invoice(
    session: Session, order_id: str, note: credit_notes.CreditNote | None
) -> Invoice | None:
    """The invoice a refund is booked against: the (first) one its credit names, else the
    order's latest (None: not invoiced)."""
    invoices = invoices_of(session, order_id)
    named = [i for i in invoices if note is not None and i.invoice_no == note.invoice_no]
    return next(iter(named or invoices[-1:]), None)


def refund_parts(session: Session, order_id: str, idempotency_key: str) -> list[tuple[str, int]]:
    """Which captures a refund goes back through, and how much through each (minor units).

    A gateway refunds through one capture at most what that capture took, and an order billed
    per wave has a capture per invoice: each refund takes from the latest capture first, then
    the one before, each up to what the refunds booked before it left of that capture. The
    split is recomputed from the ledger (captures and refunds in the order they were booked,
    refunds taking turns on the order's balance), so a retried refund gets the same parts.
    """
    captures = [
        (str(reference), int(minor))
        for reference, minor in session.execute(
            select(Payment.reference, Payment.amount_minor)
            .where(Payment.order_id == order_id, Payment.kind == "CAPTURE")
            .order_by(Payment.id)
        )
    ]
    left = [minor for _, minor in captures]
    booked = session.execute(
        select(Refund.idempotency_key, Refund.amount_minor)
        .where(Refund.order_id == order_id)
        .order_by(Refund.id)
    )
    for key, minor in booked:
        parts: list[tuple[str, int]] = []
        for i in reversed(range(len(captures))):
            taken = min(left[i], minor)
            if taken > 0:
                parts.append((captures[i][0], taken))
                left[i] -= taken
                minor -= taken
        if key == idempotency_key:
            return parts
    raise LookupError(f"refund {idempotency_key} is not booked on order {order_id}")


def part_key(idempotency_key: str, part: int) -> str:
    """The gateway's idempotency key of one part of a refund (the first keeps the refund's)."""
    return idempotency_key if part == 0 else f"{idempotency_key}/part-{part + 1}"


def _refund_row(session: Session, key: str) -> Refund | None:
    return session.scalar(select(Refund).where(Refund.idempotency_key == key))


def _exceeds(request: RefundRequest, limit: str) -> ApplicationError:
    return refused(
        f"refund of {request.amount} {request.currency} on {request.order_id} exceeds {limit}",
        "RefundExceedsCapture",
    )
