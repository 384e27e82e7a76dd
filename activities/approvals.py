"""Approval activities: assess an order's holds, load the approvers, notify people once."""

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity

from activities.credit import exposure, lock_customer
from activities.db.engine import reader
from activities.db.models import Approver, Notification, PriceBookEntry, Product
from activities.mail import MailConfig, compose, recipients
from domain.holds import HoldAssessment, HoldRequest, Notice, Tier, holds_for
from domain.order import Order
from domain.statuses import PaymentTerms
from domain.validation import address_warnings


class ApprovalActivities:
    """Hold assessment and notifications; built once by the worker with its engine."""

    def __init__(self, engine: Engine, mail: MailConfig | None = None) -> None:
        self._engine = engine
        self._mail = mail if mail is not None and mail.smtp_host else None

    @activity.defn
    def assess_holds(self, request: HoldRequest) -> HoldAssessment:
        """Decide which holds a validated order starts with, and who may release them.

        Checks the amount thresholds (on the goods' net), the Net-30 credit exposure (the
        customer row is locked on PostgreSQL so two concurrent orders are decided one after
        the other), the price book (or list price), the address, the manual-review flag and a
        suspected duplicate.
        Read-only otherwise, so a retry gives the same answer for the same data.
        """
        order, validated = request.order, request.validated
        terms = validated.customer
        on_account = terms.payment_terms == PaymentTerms.NET_30
        # Only a Net-30 order locks anything (its customer, to add up the exposure in turn):
        # a card order's reads go through the read-only engine, off the write lock.
        engine = self._engine if on_account else reader(self._engine)
        with Session(engine) as session, session.begin():
            credit_limit, owed = terms.credit_limit, Decimal(0)
            if on_account:  # a card pays upfront: no exposure to add up (it grows with orders)
                customer = lock_customer(session, order.customer_id)
                credit_limit = customer.credit_limit if customer is not None else credit_limit
                owed = exposure(session, order.customer_id, order.order_id)
            mismatches = _price_mismatches(session, order)
            approvers = _active_approvers(session)
        holds = holds_for(
            total=validated.total,
            thresholds=validated.thresholds,
            credit_limit=credit_limit,
            exposure=owed,
            is_net_terms=on_account,
            price_mismatches=mismatches,
            address_issues=address_warnings(order.ship_to),
            manual_review=order.manual_review,
            duplicate_of=validated.duplicate_of,
            gross=validated.gross_estimate,
            currency=order.currency,
        )
        if holds:
            activity.logger.info(
                "%s held: %s", order.order_id, ", ".join(h.type.value for h in holds)
            )
        return HoldAssessment(holds=holds, approvers=approvers, exposure=owed)

    @activity.defn
    def load_approvers(self) -> dict[str, list[Tier]]:
        """The active approvers and their tiers (refreshed by the workflow on escalation)."""
        with Session(self._engine) as session:
            return _active_approvers(session)

    @activity.defn
    def notify(self, notice: Notice) -> None:
        """Write the notification once per `notice.key` (a retry or a repeat is a no-op),
        with its e-mails in the same transaction when SMTP is configured (the worker's mail
        loop sends them)."""
        try:
            with Session(self._engine) as session, session.begin():
                done = session.scalar(
                    select(Notification.id).where(Notification.idempotency_key == notice.key)
                )
                if done is not None:
                    return
                session.add(
                    Notification(
                        idempotency_key=notice.key,
                        order_id=notice.order_id,
                        recipient=notice.recipient,
                        kind=notice.kind,
                        message=notice.message,
                    )
                )
                if self._mail is not None:
                    now = datetime.now(UTC)
                    for to in recipients(session, self._mail, notice.recipient):
                        session.add(compose(self._mail, notice, to, now))
        except IntegrityError:
            return  # the same key was written concurrently: already sent
        activity.logger.info(
            "notify %s (%s) about %s: %s",
            notice.recipient,
            notice.kind,
            notice.order_id,
            notice.message,
        )


def _price_mismatches(session: Session, order: Order) -> list[str]:
    """Lines priced off the customer's price book, or below list price without a book entry."""
    skus = [line.sku for line in order.lines]
    book = {
        entry.sku: entry.unit_price
        for entry in session.scalars(
            select(PriceBookEntry).where(
                PriceBookEntry.customer_id == order.customer_id, PriceBookEntry.sku.in_(skus)
            )
        )
    }
    listed = {
        product.sku: product.list_price
        for product in session.scalars(select(Product).where(Product.sku.in_(skus)))
    }
    mismatches: list[str] = []
    for line in order.lines:
        if line.sku in book:
            if line.unit_price != book[line.sku]:
                mismatches.append(
                    f"{line.sku}: {line.unit_price} differs from the price book {book[line.sku]}"
                )
        elif line.sku in listed and line.unit_price < listed[line.sku]:
            mismatches.append(
                f"{line.sku}: {line.unit_price} below the list price {listed[line.sku]}"
            )
    return mismatches


def _active_approvers(session: Session) -> dict[str, list[Tier]]:
    known = {tier.value for tier in Tier}
    approvers: dict[str, list[Tier]] = {}
    for row in session.scalars(
        select(Approver).where(Approver.active.is_(True)).order_by(Approver.user_id, Approver.tier)
    ):
        if row.tier in known:
            approvers.setdefault(row.user_id, []).append(Tier(row.tier))
    return approvers
