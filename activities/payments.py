"""Money: card authorisation or account credit, capture and invoice, void; behind a gateway."""

import hashlib
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

from sqlalchemy import Engine, bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import billing, invoices
from activities.audit import record
from activities.billing import MoneyRules
from activities.db.engine import reader
from activities.db.models import OrderBalance, OrderRecord, Payment, aware, utcnow
from activities.erp_outbox import post_cancellation
from domain import invoicing
from domain.money import from_minor, to_minor
from domain.statuses import OrderStatus, PaymentTerms
from domain.steps import (
    CaptureRequest,
    CaptureResult,
    PaymentAuthorization,
    PaymentRequest,
    StatusChange,
)
from domain.tax import NoTaxRate

CARD_AUTHORIZATION_VALID_FOR = timedelta(days=7)
"""How long card networks let a merchant capture against an authorisation (about 7 days)."""


class GatewayDeclined(Exception):
    """The card issuer said no: a business failure, never retried."""


class AuthorizationLapsed(Exception):
    """The gateway no longer honours the authorisation: re-authorise, then capture."""


class RefundRefused(Exception):
    """The gateway refuses to refund more than the capture it is sent against."""


class PaymentGateway(Protocol):
    """The card processor; every call carries an idempotency key, as real gateways require.

    `capture` raises `AuthorizationLapsed` once `authorization_valid_for` has passed since
    the authorisation: the caller re-authorises (a new authorisation, which may be declined).
    `refund` goes back through one capture and raises `RefundRefused` above its amount: a
    refund larger than any one capture (an order billed per wave) is split over captures.
    """

    authorization_valid_for: timedelta

    def authorize(self, key: str, amount: Decimal, currency: str) -> str: ...
    def capture(self, key: str, authorization: str, amount: Decimal) -> str: ...
    def void(self, key: str, authorization: str) -> str: ...
    def refund(self, key: str, reference: str, amount: Decimal) -> str: ...


class SimulatedGateway:
    """A card processor with network latency, transient outages, declines above a limit,
    authorisations that lapse (a capture after `authorization_valid_for` is refused) and
    refunds bounded by the capture they go back through.

    The lapse time travels in the authorisation's reference (`auth_<hash>.<epoch ms>`) and
    the amount in the capture's (`cap_<hash>:<amount>`), so any worker process enforces them
    without shared state, as the real processor would (it bounds a capture's refunds in
    total; this one bounds each refund).
    """

    def __init__(
        self,
        *,
        latency_ms: tuple[int, int] = (30, 120),
        failure_rate: float = 0.0,
        decline_above: Decimal = Decimal("100000"),
        authorization_valid_for: timedelta = CARD_AUTHORIZATION_VALID_FOR,
        rng: random.Random | None = None,
    ):
        self._latency = latency_ms
        self._failure_rate = failure_rate
        self._decline_above = decline_above
        self.authorization_valid_for = authorization_valid_for
        self._rng = rng or random.Random()

    def _call(self, key: str, prefix: str) -> str:
        time.sleep(self._rng.uniform(*self._latency) / 1000)
        if self._rng.random() < self._failure_rate:
            raise ConnectionError("payment gateway timed out")
        # Same key, same reference: the gateway deduplicates retried requests.
        return f"{prefix}_{hashlib.sha256(key.encode()).hexdigest()[:16]}"

    def authorize(self, key: str, amount: Decimal, currency: str) -> str:
        reference = self._call(key, "auth")
        if amount > self._decline_above:
            raise GatewayDeclined(f"card declined: {amount} {currency} above the card's limit")
        lapses = time.time() + self.authorization_valid_for.total_seconds()
        return f"{reference}.{int(lapses * 1000)}"

    def capture(self, key: str, authorization: str, amount: Decimal) -> str:
        reference = self._call(key, "cap")
        _, dot, lapses = authorization.rpartition(".")
        if dot and lapses.isdigit() and time.time() * 1000 >= int(lapses):
            raise AuthorizationLapsed(f"authorisation {authorization} has lapsed")
        return f"{reference}:{amount}"  # the capture's amount travels with it, as the lapse

    def refund(self, key: str, reference: str, amount: Decimal) -> str:
        _, colon, captured = reference.partition(":")
        if colon and amount > Decimal(captured):
            raise RefundRefused(f"refund {amount} above the capture {reference} of {captured}")
        return self._call(key, "rfnd")

    def void(self, key: str, authorization: str) -> str:
        return self._call(key, "void")


