"""Carrier booking by rate and SLA with fallback, label voiding, shipment progress."""

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit import record
from activities.carriers import Carrier, CarrierError, Label
from activities.db.models import CarrierLabel, ShipmentRecord, Warehouse, utcnow
from domain.fulfilment import Allocation, CarrierQuote, Shipment, wave_step
from domain.shipping import rank_quotes
from domain.statuses import OrderStatus
from domain.steps import BookingRequest, ShipmentEvent, StatusChange


class DatabaseLabelBook:
    """The simulated carriers' memory of labels, in `carrier_labels`: it survives restarts."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def find(self, idempotency_key: str) -> Label | None:
        with Session(self._engine) as session:
            row = session.scalar(
                select(CarrierLabel).where(CarrierLabel.idempotency_key == idempotency_key)
            )
            return _label(row) if row else None

    def add(self, label: Label) -> Label:
        try:
            with Session(self._engine) as session, session.begin():
                session.add(
                    CarrierLabel(
                        label_id=label.label_id,
                        idempotency_key=label.idempotency_key,
                        carrier=label.carrier,
                        service=label.service,
                        tracking_number=label.tracking_number,
                        price=label.price,
                        currency=label.currency,
                        voided=label.voided,
                    )
                )
            return label
        except IntegrityError:
            existing = self.find(label.idempotency_key)
            assert existing is not None
            return existing

    def mark_voided(self, label_id: str) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(CarrierLabel).where(CarrierLabel.label_id == label_id).values(voided=True)
            )


def _label(row: CarrierLabel) -> Label:
    return Label(
        label_id=row.label_id,
        carrier=row.carrier,
        service=row.service,
        tracking_number=row.tracking_number,
        idempotency_key=row.idempotency_key,
        price=row.price,
        currency=row.currency,
        voided=row.voided,
    )


class ShippingActivities:
    """Books one label per shipment, cheapest carrier that meets the promise first."""

    def __init__(self, engine: Engine, carriers: list[Carrier]) -> None:
        self._engine = engine
        self._carriers = {carrier.code: carrier for carrier in carriers}

    @activity.defn
    def book_shipments(self, request: BookingRequest) -> list[Shipment]:
        """One label per allocation; a failing carrier falls back to the next-best quote.

        Raises:
            ApplicationError: "NoCarrierAvailable" (retried with backoff) when every carrier
                failed for some shipment.
        """
        shipments = [self._book_one(request, allocation) for allocation in request.allocations]
        with Session(self._engine) as session, session.begin():
            record(
                session,
                StatusChange(
                    order_id=request.order_id,
                    step=wave_step("booked", request.wave),
                    status=OrderStatus.AWAITING_SHIPMENT,
                    reason=", ".join(
                        f"{s.shipment_id}: {s.carrier} {s.service} {s.tracking_number}"
                        for s in shipments
                    ),
                    detail={"shipments": [s.model_dump(mode="json") for s in shipments]},
                ),
            )
        return shipments

    @activity.defn
    def void_labels(self, order_id: str) -> int:
        """Compensation: void every label of the order that is still live; returns how many."""
        with Session(self._engine) as session:
            booked = list(
                session.scalars(
                    select(ShipmentRecord).where(
                        ShipmentRecord.order_id == order_id, ShipmentRecord.state == "BOOKED"
                    )
                )
            )
        for shipment in booked:
            if shipment.carrier and shipment.label_id:
                self._carriers[shipment.carrier].void(shipment.label_id)
            with Session(self._engine) as session, session.begin():
                row = session.get(ShipmentRecord, shipment.shipment_id)
                assert row is not None
                row.state = "VOIDED"
        return len(booked)

    @activity.defn
    def record_shipment_progress(self, event: ShipmentEvent) -> None:
        """Mark a shipment SHIPPED or DELIVERED (from the event's step name), once."""
        state = "DELIVERED" if event.delivered else "SHIPPED"
        with Session(self._engine) as session, session.begin():
            row = session.get(ShipmentRecord, event.shipment_id)
            if row is not None and row.state != "DELIVERED":
                row.state = state

    def _book_one(self, request: BookingRequest, allocation: Allocation) -> Shipment:
        shipment_id = wave_step(f"{request.order_id}-{allocation.warehouse}", request.wave)
        with Session(self._engine) as session:
            existing = session.get(ShipmentRecord, shipment_id)
            if existing is not None and existing.state == "BOOKED" and existing.detail:
                return Shipment.model_validate(existing.detail)
            origin = session.get(Warehouse, allocation.warehouse)
            assert origin is not None, f"unknown warehouse {allocation.warehouse}"
            origin_country = origin.country
        units = sum(line.quantity for line in allocation.lines)
        quotes: list[CarrierQuote] = []
        failed: list[str] = []
        for code, carrier in sorted(self._carriers.items()):
            try:
                quotes += carrier.quote(
                    origin_country,
                    request.destination.country,
                    units,
                    utcnow().date(),
                    request.promised_date,
                )
            except CarrierError as error:
                failed.append(f"{code}: quote failed ({error})")
        ranked = rank_quotes(quotes)
        for quote in ranked:
            try:
                label = self._carriers[quote.carrier].book(quote, f"{shipment_id}@{quote.carrier}")
            except CarrierError as error:
                failed.append(f"{quote.carrier}: booking failed ({error})")
                continue
            shipment = Shipment(
                shipment_id=shipment_id,
                warehouse=allocation.warehouse,
                lines=allocation.lines,
                carrier=label.carrier,
                service=label.service,
                tracking_number=label.tracking_number,
                label_id=label.label_id,
                shipping_cost=label.price,
                estimated_delivery=quote.estimated_delivery,
                quotes=ranked,
                failed_carriers=failed,
            )
            self._save(request.order_id, shipment)
            return shipment
        raise ApplicationError(
            f"no carrier could book {shipment_id}: {'; '.join(failed) or 'no quotes'}",
            type="NoCarrierAvailable",
        )

    def _save(self, order_id: str, shipment: Shipment) -> None:
        with Session(self._engine) as session, session.begin():
            row = session.get(ShipmentRecord, shipment.shipment_id)
            if row is None:
                row = ShipmentRecord(
                    shipment_id=shipment.shipment_id,
                    order_id=order_id,
                    warehouse=shipment.warehouse,
                    state="BOOKED",
                )
                session.add(row)
            row.state = "BOOKED"
            row.carrier = shipment.carrier
            row.service = shipment.service
            row.tracking_number = shipment.tracking_number
            row.label_id = shipment.label_id
            row.cost = shipment.shipping_cost
            row.detail = shipment.model_dump(mode="json")
