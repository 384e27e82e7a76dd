"""Returns: RMA and return label, receipt, and inspection with restock (refunds: refunds.py)."""

from datetime import timedelta

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit import record
from activities.carriers import Carrier, CarrierError, Label
from activities.customer_notices import return_label_booked
from activities.db.models import (
    OrderRecord,
    Refund,
    ReturnAuthorization,
    ReturnLine,
    Stock,
    Warehouse,
    utcnow,
)
from activities.errors import refused
from domain.commands import CommandRefused
from domain.fulfilment import CarrierQuote
from domain.money import from_minor
from domain.returns import (
    Disposition,
    InspectionRequest,
    ReturnedLine,
    Rma,
    check_inspection,
)
from domain.shipping import rank_quotes
from domain.statuses import OrderStatus
from domain.steps import StatusChange

# Return labels are not promised to anyone: with this much slack every quote "meets the
# promise", so rank_quotes orders them cheapest first.
RETURN_LABEL_SLACK = timedelta(days=60)


class ReturnsActivities:
    """Every step of a return but the refund, each idempotent by its RMA id."""

    def __init__(self, engine: Engine, carriers: list[Carrier]) -> None:
        self._engine = engine
        self._carriers = {carrier.code: carrier for carrier in carriers}

    @activity.defn
    def open_rma(self, rma: Rma) -> Rma:
        """Store the RMA once and book its return label (customer's country -> warehouse).

        The label goes to the warehouse that shipped most of the returned units; the cheapest
        quote is booked first, the next one when a carrier fails (key "<rma_id>@<carrier>").

        Raises:
            ApplicationError: "UnknownOrder" or "UnknownWarehouse" (non-retryable);
                "NoCarrierAvailable" (retried) when every carrier failed.
        """
        with Session(self._engine) as session:
            row = session.get(ReturnAuthorization, rma.rma_id)
            if row is not None and row.label_id is not None:
                return _rma(session, row)
            origin, destination = _return_route(session, rma)
        if row is None:
            try:
                with Session(self._engine) as session, session.begin():
                    _insert_rma(session, rma)
            except IntegrityError:
                pass  # a concurrent attempt inserted it first: carry on with the label
        units = sum(line.quantity for line in rma.lines)
        label = self._book_label(rma.rma_id, origin, destination, units)
        with Session(self._engine) as session, session.begin():
            row = _locked_rma(session, rma.rma_id)
            if row.label_id is None:
                row.carrier, row.tracking_number = label.carrier, label.tracking_number
                row.label_id = label.label_id
                return_label_booked(session, row)  # the customer gets the label with it
            stored = _rma(session, row)
        if stored.label_id != label.label_id:  # a concurrent attempt stored another label first
            self._carriers[label.carrier].void(label.label_id)
        return stored

    @activity.defn
    def receive_return(self, rma_id: str) -> Rma:
        """The parcel arrived at the warehouse: OPEN -> RECEIVED (later states stay as they are).

        Raises:
            ApplicationError: "UnknownRma" (non-retryable).
        """
        with Session(self._engine) as session, session.begin():
            row = _locked_rma(session, rma_id)
            if row.state == "OPEN":
                row.state = "RECEIVED"
                _audit(session, row, "received", OrderStatus.RETURN_RECEIVED, "warehouse")
            return _rma(session, row)

    @activity.defn
    def inspect_return(self, request: InspectionRequest) -> Rma:
        """Record each unit's disposition once; RESTOCK units go back into sellable stock.

        REFURBISH and DISPOSE units do not touch `stock`. A repeated call returns the RMA as
        stored by the first one.

        Raises:
            ApplicationError: "UnknownRma", "ReturnNotReceived" or "InspectionRefused" (all
                non-retryable).
        """
        with Session(self._engine) as session, session.begin():
            row = _locked_rma(session, request.rma_id)
            lines = {
                line.sku: line
                for line in session.scalars(
                    select(ReturnLine).where(ReturnLine.rma_id == request.rma_id)
                )
            }
            if any(line.restocked + line.refurbished + line.disposed for line in lines.values()):
                return _rma(session, row)
            if row.state == "OPEN":
                raise refused(
                    f"{row.rma_id} has not been received yet: receive it before inspecting",
                    "ReturnNotReceived",
                )
            try:
                check_inspection({sku: line.quantity for sku, line in lines.items()}, request.lines)
            except CommandRefused as problem:
                raise refused(str(problem), "InspectionRefused") from problem
            for verdict in request.lines:
                line = lines[verdict.sku]
                if verdict.disposition == Disposition.RESTOCK:
                    line.restocked += verdict.quantity
                    _restock(session, line.sku, line.warehouse, verdict.quantity)
                elif verdict.disposition == Disposition.REFURBISH:
                    line.refurbished += verdict.quantity
                else:
                    line.disposed += verdict.quantity
            if row.state == "RECEIVED":
                row.state = "INSPECTED"
            summary = ", ".join(
                f"{v.sku} x{v.quantity} {v.disposition.value}" for v in request.lines
            )
            _audit(session, row, "inspected", OrderStatus.RETURN_RECEIVED, request.by, summary)
            return _rma(session, row)

    @activity.defn
    def expire_rma(self, rma_id: str) -> Rma:
        """Nothing came back in time: OPEN -> EXPIRED and the return label is voided, once.

        Raises:
            ApplicationError: "UnknownRma" (non-retryable).
        """
        with Session(self._engine) as session:
            row = _locked_rma(session, rma_id)
            label = (row.carrier, row.label_id) if row.state == "OPEN" else None
        # The carrier is called outside our transaction (its label book is a database too).
        if label and label[0] in self._carriers and label[1]:
            self._carriers[label[0]].void(label[1])
        with Session(self._engine) as session, session.begin():
            row = _locked_rma(session, rma_id)
            if row.state == "OPEN":
                row.state = "EXPIRED"
                _audit(
                    session,
                    row,
                    "expired",
                    OrderStatus(_order_status(session, row)),
                    "orderflow",
                    "nothing came back in time; the return label is voided",
                )
            return _rma(session, row)

    def _book_label(self, rma_id: str, origin: str, destination: str, units: int) -> Label:
        today = utcnow().date()
        quotes: list[CarrierQuote] = []
        failed: list[str] = []
        for code, carrier in sorted(self._carriers.items()):
            try:
                quotes += carrier.quote(
                    origin, destination, units, today, today + RETURN_LABEL_SLACK
                )
            except CarrierError as error:
                failed.append(f"{code}: quote failed ({error})")
        for quote in rank_quotes(quotes):
            try:
                return self._carriers[quote.carrier].book(quote, f"{rma_id}@{quote.carrier}")
            except CarrierError as error:
                failed.append(f"{quote.carrier}: booking failed ({error})")
        raise ApplicationError(
            f"no carrier could book a return label for {rma_id}: "
            f"{'; '.join(failed) or 'no quotes'}",
            type="NoCarrierAvailable",
        )


