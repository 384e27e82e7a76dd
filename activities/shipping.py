"""Carrier booking by rate and SLA with fallback, label voiding, shipment progress."""

from functools import cache
from typing import Any

from sqlalchemy import Engine, Insert, Row, bindparam, select, update
from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.audit import record
from activities.carriers import Carrier, CarrierError, Label
from activities.customer_notices import parcel_moved
from activities.db.engine import insert_new, reader
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
        with Session(reader(self._engine)) as session:
            row = session.scalar(
                select(CarrierLabel).where(CarrierLabel.idempotency_key == idempotency_key)
            )
            return _label(row) if row else None

    def add(self, label: Label) -> Label:
        with Session(self._engine) as session, session.begin():
            connection = session.connection()
            written = connection.scalar(
                _new_label(connection.dialect.name),
                {
                    "label_id": label.label_id,
                    "idempotency_key": label.idempotency_key,
                    "carrier": label.carrier,
                    "service": label.service,
                    "tracking_number": label.tracking_number,
                    "price": label.price,
                    "currency": label.currency,
                    "voided": label.voided,
                },
            )
        if written is not None:
            return label
        existing = self.find(label.idempotency_key)  # the key was booked first elsewhere
        assert existing is not None
        return existing

    def mark_voided(self, label_id: str) -> None:
        with Session(self._engine) as session, session.begin():
            session.execute(
                update(CarrierLabel).where(CarrierLabel.label_id == label_id).values(voided=True)
            )


@cache
def _new_label(dialect: str) -> Insert:
    """A label, unless its key (or id) is stored already; returns its id if written."""
    return insert_new(dialect, CarrierLabel).returning(CarrierLabel.label_id)


