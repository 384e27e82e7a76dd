"""Order intake: validation against the catalog and the customer's account, and status writes."""

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, Row, bindparam, delete, insert, select
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import billing
from activities.audit import record
from activities.billing import MoneyRules
from activities.db.engine import take_turns
from activities.db.models import Customer, OrderLineRecord, OrderRecord, Product, utcnow
from domain.geography import COUNTRY_CENTROIDS, locate
from domain.order import Order
from domain.policy import ApprovalThresholds, CustomerTerms, SlaPolicy
from domain.sla import format_duration
from domain.statuses import FulfilmentPolicy, OrderStatus, PaymentTerms
from domain.steps import EditedOrder, StatusChange, ValidatedOrder
from domain.tax import NoTaxRate
from domain.validation import address_problems, fingerprint


class IntakeActivities:
    """Validation and read-model writes; built once by the worker with its dependencies."""

    def __init__(
        self,
        engine: Engine,
        sla: SlaPolicy,
        thresholds: ApprovalThresholds,
        max_quantity_per_line: int,
        duplicate_window: timedelta,
        rules: MoneyRules | None = None,
    ) -> None:
        self._engine = engine
        self._rules = rules
        self._sla = sla
        self._thresholds = thresholds
        self._max_quantity = max_quantity_per_line
        self._duplicate_window = duplicate_window

    @activity.defn
    def validate_order(self, order: Order) -> ValidatedOrder:
        """Check the order against catalog, account and address; record it. An earlier order
        with the same content is named in `duplicate_of` (a hold for a person, not a rejection).

        Raises:
            ApplicationError: type "InvalidOrder" (non-retryable) with every problem found.
        """
        run_id = activity.info().workflow_run_id or ""
        with Session(self._engine) as session, session.begin():
            # Two copies of one order validated at once: the second must see the first.
            take_turns(session, f"intake:{order.customer_id}:{fingerprint(order)}")
            # Mostly a new order: a cheap look first, the row itself only for an order seen before.
            connection = session.connection()  # statements built once: no ORM round
            known = connection.scalar(_KNOWN, {"order": order.order_id}) is not None
            existing = session.get(OrderRecord, order.order_id) if known else None
            if existing is not None:
                self._reenter(existing, order, run_id)
            customer = connection.execute(_CUSTOMER, {"customer": order.customer_id}).first()
            problems = self._problems(session, order, customer)
            gross = self._gross(session, order) if not problems else None
            if isinstance(gross, str):
                problems.append(gross)
            today = utcnow().date()
            promised = order.promised_date or today + timedelta(days=order.promised_days or 0)
            if existing is None:  # a valid order's row is written with its promise and gross
                self._insert(
                    session,
                    order,
                    run_id,
                    promised=order.promised_date if problems else promised,
                    gross=gross if isinstance(gross, Decimal) else None,
                )
            record(
                session,
                StatusChange(
                    order_id=order.order_id,
                    step="received",
                    status=OrderStatus.RECEIVED,
                    actor=order.channel.value,
                    reason=f"placed via {order.channel.value}",
                ),
            )
            if problems:
                reason = "; ".join(problems)
                record(
                    session,
                    StatusChange(
                        order_id=order.order_id,
                        step="rejected",
                        status=OrderStatus.REJECTED,
                        reason=reason,
                    ),
                )
                # Commit the rejection before failing: the read model must show why.
                session.commit()
                raise ApplicationError(reason, type="InvalidOrder", non_retryable=True)
            assert customer is not None
            duplicate_of = self._duplicate_of(session, order)
            if duplicate_of:
                window = format_duration(self._duplicate_window)
                activity.logger.info(
                    "%s looks like order %s (placed within %s): held for review",
                    order.order_id,
                    duplicate_of,
                    window,
                )
            destination = locate(order.ship_to.country, order.ship_to.postal_code)
            assert destination is not None
            record(
                session,
                StatusChange(
                    order_id=order.order_id, step="validated", status=OrderStatus.VALIDATED
                ),
            )
            if existing is not None:  # validated again: a reset run, an edit
                if existing.promised_date is None:
                    existing.promised_date = promised  # the promise as a date, for reporting
                if isinstance(gross, Decimal):
                    existing.gross_estimate = gross
            policy = FulfilmentPolicy(order.fulfilment_policy or customer.fulfilment_policy)
            return ValidatedOrder(
                order_id=order.order_id,
                total=order.total,
                promised_date=promised,
                customer=CustomerTerms(
                    customer_id=customer.customer_id,
                    name=customer.name,
                    payment_terms=PaymentTerms(customer.payment_terms),
                    credit_limit=customer.credit_limit,
                    fulfilment_policy=FulfilmentPolicy(customer.fulfilment_policy),
                    priority=customer.priority,
                ),
                fulfilment_policy=policy,
                destination=destination,
                sla=self._sla,
                thresholds=self._thresholds,
                duplicate_of=duplicate_of,
                gross_estimate=gross if isinstance(gross, Decimal) else None,
            )

    def _gross(self, session: Session, order: Order) -> Decimal | str | None:
        """The order's gross estimate, or why it cannot be taxed (a validation problem)."""
        if self._rules is None:
            return None
        try:
            return billing.estimate(session, self._rules, order, utcnow().date())
        except NoTaxRate as missing:
            return f"{missing} (add it to the tax rates)"

    @activity.defn
    def record_status(self, change: StatusChange) -> bool:
        """Write one audited status change (a no-op when the step was already recorded)."""
        with Session(self._engine) as session, session.begin():
            return record(session, change)

    @activity.defn
    def record_edit(self, edit: EditedOrder) -> bool:
        """Replace the order's content in the read model and log who changed what, once."""
        with Session(self._engine) as session, session.begin():
            row = session.get(OrderRecord, edit.order.order_id)
            if row is None:
                return False
            changed = record(
                session,
                StatusChange(
                    order_id=row.order_id,
                    step=f"edited-{edit.revision}",
                    status=OrderStatus(row.status),
                    actor=edit.by,
                    reason=edit.summary,
                ),
            )
            if changed:
                order = edit.order
                row.order = {**row.order, **order.model_dump(mode="json")}
                row.total, row.fingerprint = order.total, fingerprint(order)
                session.execute(
                    delete(OrderLineRecord).where(OrderLineRecord.order_id == order.order_id)
                )
                session.add_all(OrderLineRecord(**line) for line in _line_rows(order))
            return changed

    @staticmethod
    def _reenter(existing: OrderRecord, order: Order, run_id: str) -> None:
        """The same order again (a reset run of its workflow, a retried start), or a clash.

        Identity is the order id plus its content as placed (what a reset run starts from)
        or as last edited (what an edited order is validated with), never the run id.
        A closed order (rejected, cancelled, failed) is never entered again.

        Raises:
            ApplicationError: type "DuplicateOrder" when the id was used for other content.
        """
        known = {existing.order.get("_placed") or existing.fingerprint, existing.fingerprint}
        if fingerprint(order) not in known or existing.customer_id != order.customer_id:
            raise ApplicationError(
                f"order id {order.order_id} was already used for a different order",
                type="DuplicateOrder",
                non_retryable=True,
            )
        if OrderStatus(existing.status).is_final:
            raise ApplicationError(
                f"order {order.order_id} is already {existing.status}; order ids are used once",
                type="DuplicateOrder",
                non_retryable=True,
            )
        if existing.order.get("_run_id") != run_id:
            existing.order = {**existing.order, "_run_id": run_id}

    def _problems(
        self, session: Session, order: Order, customer: "CustomerRow | None"
    ) -> list[str]:
        problems: list[str] = []
        if customer is None:
            problems.append(f"unknown customer {order.customer_id}")
        elif customer.blocked:
            problems.append(f"customer {order.customer_id} is blocked")
        elif customer.currency != order.currency:
            problems.append(
                f"customer {customer.customer_id} trades in {customer.currency}, "
                f"not {order.currency}"
            )
        products = {
            p.sku: p
            for p in session.execute(
                select(Product.sku, Product.active, Product.max_per_order).where(
                    Product.sku.in_([line.sku for line in order.lines])
                )
            )
        }
        for line in order.lines:
            product = products.get(line.sku)
            if product is None or not product.active:
                problems.append(f"unknown SKU {line.sku}")
                continue
            limit = min(product.max_per_order, self._max_quantity)
            if line.quantity > limit:
                problems.append(f"{line.sku}: quantity {line.quantity} above the limit of {limit}")
        problems += address_problems(order.ship_to, set(COUNTRY_CENTROIDS))
        return problems

    def _duplicate_of(self, session: Session, order: Order) -> str | None:
        return earlier_copy(session, order, self._duplicate_window)

    def _insert(
        self,
        session: Session,
        order: Order,
        run_id: str,
        *,
        promised: date | None,
        gross: Decimal | None,
    ) -> None:
        # Two statements built once, not the ORM's unit of work: every order passes here.
        content = fingerprint(order)
        connection = session.connection()
        connection.execute(
            _NEW_ORDER,
            {
                "order_id": order.order_id,
                "customer_id": order.customer_id,
                "channel": order.channel.value,
                "status": OrderStatus.RECEIVED.value,
                "currency": order.currency,
                "total": order.total,
                "gross_estimate": gross,
                "fingerprint": content,
                "promised_date": promised,
                "order": {**order.model_dump(mode="json"), "_run_id": run_id, "_placed": content},
                "routing": None,
            },
        )
        connection.execute(_NEW_LINE, _line_rows(order))