class PaymentActivities:
    """Authorise, capture and void, each written once to the `payments` ledger by its key."""

    def __init__(
        self, engine: Engine, gateway: PaymentGateway, rules: MoneyRules | None = None
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._rules = rules

    def _to_authorise(
        self, request: PaymentRequest, key: str
    ) -> tuple[tuple[str, datetime | None] | None, Decimal]:
        """The reference and lapse of this authorisation if it was made before (a retry: it
        keeps its amount), else what to authorise: the order's gross estimate from validation
        (goods, the dearest shipping, tax), so the capture never exceeds it; a
        re-authorisation covers what of it is not captured yet. One read-only transaction,
        columns rather than rows (README, "Speed")."""
        with Session(reader(self._engine)) as session:
            read = session.connection()  # statements built once: no ORM round
            made = read.execute(_MADE, {"key": key}).first()
            if made is not None:
                return (made.reference, made.valid_until), from_minor(
                    made.amount_minor, made.currency
                )
            balance = read.execute(_CAPTURED, {"of_order": request.order_id}).first()
            estimate = read.scalar(_ESTIMATE, {"of_order": request.order_id})
        captured = from_minor(*balance) if balance is not None else Decimal(0)
        if estimate is None:
            return None, request.amount
        return None, max(estimate - captured, request.amount)

    def _valid_until(self, key: str) -> datetime | None:
        """The ledger's lapse of an authorisation (one a concurrent attempt wrote first)."""
        with Session(reader(self._engine)) as session:
            return session.scalar(select(Payment.valid_until).where(Payment.idempotency_key == key))

    def _bill(self, request: CaptureRequest) -> tuple[invoicing.Invoice | None, Decimal]:
        """The invoice to issue and the amount to capture: an invoice issued already keeps
        its amount (a retried capture); an order captured without delivered units (placed
        before invoices carried tax) bills `request.amount` as it is."""
        with Session(self._engine) as session:
            issued = invoices.invoice_of(session, request.order_id, request.capture_no)
            if issued is not None:
                return None, issued.amount
            if request.delivered is None or self._rules is None:
                return None, request.amount
            try:
                bill = billing.draft(
                    session,
                    self._rules,
                    request.order_id,
                    request.delivered,
                    utcnow().date(),
                    capture_no=request.capture_no,
                    parcels_billed=request.parcels,
                )
            except NoTaxRate as missing:
                raise ApplicationError(str(missing), type="NoTaxRate", non_retryable=True) from None
        return bill, bill.totals.gross

    @activity.defn
    def authorize_payment(self, request: PaymentRequest) -> PaymentAuthorization:
        """Hold the money: a card authorisation, or credit on account terms; with
        `reauthorization` n > 0, a new card authorisation for what is not captured yet,
        the earlier one having lapsed.

        Raises:
            ApplicationError: "PaymentDeclined" (non-retryable). Net-30 credit is never
                refused here: an order over its limit was a CREDIT hold, released before.
        """
        n = request.reauthorization
        key = f"{request.order_id}/authorize" if n == 0 else f"{request.order_id}/reauthorize-{n}"
        terms = request.customer.payment_terms
        lapses = (
            None
            if terms == PaymentTerms.NET_30
            else utcnow() + self._gateway.authorization_valid_for
        )

        def authorize(amount: Decimal) -> str:
            if terms == PaymentTerms.NET_30:
                return f"credit_{request.order_id}"
            try:
                return self._gateway.authorize(key, amount, request.currency)
            except GatewayDeclined as declined:
                raise ApplicationError(
                    str(declined), type="PaymentDeclined", non_retryable=True
                ) from declined

        made, amount = self._to_authorise(request, key)
        if made is None:
            reference, wrote = self._call_and_record(
                key,
                request.order_id,
                "AUTHORIZE" if n == 0 else "REAUTHORIZE",
                to_minor(amount, request.currency),
                request.currency,
                lambda: authorize(amount),
                valid_until=lapses,  # taken before the call: never later than the gateway's
            )
            valid_until = lapses if wrote else self._valid_until(key)
        else:
            reference, valid_until = made
        return PaymentAuthorization(
            order_id=request.order_id,
            method=terms.value,
            amount=amount,
            currency=request.currency,
            reference=reference,
            valid_until=None if valid_until is None else aware(valid_until),
            reauthorization=n,
        )

    @activity.defn
    def void_authorization(self, authorization: PaymentAuthorization) -> None:
        """Compensation: let go of the hold (no-op if voided already).

        The void of an authorisation that was booked posts a cancellation for the ERP in the
        transaction that records the void. A renewal (re-authorisation n) is voided under a key
        of its own (`<order>/void-<n>`) and posts nothing: it is the rest of an order that was
        invoiced in part, released once nothing more will be captured.
        """
        n = authorization.reauthorization
        key = f"{authorization.order_id}/void" if n == 0 else f"{authorization.order_id}/void-{n}"
        prepaid = authorization.method == PaymentTerms.PREPAID.value

        def post_to_erp(session: Session, reference: str) -> None:
            authorized = session.scalar(
                select(Payment).where(
                    Payment.order_id == authorization.order_id, Payment.kind == "AUTHORIZE"
                )
            )
            if authorized is not None:
                post_cancellation(
                    session, authorization.order_id, authorization.method, authorized, reference
                )

        self._once(
            key,
            authorization.order_id,
            "VOID",
            0,
            authorization.currency,
            lambda: (
                self._gateway.void(key, authorization.reference)
                if prepaid
                else authorization.reference
            ),
            also=post_to_erp if n == 0 else None,
        )

    def _once(
        self,
        key: str,
        order_id: str,
        kind: str,
        amount_minor: int,
        currency: str,
        call: Callable[[], str],
        also: Callable[[Session, str], None] | None = None,
    ) -> str:
        """One ledger entry per key: the recorded reference, or the gateway called and its
        answer recorded (`_call_and_record`)."""
        with Session(reader(self._engine)) as session:
            done = session.scalar(select(Payment.reference).where(Payment.idempotency_key == key))
        if done is not None:
            return done
        reference, _ = self._call_and_record(
            key, order_id, kind, amount_minor, currency, call, also
        )
        return reference

    def _call_and_record(
        self,
        key: str,
        order_id: str,
        kind: str,
        amount_minor: int,
        currency: str,
        call: Callable[[], str],
        also: Callable[[Session, str], None] | None = None,
        valid_until: datetime | None = None,
    ) -> tuple[str, bool]:
        """Call the gateway, outside any transaction, and write the key's ledger entry; for a
        caller that found none. Returns the reference and whether this call wrote the entry
        (False: a concurrent attempt with the same key wrote it first).

        The gateway deduplicates by key, so a crash between the call and the write is safe:
        the retry calls again with the same key and gets the same reference. `also` writes
        more in the ledger entry's transaction (given the reference), so once per key too.
        """
        reference = call()
        try:
            with Session(self._engine) as session, session.begin():
                session.add(
                    Payment(
                        idempotency_key=key,
                        order_id=order_id,
                        kind=kind,
                        amount_minor=amount_minor,
                        currency=currency,
                        reference=reference,
                        valid_until=valid_until,
                    )
                )
                if also is not None:
                    session.flush()  # a concurrent attempt's entry fails here, before `also`
                    also(session, reference)
        except IntegrityError:  # a concurrent attempt with the same key wrote it first
            return reference, False
        return reference, True

    @activity.defn
    def capture_payment(self, request: CaptureRequest) -> CaptureResult:
        """Take the money (card) or bill the account (Net-30); always issue the invoice.

        The invoice is drafted first (goods delivered, shipping charge, tax) and its gross is
        what is captured; the numbered invoice, the refund bound and the ERP posting are then
        written in one transaction.

        Raises:
            ApplicationError: "NoTaxRate" (non-retryable): the rates table lacks the
                destination; add it and redrive the order (`orderflow redrive`).
        """
        auth = request.authorization
        n = request.capture_no
        key = invoicing.capture_key(request.order_id, n)
        prepaid = auth.method == PaymentTerms.PREPAID.value
        bill, amount = self._bill(request)
        minor = to_minor(amount, auth.currency)

        def capture() -> str:
            if not prepaid:
                return auth.reference
            # The gateway's key names the authorisation too: a capture retried against a
            # renewal is a new request to it, not a replay of the lapsed one's answer.
            sent_as = key if auth.reauthorization == 0 else f"{key}@r{auth.reauthorization}"
            try:
                return self._gateway.capture(sent_as, auth.reference, amount)
            except AuthorizationLapsed as lapsed:
                raise ApplicationError(
                    str(lapsed), type="AuthorizationLapsed", non_retryable=True
                ) from lapsed

        reference = self._once(key, request.order_id, "CAPTURE", minor, auth.currency, capture)
        with Session(self._engine) as session, session.begin():
            invoice = invoices.invoice_of(session, request.order_id, n)
            if invoice is None:  # first time through: the invoice and the refund bound
                invoice = invoices.issue(session, request, bill, amount, reference)
                balance = session.get(OrderBalance, request.order_id)
                if balance is None:  # the refund ledger's bound: refunds never exceed it
                    session.add(
                        OrderBalance(
                            order_id=request.order_id,
                            currency=auth.currency,
                            captured_minor=minor,
                            refunded_minor=0,
                        )
                    )
                else:
                    balance.captured_minor += minor
            record(
                session,
                StatusChange(
                    order_id=request.order_id,
                    step="captured" if n == 1 else f"captured-{n}",
                    status=OrderStatus.COMPLETED if request.final else OrderStatus.DELIVERED,
                    reason=f"invoice {invoice.invoice_no} {invoice.amount} {auth.currency}",
                ),
            )
            return CaptureResult(
                order_id=request.order_id,
                amount=invoice.amount,
                currency=auth.currency,
                reference=reference,
                invoice_no=invoice.invoice_no,
                due_date=invoice.due_date,
            )


# The authorisation's reads, built once (README, "Speed").
_MADE = select(
    Payment.reference, Payment.valid_until, Payment.amount_minor, Payment.currency
).where(Payment.idempotency_key == bindparam("key"))
_CAPTURED = select(OrderBalance.captured_minor, OrderBalance.currency).where(
    OrderBalance.order_id == bindparam("of_order")
)
_ESTIMATE = select(OrderRecord.gross_estimate).where(OrderRecord.order_id == bindparam("of_order"))