def _pending(row: ShipmentRecord | Row[Any]) -> set[str]:
    """Carriers a booking of this shipment was started with and not settled."""
    return set((row.detail or {}).get("pending", [])) if row.state == "BOOKING" else set()


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
            ApplicationError: "BookingStopped" (non-retryable) when a shipment was voided while
                this attempt ran (an attempt that outlived its order's stop).
        """
        shipments = []
        for allocation in request.allocations:
            shipments.append(self._book_one(request, allocation))
            if not activity.info().is_local:  # its quick first attempt runs locally
                activity.heartbeat(len(shipments))
        with Session(self._engine) as session, session.begin():
            if request.routed is not None:  # the routing decision, audited with its labels
                record(
                    session,
                    StatusChange(
                        order_id=request.order_id,
                        step=wave_step("routed", request.wave),
                        status=OrderStatus.ROUTED,
                        reason=request.routed,
                    ),
                )
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
        """Compensation: void every live label of the order's unshipped parcels; returns how
        many shipments were voided.

        Besides the booked label, it looks up every carrier a booking was started with and
        not settled (`pending`), so a label bought just before a crash is voided too.
        """
        with Session(self._engine) as session:
            unshipped = [
                (row.shipment_id, _pending(row) | ({row.carrier} if row.carrier else set()))
                for row in session.scalars(
                    select(ShipmentRecord).where(
                        ShipmentRecord.order_id == order_id,
                        ShipmentRecord.state.in_(("BOOKING", "BOOKED")),
                    )
                )
            ]
        for shipment_id, carriers in unshipped:
            activity.heartbeat(shipment_id)
            self._void(shipment_id, carriers)
            with Session(self._engine) as session, session.begin():
                row = session.get(ShipmentRecord, shipment_id)
                assert row is not None
                row.state = "VOIDED"
        return len(unshipped)

    def _void(self, shipment_id: str, carriers: set[str]) -> None:
        """Void the shipment's live labels at these carriers (a carrier that is down raises,
        and the activity is retried: a label that may be live is never forgotten)."""
        for code in sorted(carriers):
            label = self._carriers[code].label_for(f"{shipment_id}@{code}")
            if label is not None and not label.voided:
                self._carriers[code].void(label.label_id)

    def _intend(
        self, booking: tuple[str, str, str], code: str, *, settled: bool = False
    ) -> Shipment | None:
        """Before buying a label: note the carrier (pending), writing the shipment (BOOKING)
        if this is its first try; after a clean refusal: settle. `booking`: the shipment's id,
        order and warehouse.

        Returns the shipment if another attempt booked it meanwhile (nothing is bought then).

        Raises:
            ApplicationError: "BookingStopped" (non-retryable) when the shipment was voided
                meanwhile (its order stopped): no label may be bought for it.
        """
        shipment_id, order_id, warehouse = booking
        with Session(self._engine) as session, session.begin():
            row = session.get(ShipmentRecord, shipment_id)
            if row is None:
                row = ShipmentRecord(
                    shipment_id=shipment_id, order_id=order_id, warehouse=warehouse, state="BOOKING"
                )
                session.add(row)
            if row.state == "BOOKING":
                pending = _pending(row) - {code} if settled else _pending(row) | {code}
                row.detail = {"pending": sorted(pending)}
                return None
            return _settled(shipment_id, row.state, row.detail)

    @activity.defn
    def record_shipment_progress(self, event: ShipmentEvent) -> None:
        """Move a shipment to the event's state; never back from a final one."""
        with Session(self._engine) as session, session.begin():
            row = session.get(ShipmentRecord, event.shipment_id)
            if row is not None and row.state not in ("DELIVERED", "LOST"):
                moved = row.state != event.state
                row.state = event.state
                if moved:  # shipped, delivered: the customer hears it with the parcel's state
                    parcel_moved(session, row)

    def _book_one(self, request: BookingRequest, allocation: Allocation) -> Shipment:
        shipment_id = wave_step(f"{request.order_id}-{allocation.warehouse}", request.wave)
        booking = (shipment_id, request.order_id, allocation.warehouse)
        # The shipment is written (BOOKING, with the carrier) before any label is bought
        # (`_intend`): whatever happens next, void_labels knows which keys to look up. Until
        # then this only reads: a booking done before, the intents of an attempt that died.
        with Session(reader(self._engine)) as session:
            read = session.connection()
            existing = read.execute(_SHIPMENT_STATE, {"shipment": shipment_id}).first()
            if existing is not None and existing.state != "BOOKING":
                return _settled(shipment_id, existing.state, existing.detail)
            # Intents left by an attempt that died: their labels may exist whatever happens now.
            inherited = _pending(existing) if existing is not None else set()
            origin_country = read.scalar(_ORIGIN, {"warehouse": allocation.warehouse})
            assert origin_country is not None, f"unknown warehouse {allocation.warehouse}"
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
            booked_meanwhile = self._intend(booking, quote.carrier)
            if booked_meanwhile is not None:
                return booked_meanwhile
            try:
                label = self._carriers[quote.carrier].book(quote, f"{shipment_id}@{quote.carrier}")
            except CarrierError as error:
                # The adapters raise only when no label was created: settled, nothing to void
                # (unless a dead attempt may already have bought one there).
                if quote.carrier not in inherited:
                    self._intend(booking, quote.carrier, settled=True)
                failed.append(f"{quote.carrier}: booking failed ({error})")
                continue
            # A label bought by an attempt that crashed before recording it must not stay
            # live beside this one. This attempt's own refusals were settled above, so the
            # only carriers that may hold one are those a dead attempt left pending.
            self._void(shipment_id, inherited - {label.carrier})
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
            self._save(shipment)
            return shipment
        raise ApplicationError(
            f"no carrier could book {shipment_id}: {'; '.join(failed) or 'no quotes'}",
            type="NoCarrierAvailable",
        )

    def _save(self, shipment: Shipment) -> None:
        booked = {
            "state": "BOOKED",
            "carrier": shipment.carrier,
            "service": shipment.service,
            "tracking_number": shipment.tracking_number,
            "label_id": shipment.label_id,
            "cost": shipment.shipping_cost,
            "detail": shipment.model_dump(mode="json"),
        }
        with Session(self._engine) as session, session.begin():
            moved = session.connection().execute(
                _BOOKED, {"booked_id": shipment.shipment_id, **booked}
            )
            # `_intend` wrote the row (BOOKING) before the label was bought.
            assert moved.rowcount == 1, f"shipment {shipment.shipment_id} has no row"


def _settled(shipment_id: str, state: str, detail: dict[str, Any] | None) -> Shipment:
    """A shipment whose booking is over: the label booked before (another attempt's), or
    "BookingStopped" (non-retryable) if it was voided (its order stopped): no label may be
    bought for it, and a voided label is not a booking."""
    if state == "VOIDED" or not detail or "pending" in detail:
        raise ApplicationError(
            f"shipment {shipment_id} is {state}: its order was stopped",
            type="BookingStopped",
            non_retryable=True,
        )
    return Shipment.model_validate(detail)


_ORIGIN = select(Warehouse.country).where(Warehouse.code == bindparam("warehouse"))
_SHIPMENT_STATE = select(ShipmentRecord.state, ShipmentRecord.detail).where(
    ShipmentRecord.shipment_id == bindparam("shipment")
)
_BOOKED = update(ShipmentRecord).where(ShipmentRecord.shipment_id == bindparam("booked_id"))
"""A shipment's row once its label is bought: one statement built once (README, "Speed")."""