def _return_route(session: Session, rma: Rma) -> tuple[str, str]:
    """(customer's country, country of the warehouse that shipped most of the units)."""
    order = session.get(OrderRecord, rma.order_id)
    if order is None:
        raise refused(f"no order {rma.order_id}", "UnknownOrder")
    units: dict[str, int] = {}
    for line in rma.lines:
        units[line.warehouse] = units.get(line.warehouse, 0) + line.quantity
    code = max(sorted(units.items()), key=lambda item: item[1])[0]
    warehouse = session.get(Warehouse, code)
    if warehouse is None:
        raise refused(f"unknown warehouse {code} on {rma.rma_id}", "UnknownWarehouse")
    return str(order.order["ship_to"]["country"]), warehouse.country


def _order_status(session: Session, row: ReturnAuthorization) -> str:
    order = session.get(OrderRecord, row.order_id)
    return order.status if order is not None else OrderStatus.COMPLETED.value


def _insert_rma(session: Session, rma: Rma) -> None:
    row = ReturnAuthorization(
        rma_id=rma.rma_id, order_id=rma.order_id, state="OPEN", reason=rma.reason
    )
    session.add(row)
    session.flush()
    for line in rma.lines:
        session.add(ReturnLine(rma_id=rma.rma_id, **line.model_dump()))
    _audit(session, row, "opened", OrderStatus.RETURN_REQUESTED, "customer", rma.reason)


def _restock(session: Session, sku: str, warehouse: str, quantity: int) -> None:
    result = session.execute(
        update(Stock)
        .where(Stock.sku == sku, Stock.warehouse == warehouse)
        .values(on_hand=Stock.on_hand + quantity)
        .execution_options(synchronize_session=False)
    )
    if getattr(result, "rowcount", 0) != 1:
        session.add(Stock(sku=sku, warehouse=warehouse, on_hand=quantity, reserved=0))


def _locked_rma(session: Session, rma_id: str) -> ReturnAuthorization:
    query = select(ReturnAuthorization).where(ReturnAuthorization.rma_id == rma_id)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        raise refused(f"no RMA {rma_id}", "UnknownRma")
    return row


def _rma(session: Session, row: ReturnAuthorization) -> Rma:
    lines = session.scalars(
        select(ReturnLine).where(ReturnLine.rma_id == row.rma_id).order_by(ReturnLine.sku)
    )
    refunded, currency = session.execute(
        select(func.sum(Refund.amount_minor), func.max(Refund.currency)).where(
            Refund.rma_id == row.rma_id
        )
    ).one()
    return Rma(
        rma_id=row.rma_id,
        order_id=row.order_id,
        lines=[ReturnedLine.model_validate(line, from_attributes=True) for line in lines],
        reason=row.reason,
        carrier=row.carrier,
        tracking_number=row.tracking_number,
        label_id=row.label_id,
        state=row.state,
        refund_amount=from_minor(int(refunded), currency) if refunded is not None else None,
    )


def _audit(
    session: Session,
    row: ReturnAuthorization,
    step: str,
    status: OrderStatus,
    actor: str,
    reason: str = "",
) -> None:
    what = f"{row.rma_id} {step}" + (f": {reason}" if reason else "")
    change = StatusChange(
        order_id=row.order_id, step=f"{row.rma_id}/{step}", status=status, actor=actor, reason=what
    )
    record(session, change)