_KNOWN = select(OrderRecord.order_id).where(OrderRecord.order_id == bindparam("order"))
CustomerRow = Row[str, str, bool, str, str, Decimal, str, int]
"""The customer's columns validation reads (`_CUSTOMER`)."""
_CUSTOMER = select(
    Customer.customer_id,
    Customer.name,
    Customer.blocked,
    Customer.currency,
    Customer.payment_terms,
    Customer.credit_limit,
    Customer.fulfilment_policy,
    Customer.priority,
).where(Customer.customer_id == bindparam("customer"))
_NEW_ORDER = insert(OrderRecord)
_NEW_LINE = insert(OrderLineRecord)


def earlier_copy(session: Session, order: Order, window: timedelta) -> str | None:
    """The first order of the same customer with the same content (lines, address, PO)
    placed within `window` and not turned down: the order is a suspected duplicate of it."""
    return session.scalar(
        _EARLIER_COPY,
        {
            "customer": order.customer_id,
            "content": fingerprint(order),
            "not_order": order.order_id,
            "since": utcnow() - window,
        },
    )


_EARLIER_COPY = (
    select(OrderRecord.order_id)
    .where(
        OrderRecord.customer_id == bindparam("customer"),
        OrderRecord.fingerprint == bindparam("content"),
        OrderRecord.order_id != bindparam("not_order"),
        OrderRecord.created_at >= bindparam("since"),
        OrderRecord.status.not_in([OrderStatus.REJECTED.value, OrderStatus.CANCELLED.value]),
    )
    .order_by(OrderRecord.created_at)
    .limit(1)
)
"""Built once: every validation asks it (README, "Speed")."""


def _line_rows(order: Order) -> list[dict[str, Any]]:
    """The order's lines as `order_lines` rows."""
    return [
        {
            "order_id": order.order_id,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": line.unit_price,
        }
        for line in order.lines
    ]
